/**
 * Redis restart: the server stops and starts mid-run; the consumer reconnects and finishes,
 * nothing is lost. Runs against a private redis-server (redis-server.ts: a free port, its own
 * folder) with AOF (`appendfsync always`), because the shared server on 6379 keeps nothing on
 * disk — and is never touched by tests. The second case shows a restart that loses the data:
 * the consumer re-creates its group and goes on with what is sent afterwards. The private
 * servers are removed at the end, also when a test fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { redisSource } from '../../src/brokers/redis/index.js';
import { deadline, Ledger, payloads } from '../fixtures/brokers/consumer-harness.js';
import { type RedisAdmin, redisAdmin, uniqueStream } from '../fixtures/brokers/redis-helpers.js';
import { privateRedis } from '../fixtures/brokers/redis-server.js';
import { deferred } from '../helpers.js';

let server: Awaited<ReturnType<typeof privateRedis>>;
let URL = '';
let admin: RedisAdmin;

beforeAll(async () => {
  server = await privateRedis();
  URL = server.url;
  await server.start();
  admin = await redisAdmin(URL);
});

afterAll(async () => {
  await admin?.client.close().catch(() => {});
  await server?.remove();
});

describe('Redis restart mid-run', () => {
  it('with AOF, the consumer reconnects and finishes; nothing is lost', async () => {
    const stream = uniqueStream('restart');
    await admin.fill(stream, payloads(2000));
    const ledger = new Ledger();
    const errors: string[] = [];
    const sawOutage = deferred<void>();
    const consumer = consume<{ k: string }>(
      await redisSource({ url: URL, stream, group: 'g', lease: 1000 }),
      async ({ k }) => {
        await new Promise((r) => setTimeout(r, 1));
        ledger.add(k);
      },
      {
        concurrency: 16,
        onError: (e, op) => {
          errors.push(`${op}: ${e.message}`);
          sawOutage.resolve();
        },
      },
    );
    await ledger.until(500);
    await server.stop(); // SIGTERM: with AOF, everything acknowledged so far is on disk
    // Stay down until the consumer has noticed (a failed fetch or ack), then come back.
    await deadline(sawOutage.promise, 10_000, 'consumer noticing the outage');
    await server.start();
    await ledger.until(2000, 30_000);
    // Finished = every entry acked, including any whose ack was lost in the outage (those are
    // reclaimed after lease and run again: the duplicates reported below).
    await admin.until(
      async () => (await admin.pending(stream)) + (await admin.lag(stream)) === 0,
      'all acked',
    );
    const report = await consumer.close();
    console.log(
      `redis restart: ${ledger.runs.size} distinct, ${ledger.duplicates} duplicates, ${errors.length} broker errors during the outage (${errors.filter((e) => e.startsWith('ack:')).length} unconfirmed acks)`,
    );
    expect(errors.length).toBeGreaterThan(0); // the outage was real
    expect(ledger.runs.size).toBe(2000);
    // Every handler run was acked, or its ack was lost in the outage (unconfirmed: applied or not).
    const lostAcks = errors.filter((e) => e.startsWith('ack:')).length;
    expect(report.stats.acked + lostAcks).toBe(2000 + ledger.duplicates);
    expect(ledger.duplicates).toBeLessThanOrEqual(lostAcks);
    expect(await admin.pending(stream)).toBe(0);
    expect(await admin.lag(stream)).toBe(0);
  });

  it('without persistence the stream is gone after a restart: the group is re-created and later messages flow', async () => {
    const stream = uniqueStream('volatile');
    const ledger = new Ledger();
    await admin.fill(stream, payloads(100, 'before'));
    const consumer = consume<{ k: string }>(
      await redisSource({ url: URL, stream, group: 'g', fetchWait: 100 }),
      ({ k }) => {
        ledger.add(k);
      },
      { concurrency: 8, onError: () => {} },
    );
    await ledger.until(100);
    await server.stop();
    // A server that kept nothing, on the same port: the stream and its group are gone.
    const empty = await privateRedis({ port: server.port });
    try {
      await empty.start();
      await admin.client.ping().catch(() => admin.client.ping());
      await admin.fill(stream, payloads(100, 'after'));
      await ledger.until(200, 30_000);
      await consumer.close();
      expect([...ledger.runs.keys()].filter((k) => k.startsWith('after'))).toHaveLength(100);
      expect(await admin.pending(stream)).toBe(0);
    } finally {
      await empty.remove();
      await server.start();
    }
  });
});
