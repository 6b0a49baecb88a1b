/**
 * consume() over Redis Streams, in one process, against the real server on loopback:
 * issue 5 items 1, 2, 5 (close while blocked), 6, 7 and 9, plus XAUTOCLAIM over deleted entries.
 * The multi-process items (3, 4, 5) are in redis.process.test.ts; the restart (8) in
 * redis.restart.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Consumer, consume } from '../../src/brokers/consumer.js';
import { redisSource } from '../../src/brokers/redis.js';
import { MalformedMessageError } from '../../src/errors.js';
import { deadline, delegate, Ledger, payloads } from '../fixtures/brokers/consumer-harness.js';
import { type RedisAdmin, redisAdmin, uniqueStream } from '../fixtures/brokers/redis-helpers.js';
import { deferred } from '../helpers.js';

let admin: RedisAdmin;
const consumers: Consumer[] = [];

beforeAll(async () => {
  admin = await redisAdmin();
});
afterAll(async () => {
  for (const c of consumers) await c.abort();
  await admin.cleanup();
});

async function source(stream: string, opts: Partial<Parameters<typeof redisSource>[0]> = {}) {
  admin.track(stream, `${stream}:dead`);
  return redisSource({ stream, group: 'g', ...opts });
}

function track(c: Consumer): Consumer {
  consumers.push(c);
  return c;
}

describe('consume() over Redis Streams', () => {
  it('item 1: 2,000 messages at concurrency 32 are each handled and acked, none left pending', async () => {
    const stream = uniqueStream('r1');
    await admin.fill(stream, payloads(2000));
    const ledger = new Ledger();
    let running = 0;
    let peakRunning = 0;
    const consumer = track(
      consume<{ k: string }>(
        await source(stream),
        async ({ k }) => {
          peakRunning = Math.max(peakRunning, ++running);
          await new Promise((r) => setImmediate(r));
          running--;
          ledger.add(k);
        },
        { concurrency: 32 },
      ),
    );
    await ledger.until(2000);
    const report = await consumer.close();
    expect(ledger.runs.size).toBe(2000);
    expect(ledger.duplicates).toBe(0);
    expect(report.stats.acked).toBe(2000);
    expect(report.stats.peakHeld).toBeLessThanOrEqual(32);
    expect(peakRunning).toBeLessThanOrEqual(32);
    expect(await admin.pending(stream)).toBe(0);
    expect(await admin.lag(stream)).toBe(0);
  });

  it('item 2: a failing handler is retried with backoff up to maxDeliveries, then dead-lettered with its error', async () => {
    const stream = uniqueStream('r2');
    await admin.fill(stream, [...payloads(49), { k: 'bad' }]);
    const ledger = new Ledger();
    const attempts: { at: number; deliveries: number }[] = [];
    const consumer = track(
      consume<{ k: string }>(
        await source(stream, { claimIdle: 400 }),
        async ({ k }, { message }) => {
          if (k === 'bad') {
            attempts.push({ at: Date.now(), deliveries: message.deliveryCount });
            throw new Error(`cannot handle ${k} (attempt ${message.deliveryCount})`);
          }
          ledger.add(k);
        },
        { concurrency: 8, maxDeliveries: 3, backoff: { initial: 50, max: 200, jitter: 0 } },
      ),
    );
    await ledger.until(49);
    const dead = deferred<void>();
    const poll = setInterval(async () => {
      if ((await admin.deadLetters(stream)).length > 0) dead.resolve();
    }, 20);
    await deadline(dead.promise, 10_000, 'dead letter').finally(() => clearInterval(poll));
    const report = await consumer.close();
    expect(attempts.map((a) => a.deliveries)).toEqual([1, 2, 3]);
    // Backoff: 50 ms after the 1st failure, 100 ms after the 2nd (no jitter), held by Redis.
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(45);
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(95);
    const [letter] = await admin.deadLetters(stream);
    expect(letter).toMatchObject({
      error: 'cannot handle bad (attempt 3)',
      deliveries: '3',
      body: '{"k":"bad"}',
    });
    expect(report.stats).toMatchObject({ acked: 49, retried: 2, deadLettered: 1 });
    expect(ledger.duplicates).toBe(0);
    expect(await admin.pending(stream)).toBe(0);
  });

  it('item 5: close() returns within 1 s while the fetch is blocked on an empty stream', async () => {
    const stream = uniqueStream('r5');
    const consumer = track(
      consume(await source(stream, { block: 5000 }), () => {}, { concurrency: 4 }),
    );
    await admin.blockedReader();
    const t0 = performance.now();
    const report = await consumer.close();
    const took = performance.now() - t0;
    console.log(`redis close() while blocked (BLOCK 5000): ${took.toFixed(1)} ms`);
    expect(took).toBeLessThan(1000);
    expect(report).toMatchObject({ completed: 0, released: 0, canceled: 0 });
  });

  it('item 6: with a slow handler and a 10,000 backlog, held never exceeds concurrency; the backlog stays in Redis', async () => {
    const stream = uniqueStream('r6');
    await admin.fill(stream, payloads(10_000));
    const ledger = new Ledger();
    let maxPending = 0;
    const consumer = track(
      consume<{ k: string }>(
        await source(stream),
        async ({ k }) => {
          await new Promise((r) => setTimeout(r, 5));
          ledger.add(k);
          if (ledger.runs.size % 50 === 0)
            maxPending = Math.max(maxPending, await admin.pending(stream));
        },
        { concurrency: 16 },
      ),
    );
    await ledger.until(400);
    const stats = consumer.stats();
    const lag = await admin.lag(stream);
    await consumer.close();
    console.log(
      `redis flow control: peak held ${stats.peakHeld} (concurrency 16), broker PEL peak ${maxPending}, backlog left ${lag}`,
    );
    expect(stats.peakHeld).toBeLessThanOrEqual(16);
    expect(maxPending).toBeLessThanOrEqual(16);
    expect(stats.fetched).toBeLessThanOrEqual(ledger.runs.size + 16);
    expect(lag).toBeGreaterThanOrEqual(10_000 - stats.fetched);
  });

  it('item 7: a slow but alive handler (longer than claimIdle) is not handed to a second consumer', async () => {
    const stream = uniqueStream('r7');
    await admin.fill(stream, [{ k: 'slow' }]);
    const runs: string[] = [];
    const slowStarted = deferred<void>();
    const a = track(
      consume<{ k: string }>(
        await source(stream, { consumer: 'a', claimIdle: 600 }),
        async ({ k }) => {
          runs.push(`a:${k}`);
          slowStarted.resolve();
          // 3x claimIdle; heartbeats every 200 ms leave 400 ms of slack on a loaded machine.
          await new Promise((r) => setTimeout(r, 1800));
        },
        { concurrency: 1 },
      ),
    );
    await slowStarted.promise;
    // b scans for entries idle >= 600 ms every 150 ms during a's 1.8 s handler.
    const b = track(
      consume<{ k: string }>(
        await source(stream, { consumer: 'b', claimIdle: 600 }),
        ({ k }) => {
          runs.push(`b:${k}`);
        },
        { concurrency: 1 },
      ),
    );
    const ra = await a.close();
    await b.close();
    expect(runs).toEqual(['a:slow']);
    expect(ra.stats).toMatchObject({ acked: 1, leaseLost: 0 });
    expect(await admin.pending(stream)).toBe(0);
  });

  it('item 7 (control): without the heartbeat the same handler IS redelivered to the second consumer', async () => {
    const stream = uniqueStream('r7c');
    await admin.fill(stream, [{ k: 'slow' }]);
    const runs: string[] = [];
    const bRan = deferred<void>();
    const inner = await source(stream, { consumer: 'a', claimIdle: 300 });
    const noBeat = delegate(inner, { heartbeatInterval: undefined, heartbeat: undefined });
    const a = track(
      consume<{ k: string }>(
        noBeat,
        async ({ k }) => {
          runs.push(`a:${k}`);
          await bRan.promise;
        },
        { concurrency: 1 },
      ),
    );
    const b = track(
      consume<{ k: string }>(
        await source(stream, { consumer: 'b', claimIdle: 300 }),
        ({ k }, { message }) => {
          runs.push(`b:${k}:${message.deliveryCount}`);
          bRan.resolve();
        },
        { concurrency: 1 },
      ),
    );
    await deadline(bRan.promise, 5000, 'redelivery to b');
    await a.close();
    await b.close();
    expect(runs).toEqual(['a:slow', 'b:slow:2']);
  });

  it('item 9: malformed messages (bad JSON, missing fields, oversized, not UTF-8) are dead-lettered at once; the rest flow', async () => {
    const stream = uniqueStream('r9');
    await admin.fill(stream, [
      { k: 'ok1' },
      '{not json',
      { kk: 'missing k' },
      { k: 'x'.repeat(5000) },
      Buffer.from([0xff, 0xfe, 0x7b]),
      { k: 'ok2' },
    ]);
    const seen: string[] = [];
    const consumer = track(
      consume<{ k: string }>(
        await source(stream),
        ({ k }) => {
          seen.push(k);
        },
        {
          concurrency: 4,
          maxBodySize: 1024,
          decode: (body) => {
            const value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
            if (typeof value?.k !== 'string')
              throw new MalformedMessageError('field k (string) is missing');
            return value;
          },
        },
      ),
    );
    const dead = deferred<void>();
    const poll = setInterval(async () => {
      if ((await admin.deadLetters(stream)).length >= 4 && seen.length >= 2) dead.resolve();
    }, 20);
    await deadline(dead.promise, 5000, 'four dead letters').finally(() => clearInterval(poll));
    const report = await consumer.close();
    expect(seen.sort()).toEqual(['ok1', 'ok2']);
    const letters = await admin.deadLetters(stream);
    expect(letters.map((l) => l.code)).toEqual(Array(4).fill('ERR_MESSAGE_MALFORMED'));
    expect(letters.map((l) => l.deliveries)).toEqual(['1', '1', '1', '1']);
    const errors = letters.map((l) => l.error).join('\n');
    expect(errors).toMatch(/decode failed: .*JSON/);
    expect(errors).toMatch(/field k \(string\) is missing/);
    expect(errors).toMatch(/over maxBodySize 1024/);
    expect(errors).toMatch(/decode failed: .*(encoded|utf-8|UTF-8)/i);
    expect(report.stats).toMatchObject({ acked: 2, deadLettered: 4, malformed: 4, retried: 0 });
    expect(await admin.pending(stream)).toBe(0);
  });

  it('release() hands fetched messages back at once, without charging a delivery', async () => {
    const stream = uniqueStream('rrel');
    await admin.fill(stream, payloads(3));
    const a = await source(stream, { consumer: 'a' });
    const b = await source(stream, { consumer: 'b' });
    const never = new AbortController().signal;
    try {
      const first = await a.fetch(3, never);
      expect(first.map((m) => m.deliveryCount)).toEqual([1, 1, 1]);
      for (const m of first) await a.release(m);
      // claimIdle is 30 s by default: only a release makes them claimable by b right away.
      const again = await b.fetch(3, never);
      expect(again.map((m) => m.id).sort()).toEqual(first.map((m) => m.id).sort());
      expect(again.map((m) => m.deliveryCount)).toEqual([1, 1, 1]);
      for (const m of again) await b.ack(m);
      expect(await admin.pending(stream)).toBe(0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a caller-owned client is used and left open by close()', async () => {
    const stream = uniqueStream('rown');
    await admin.fill(stream, payloads(5));
    const ledger = new Ledger();
    const consumer = consume<{ k: string }>(
      await source(stream, { client: admin.client }),
      ({ k }) => {
        ledger.add(k);
      },
      { concurrency: 2 },
    );
    await ledger.until(5);
    await consumer.close();
    expect(admin.client.isOpen).toBe(true);
    expect(await admin.pending(stream)).toBe(0);
  });

  it('deleteOnAck: acked and dead-lettered entries leave the stream', async () => {
    const stream = uniqueStream('rdelack');
    await admin.fill(stream, [...payloads(20), '{broken']);
    const ledger = new Ledger();
    const consumer = consume<{ k: string }>(
      await source(stream, { deleteOnAck: true }),
      ({ k }) => {
        ledger.add(k);
      },
      { concurrency: 4, onError: () => {} },
    );
    await ledger.until(20);
    await admin.until(async () => (await admin.deadLetters(stream)).length === 1, 'dead letter');
    await consumer.close();
    expect(Number(await admin.client.sendCommand(['XLEN', stream]))).toBe(0);
    expect(await admin.pending(stream)).toBe(0);
  });

  it('XAUTOCLAIM passes over a long pending list (many calls) and copes with deleted entries', async () => {
    const stream = uniqueStream('rdel');
    const ids = await admin.fill(stream, payloads(300));
    // A consumer "dies" holding all 300; then every other one is XDELed. With 2 free slots one
    // XAUTOCLAIM scans at most 20 entries, so a pass takes many calls over several fetches.
    await admin.client.sendCommand(['XGROUP', 'CREATE', stream, 'g', '0']);
    await admin.client.sendCommand([
      'XREADGROUP',
      'GROUP',
      'g',
      'dead',
      'COUNT',
      '300',
      'STREAMS',
      stream,
      '>',
    ]);
    await admin.client.sendCommand(['XDEL', stream, ...ids.filter((_, i) => i % 2 === 0)]);
    const ledger = new Ledger();
    const counts = new Set<number>();
    const consumer = track(
      consume<{ k: string }>(
        await source(stream, { claimIdle: 50 }),
        ({ k }, { message }) => {
          counts.add(message.deliveryCount);
          ledger.add(k);
        },
        { concurrency: 2 },
      ),
    );
    await ledger.until(150);
    await consumer.close();
    const survivors = payloads(300)
      .filter((_, i) => i % 2 === 1)
      .map((p) => p.k);
    expect([...ledger.runs.keys()].sort()).toEqual(survivors.sort());
    expect(ledger.duplicates).toBe(0);
    expect([...counts]).toEqual([2]);
    expect(await admin.pending(stream)).toBe(0);
  });
});
