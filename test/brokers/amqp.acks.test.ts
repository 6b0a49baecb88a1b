/**
 * RabbitMQ acks coalesced per event-loop turn (src/brokers/amqp/acks.ts), against the real
 * broker on loopback: the acks of one turn go out as one `basic.ack` with `multiple` where every
 * delivery it covers is finished, one frame each behind a delivery still held, and every message
 * is settled exactly once (a tag acked twice would make RabbitMQ close the channel, and the
 * messages would come back: `fetched` would exceed the count and `errors` would be non-zero).
 * The frames are counted by watching amqplib's `Channel.prototype.ack` (observed, not replaced).
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { amqpSource } from '../../src/brokers/amqp/index.js';
import { consume } from '../../src/brokers/consumer.js';
import {
  AMQP_URL,
  amqpAdmin,
  brokerCounts,
  uniqueQueue,
} from '../fixtures/brokers/amqp-helpers.js';
import { until } from '../fixtures/brokers/broker-under-test.js';

const admin = await amqpAdmin();
/** amqplib's Channel class (not exported by the package): the prototype of any plain channel. */
const probe = await admin.conn.createChannel();
const Channel = { prototype: Object.getPrototypeOf(probe) } as {
  prototype: { ack(msg: unknown, allUpTo?: boolean): void };
};
await probe.close();
const queues: string[] = [];
afterEach(() => vi.restoreAllMocks());
afterAll(() => admin.cleanup(...queues));

async function filledQueue(count: number): Promise<string> {
  const queue = uniqueQueue('acks');
  queues.push(queue);
  await (await amqpSource({ url: AMQP_URL, queue })).close(); // declares the topology
  await admin.publishMany(queue, count, (i) => JSON.stringify({ i }));
  return queue;
}

/** Every `basic.ack` the process sends from now on: multiple or single. */
function watchAcks(): { multiple: number; single: number } {
  const seen = { multiple: 0, single: 0 };
  const ack = Channel.prototype.ack;
  vi.spyOn(Channel.prototype, 'ack').mockImplementation(function (this: unknown, msg, allUpTo) {
    if (allUpTo) seen.multiple++;
    else seen.single++;
    return ack.call(this, msg, allUpTo);
  });
  return seen;
}

describe('RabbitMQ acks coalesced per turn', () => {
  it('acks that finish together go out as multiple acks, each message settled exactly once', async () => {
    const queue = await filledQueue(1000);
    const frames = watchAcks();
    const source = await amqpSource({ url: AMQP_URL, queue });
    const consumer = consume(source, async () => {}, { concurrency: 64 });
    await until(() => consumer.stats().acked === 1000, 'all acked', 20_000);
    const report = await consumer.close();
    expect(report.stats).toMatchObject({ fetched: 1000, acked: 1000, errors: 0, retried: 0 });
    expect(frames.multiple).toBeGreaterThan(0);
    // Far fewer frames than messages (one per message before coalescing).
    expect(frames.multiple + frames.single).toBeLessThan(500);
    expect(await brokerCounts(queue)).toEqual({ ready: 0, unacked: 0 });
  }, 30_000);

  it('a held delivery stops the multiple ack: the acks behind it go one by one, and it is acked on its own later', async () => {
    const queue = await filledQueue(20);
    const frames = watchAcks();
    const source = await amqpSource({ url: AMQP_URL, queue });
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const consumer = consume(
      source,
      async (payload: { i: number }) => {
        if (payload.i === 0) await held; // the oldest delivery finishes last
      },
      { concurrency: 64 },
    );
    await until(() => consumer.stats().acked === 19, 'all but the first acked', 10_000);
    // Nothing may cover the held first delivery: every ack so far was a single frame.
    expect(frames).toEqual({ multiple: 0, single: 19 });
    release();
    const report = await consumer.close();
    expect(report.stats).toMatchObject({ fetched: 20, acked: 20, errors: 0 });
    expect(frames.multiple + frames.single).toBe(20);
    expect(await brokerCounts(queue)).toEqual({ ready: 0, unacked: 0 });
  }, 20_000);

  it('a delivery being retried between acked ones is not covered by their multiple ack', async () => {
    const queue = await filledQueue(200);
    const source = await amqpSource({ url: AMQP_URL, queue });
    const runs = new Map<number, number>();
    const consumer = consume(
      source,
      async (payload: { i: number }) => {
        runs.set(payload.i, (runs.get(payload.i) ?? 0) + 1);
        if (payload.i % 50 === 7 && runs.get(payload.i) === 1) throw new Error('once');
      },
      { concurrency: 64, maxDeliveries: 3, backoff: () => 0 },
    );
    await until(() => consumer.stats().acked === 200, 'all acked', 20_000);
    const report = await consumer.close();
    expect(report.stats).toMatchObject({ acked: 200, retried: 4, deadLettered: 0, errors: 0 });
    expect([...runs.values()].filter((n) => n === 2)).toHaveLength(4);
    expect([...runs.values()].every((n) => n <= 2)).toBe(true);
    expect(await brokerCounts(queue)).toEqual({ ready: 0, unacked: 0 });
  }, 30_000);

  it('ackMany: a batch that is the oldest open deliveries goes out as one multiple frame; one behind a held delivery as one frame each', async () => {
    const queue = await filledQueue(10);
    const source = await amqpSource({ url: AMQP_URL, queue, prefetch: 10 });
    try {
      const held = await source.fetch(10, new AbortController().signal);
      expect(held).toHaveLength(10);
      const frames = watchAcks();
      // The oldest four: one multiple ack.
      expect(await source.ackMany(held.slice(0, 4))).toBeUndefined();
      expect(frames).toEqual({ multiple: 1, single: 0 });
      // Behind held[4], still open: one frame each, none of them multiple.
      expect(await source.ackMany(held.slice(5, 8))).toBeUndefined();
      expect(frames).toEqual({ multiple: 1, single: 3 });
      // The rest, with held[4] now acked too: one multiple frame covers 4, 8 and 9 (5-7 were
      // acked already and are no longer open).
      expect(await source.ackMany([held[4]!, held[8]!, held[9]!])).toBeUndefined();
      expect(frames).toEqual({ multiple: 2, single: 3 });
      await until(async () => (await brokerCounts(queue)).unacked === 0, 'all acked', 10_000);
      expect(await brokerCounts(queue)).toEqual({ ready: 0, unacked: 0 });
    } finally {
      await source.close();
    }
  }, 20_000);
});
