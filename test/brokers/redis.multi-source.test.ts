/**
 * One consumer over four Redis streams (a stream sharded for cluster slots), against the real
 * server on loopback: one concurrency shared by all, a backlogged stream that does not starve
 * the others, one failing source that does not stop the rest, and a drain acting on all.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { type Consumer, consume } from '../../src/brokers/consumer.js';
import type { BrokerSource } from '../../src/brokers/source.js';
import { until } from '../fixtures/brokers/broker-under-test.js';
import { delegate, Ledger, payloads } from '../fixtures/brokers/consumer-harness.js';
import { redisAdmin, redisUnderTest } from '../fixtures/brokers/redis-helpers.js';

const broker = await redisUnderTest();
const consumers: Consumer[] = [];
afterAll(async () => {
  for (const c of consumers) await c.abort();
  await broker.cleanup();
});

describe('consume() over four Redis streams', () => {
  it('concurrency 16 over four streams: never more than 16 held in total; a backlog of 20,000 does not starve the three small streams', async () => {
    const streams = ['big', 's1', 's2', 's3'].map((tag) => broker.unique(`multi-${tag}`));
    await broker.fill(streams[0]!, payloads(20_000, 'big'));
    for (const [i, stream] of streams.slice(1).entries()) {
      await broker.fill(stream, payloads(200, `s${i + 1}-`));
    }
    const sources = await Promise.all(streams.map((s) => broker.source(s)));
    const starts: string[] = [];
    const small = new Ledger();
    const consumer = consume<{ k: string }>(
      sources,
      async ({ k }) => {
        starts.push(k);
        await new Promise((r) => setImmediate(r));
        if (!k.startsWith('big')) small.add(k);
      },
      { concurrency: 16 },
    );
    consumers.push(consumer);
    // The broker's view too: entries delivered and not acked, summed over the four streams.
    let brokerPeak = 0;
    let sampling = true;
    const admin = await redisAdmin();
    const sampler = (async () => {
      while (sampling) {
        // One MULTI: the four counts at one instant (separate reads could add up an entry acked
        // on one stream and a read on another that happened after it).
        const multi = admin.client.multi();
        for (const s of streams) multi.addCommand(['XPENDING', s, 'g']);
        const replies = (await multi.exec()) as unknown as [number][];
        brokerPeak = Math.max(
          brokerPeak,
          replies.reduce((sum, reply) => sum + Number(reply[0]), 0),
        );
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await small.until(600, 60_000);
    sampling = false;
    await sampler;
    await admin.client.close();
    const report = await consumer.close();
    const lastSmall = starts.findLastIndex((k) => !k.startsWith('big')) + 1;
    const bigBefore = starts.slice(0, lastSmall).filter((k) => k.startsWith('big')).length;
    console.log(
      `redis 4 streams, concurrency 16: peak held ${report.stats.peakHeld} (loop), ${brokerPeak} (broker); the 600 small-stream messages were all started within the first ${lastSmall} handler starts (${bigBefore} from the backlogged stream meanwhile)`,
    );
    expect(report.stats.peakHeld).toBeLessThanOrEqual(16);
    expect(brokerPeak).toBeLessThanOrEqual(16);
    expect(small.duplicates).toBe(0);
    // A fair share is a quarter of the slots per stream: the big one takes about one start in
    // four while the small ones have work (600 small → ~800 starts). Starved would be ~20,600.
    expect(lastSmall).toBeLessThanOrEqual(1000);
    const unacked = await Promise.all(streams.map((s) => broker.unacked(s)));
    expect(unacked.slice(1)).toEqual([0, 0, 0]);
    expect(unacked[0]).toBe(20_000 - (report.stats.acked - 600));
  });

  it('a source whose fetch keeps failing does not stop the others; drain acts on every source and closes each', async () => {
    const streams = ['a', 'b', 'c', 'd'].map((tag) => broker.unique(`multi-fail-${tag}`));
    for (const stream of streams) await broker.fill(stream, payloads(300, `${stream}:`));
    const real = await Promise.all(streams.map((s) => broker.source(s)));
    const closed: number[] = [];
    const sources: BrokerSource[] = real.map((source, i) =>
      delegate(source, {
        ...(i === 0
          ? {
              fetch: async () => {
                throw new Error('connection reset');
              },
            }
          : {}),
        close: async () => {
          closed.push(i);
          await source.close();
        },
      }),
    );
    const errors: string[] = [];
    const ledger = new Ledger();
    const consumer = consume<{ k: string }>(sources, ({ k }) => ledger.add(k), {
      concurrency: 8,
      onError: (error, op) => errors.push(`${op}: ${error.message}`),
    });
    consumers.push(consumer);
    await ledger.until(900);
    await until(() => errors.length >= 2, 'the failing fetch retried');
    const report = await consumer.drain({ timeout: 5000 });
    expect(closed.sort()).toEqual([0, 1, 2, 3]);
    expect(new Set(errors)).toEqual(new Set(['fetch: connection reset']));
    expect(report.stats.acked).toBe(900);
    expect(await Promise.all(streams.slice(1).map((s) => broker.unacked(s)))).toEqual([0, 0, 0]);
    expect(await broker.unacked(streams[0]!)).toBe(300); // untouched, still in its stream
  });
});
