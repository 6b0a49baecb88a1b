/**
 * A Redis consumer during outages it cannot fix: a server that takes connections and closes them
 * (Redis at `maxclients`, a proxy in front of a dead server) must get reconnects with backoff,
 * not a busy loop; and `close()` must not wait for the outage to end. A private redis-server
 * (its `maxclients` is changed) and the TCP fault proxy; the shared Redis is only proxied to.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { redisSource } from '../../src/brokers/redis/index.js';
import { readerName } from '../../src/brokers/redis/source.js';
import { deadline, Ledger, payloads } from '../fixtures/brokers/consumer-harness.js';
import { startFaultProxy } from '../fixtures/brokers/fault-proxy.js';
import { type RedisAdmin, redisAdmin, uniqueStream } from '../fixtures/brokers/redis-helpers.js';
import { privateRedis } from '../fixtures/brokers/redis-server.js';
import { deferred } from '../helpers.js';

let server: Awaited<ReturnType<typeof privateRedis>>;
let admin: RedisAdmin;

beforeAll(async () => {
  server = await privateRedis();
  await server.start();
  admin = await redisAdmin(server.url);
});

afterAll(async () => {
  await admin?.client.close().catch(() => {});
  await server?.remove();
});

async function statsField(name: string): Promise<number> {
  const info = String(await admin.client.sendCommand(['INFO', 'stats']));
  return Number(new RegExp(`${name}:(\\d+)`).exec(info)?.[1]);
}

describe('a Redis consumer during an outage', () => {
  it('both connections are named (a handshake), so a server that accepts and closes them gets reconnects with backoff, not a busy loop', async () => {
    const stream = uniqueStream('maxclients');
    const ran = deferred<void>();
    const consumer = consume(
      await redisSource({ url: server.url, stream, group: 'g' }),
      () => ran.resolve(),
      { concurrency: 4, onError: () => {} },
    );
    const list = String(await admin.client.sendCommand(['CLIENT', 'LIST']));
    expect(list).toContain(`name=${readerName(stream, 'g')} `);
    expect(list).toContain(`name=${readerName(stream, 'g')}:cmd `);
    // Only the admin connection may stay: every new one is accepted, refused, closed.
    await admin.client.sendCommand(['CONFIG', 'SET', 'maxclients', '1']);
    await admin.client.sendCommand(['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']);
    const before = await statsField('rejected_connections');
    const cpu = process.cpuUsage();
    await sleep(1_000); // a window to count reconnects in, not a wait for something to happen
    const used = process.cpuUsage(cpu);
    const rejected = (await statsField('rejected_connections')) - before;
    // Backoff from 50 ms doubling: a handful per connection in a second. Without a handshake
    // node-redis reconnected at once: thousands a second, a whole core.
    expect(rejected).toBeLessThan(100);
    expect((used.user + used.system) / 1000).toBeLessThan(500);
    await admin.client.sendCommand(['CONFIG', 'SET', 'maxclients', '10000']);
    await admin.client.sendCommand(['XADD', stream, '*', 'body', '{}']);
    await deadline(ran.promise, 30_000, 'a handler after the server takes connections again');
    await consumer.close();
    await admin.client.del(stream);
  });

  it.each([
    ['refused and cut', 5_000],
    ['stalled', 15_000],
  ] as const)(
    'close() during an outage (link %s) resolves within its bound; what it did not ack stays in the group',
    async (fault, bound) => {
      const proxy = await startFaultProxy({ port: server.port });
      const stream = uniqueStream('close-outage');
      await admin.fill(stream, payloads(200));
      const ledger = new Ledger();
      const consumer = consume<{ k: string }>(
        await redisSource({
          url: `redis://127.0.0.1:${proxy.port}`,
          stream,
          group: 'g',
          fetchWait: 200,
          connectTimeout: 1_000,
          lease: 2_000,
        }),
        async ({ k }) => {
          await sleep(5);
          ledger.add(k);
        },
        { concurrency: 4, onError: () => {} },
      );
      await ledger.until(20);
      if (fault === 'stalled') proxy.stall();
      else {
        proxy.refuse();
        proxy.cut();
        // Closed during the outage, not in the instant of the cut: once a reconnect was refused.
        await deadline(proxy.refusedAtLeast(1), 30_000, 'a reconnect attempt');
      }
      const started = performance.now();
      // Refused: the fetch is dropped at once; an ack in flight is waited for at most `lease`
      // (2 s). Stalled (bound: stuck deadline + watchdog tick + an ack's resend within `lease` +
      // the 2 s close grace, about 9 s here): the link looks up, so its commands wait for the stuck-connection deadline
      // (fetchWait + connectTimeout + 2 s), then a graceful close waits at most 2 s more.
      await deadline(consumer.close(), bound, `close() with the link ${fault}`);
      expect(performance.now() - started).toBeLessThan(bound);
      proxy.accept();
      proxy.resume();
      await proxy.close();
      // What was not acked is still pending (claimed again after the lease) or not yet read.
      const acked = ledger.runs.size;
      const left = (await admin.pending(stream)) + (await admin.lag(stream));
      expect(acked + left).toBeGreaterThanOrEqual(200);
      await admin.client.del(stream);
    },
  );
});
