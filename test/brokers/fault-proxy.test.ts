/**
 * The TCP fault proxy (fixtures/brokers/fault-proxy.ts) and a consumer living through what it
 * simulates. The proxy sits between the client and the shared broker: cutting and refusing its
 * connections breaks the client's path only, never the broker.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { redisSource } from '../../src/brokers/redis/index.js';
import { deadline, Ledger, payloads } from '../fixtures/brokers/consumer-harness.js';
import { type FaultProxy, startFaultProxy } from '../fixtures/brokers/fault-proxy.js';
import { type RedisAdmin, redisAdmin, uniqueStream } from '../fixtures/brokers/redis-helpers.js';
import { deferred } from '../helpers.js';

/** An echo server that counts the bytes it received. */
async function echoServer() {
  let received = 0;
  const server: Server = createServer((s) => {
    s.on('error', () => {});
    s.on('data', (d) => {
      received += d.length;
      s.write(d);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    received: () => received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function client(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

const nextData = (s: Socket) => new Promise<string>((r) => s.once('data', (d) => r(d.toString())));
const closed = (s: Socket) => new Promise<void>((r) => s.once('close', () => r()));

describe('the TCP fault proxy', () => {
  let echo: Awaited<ReturnType<typeof echoServer>>;
  let proxy: FaultProxy;
  beforeAll(async () => {
    echo = await echoServer();
  });
  afterEach(() => proxy?.close());
  afterAll(() => echo.close());

  it('forwards both ways, and delay holds each chunk', async () => {
    proxy = await startFaultProxy({ port: echo.port });
    const s = await client(proxy.port);
    s.write('ping');
    expect(await nextData(s)).toBe('ping');
    proxy.delay(150);
    const t0 = performance.now();
    s.write('slow');
    expect(await nextData(s)).toBe('slow');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290); // held on the way in and out
    s.destroy();
  });

  it('stall keeps the connection open and forwards nothing until resume', async () => {
    proxy = await startFaultProxy({ port: echo.port });
    const s = await client(proxy.port);
    s.write('a');
    expect(await nextData(s)).toBe('a');
    const before = echo.received();
    proxy.stall();
    s.write('b');
    const answer = nextData(s);
    await sleep(100);
    expect(echo.received()).toBe(before);
    expect(proxy.open).toBe(1);
    proxy.resume();
    expect(await answer).toBe('b');
    s.destroy();
  });

  it('cut resets open connections; refuse resets new ones until accept', async () => {
    proxy = await startFaultProxy({ port: echo.port });
    const s = await client(proxy.port);
    s.on('error', () => {});
    const gone = closed(s);
    proxy.cut();
    await gone;
    proxy.refuse();
    const refused = tcpConnect(proxy.port, '127.0.0.1');
    refused.on('error', () => {});
    await closed(refused);
    expect(refused.bytesRead).toBe(0);
    proxy.accept();
    const again = await client(proxy.port);
    again.write('back');
    expect(await nextData(again)).toBe('back');
    again.destroy();
  });
});

describe('a consumer behind the fault proxy', () => {
  let admin: RedisAdmin;
  let proxy: FaultProxy;
  beforeAll(async () => {
    admin = await redisAdmin();
    proxy = await startFaultProxy({ port: 6379 });
  });
  afterAll(async () => {
    await proxy?.close();
    await admin?.client.close().catch(() => {});
  });

  // Under load (4 copies in parallel) this once failed about 1 run in 20: a node-redis
  // connection came back from the reconnect out of step (see RedisLink and the redis.links tests).
  it('Redis: the link is cut and refused mid-run; the consumer reconnects and finishes, nothing is lost', async () => {
    const stream = uniqueStream('proxy');
    await admin.fill(stream, payloads(2000));
    const ledger = new Ledger();
    const errors: string[] = [];
    const sawOutage = deferred<void>();
    const consumer = consume<{ k: string }>(
      await redisSource({
        url: `redis://127.0.0.1:${proxy.port}`,
        stream,
        group: 'g',
        lease: 1000,
      }),
      async ({ k }) => {
        await sleep(1);
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
    proxy.refuse();
    proxy.cut();
    // Stay unreachable until the consumer has noticed, then let it back in. It notices either by
    // a command failing (onError) or, when the cut found no command in flight, by its client
    // trying to reconnect: node-redis then holds new commands in its offline queue, so no
    // error need ever surface.
    await deadline(
      Promise.race([sawOutage.promise, proxy.refusedAtLeast(1)]),
      30_000,
      'consumer noticing the outage',
    );
    proxy.accept();
    await ledger.until(2000, 30_000);
    await admin.until(
      async () => (await admin.pending(stream)) + (await admin.lag(stream)) === 0,
      'all acked',
    );
    await consumer.close();
    expect(errors.length + proxy.refused).toBeGreaterThan(0); // the outage was noticed
    expect(ledger.runs.size).toBe(2000);
    expect(proxy.connections).toBeGreaterThan(1); // it reconnected through the proxy
    await admin.client.del(stream);
  });
});
