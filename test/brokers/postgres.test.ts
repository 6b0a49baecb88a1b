/**
 * consume() over the PostgreSQL table queue, in one process, against the real server on
 * loopback: issue 5 items 1, 2, 5 (close while waiting), 6, 7 and 9, plus the lease fencing.
 * The multi-process items (3, 4, 5) are in postgres.process.test.ts; the restart (8) in
 * postgres.restart.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { type Consumer, consume } from '../../src/brokers/consumer.js';
import { enqueue, postgresSource } from '../../src/brokers/postgres.js';
import { MalformedMessageError } from '../../src/errors.js';
import { deadline, delegate, Ledger, payloads } from '../fixtures/brokers/consumer-harness.js';
import { PG_URL, pgAdmin, uniqueTable } from '../fixtures/brokers/postgres-helpers.js';
import { deferred } from '../helpers.js';

const admin = pgAdmin();
const consumers: Consumer[] = [];

afterAll(async () => {
  for (const c of consumers) await c.abort();
  await admin.cleanup();
});

function source(table: string, opts: Partial<Parameters<typeof postgresSource>[0]> = {}) {
  admin.track(table);
  return postgresSource({ connectionString: PG_URL, table, ...opts });
}

function track(c: Consumer): Consumer {
  consumers.push(c);
  return c;
}

/** Polls a database condition (the broker has no event for "row moved to the dead table"). */
async function until(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const done = deferred<void>();
  const timer = setInterval(async () => {
    if (await check()) done.resolve();
  }, 20);
  await deadline(done.promise, ms, what).finally(() => clearInterval(timer));
}

describe('consume() over a PostgreSQL table queue', () => {
  it('item 1: 2,000 messages at concurrency 32 are each handled and acked, none left', async () => {
    const table = uniqueTable('p1');
    await admin.fill(table, payloads(2000));
    const ledger = new Ledger();
    let running = 0;
    let peakRunning = 0;
    const consumer = track(
      consume<{ k: string }>(
        await source(table),
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
    expect(await admin.remaining(table)).toBe(0);
  });

  it('item 2: a failing handler is retried with backoff up to maxDeliveries, then dead-lettered with its error', async () => {
    const table = uniqueTable('p2');
    await admin.fill(table, [...payloads(49), { k: 'bad' }]);
    const ledger = new Ledger();
    const attempts: { at: number; deliveries: number }[] = [];
    const consumer = track(
      consume<{ k: string }>(
        await source(table),
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
    await until(async () => (await admin.deadLetters(table)).length > 0, 'dead letter');
    const report = await consumer.close();
    expect(attempts.map((a) => a.deliveries)).toEqual([1, 2, 3]);
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(45);
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(95);
    const [letter] = await admin.deadLetters(table);
    expect(letter).toMatchObject({
      error: 'cannot handle bad (attempt 3)',
      deliveries: 3,
      body: '{"k":"bad"}',
    });
    expect(report.stats).toMatchObject({ acked: 49, retried: 2, deadLettered: 1 });
    expect(await admin.remaining(table)).toBe(0);
  });

  it('item 5: close() returns within 1 s while waiting on an empty queue; a NOTIFY wakes the wait at once', async () => {
    const table = uniqueTable('p5');
    const got = deferred<number>();
    const consumer = track(
      consume<{ k: string }>(
        await source(table, { pollInterval: 60_000 }),
        () => got.resolve(performance.now()),
        { concurrency: 4 },
      ),
    );
    // Poll interval 60 s: only the notification can deliver this row promptly.
    await new Promise((r) => setTimeout(r, 100));
    const sent = performance.now();
    await enqueue(admin.pool, table, { k: 'wake' });
    const latency = (await deadline(got.promise, 5000, 'notified delivery')) - sent;
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    const report = await consumer.close();
    const took = performance.now() - t0;
    console.log(
      `postgres: NOTIFY-to-handler ${latency.toFixed(1)} ms; close() while waiting ${took.toFixed(1)} ms`,
    );
    expect(latency).toBeLessThan(1000);
    expect(took).toBeLessThan(1000);
    expect(report.stats.acked).toBe(1);
  });

  it('item 6: with a slow handler and a 10,000 backlog, held never exceeds concurrency; the backlog stays in the table', async () => {
    const table = uniqueTable('p6');
    await admin.fill(table, payloads(10_000));
    const ledger = new Ledger();
    let maxLeased = 0;
    const consumer = track(
      consume<{ k: string }>(
        await source(table),
        async ({ k }) => {
          await new Promise((r) => setTimeout(r, 5));
          ledger.add(k);
          if (ledger.runs.size % 50 === 0)
            maxLeased = Math.max(maxLeased, await admin.leased(table));
        },
        { concurrency: 16 },
      ),
    );
    await ledger.until(400);
    const stats = consumer.stats();
    const report = await consumer.close();
    const left = await admin.remaining(table);
    console.log(
      `postgres flow control: peak held ${stats.peakHeld} (concurrency 16), leased rows peak ${maxLeased}, backlog left ${left}`,
    );
    expect(stats.peakHeld).toBeLessThanOrEqual(16);
    expect(maxLeased).toBeLessThanOrEqual(16);
    expect(stats.fetched).toBeLessThanOrEqual(ledger.runs.size + 16);
    expect(left).toBe(10_000 - report.stats.acked);
  });

  it('item 7: a slow but alive handler (longer than the lease) is not handed to a second consumer', async () => {
    const table = uniqueTable('p7');
    await admin.fill(table, [{ k: 'slow' }]);
    const runs: string[] = [];
    const started = deferred<void>();
    const a = track(
      consume<{ k: string }>(
        await source(table, { lease: 600, pollInterval: 50 }),
        async ({ k }) => {
          runs.push(`a:${k}`);
          started.resolve();
          // 3x the lease; heartbeats every 200 ms leave 400 ms of slack on a loaded machine.
          await new Promise((r) => setTimeout(r, 1800));
        },
        { concurrency: 1 },
      ),
    );
    await started.promise;
    const b = track(
      consume<{ k: string }>(
        await source(table, { lease: 600, pollInterval: 50 }),
        ({ k }) => {
          runs.push(`b:${k}`);
        },
        { concurrency: 1 },
      ),
    );
    const ra = await a.close();
    await b.close();
    expect(runs).toEqual(['a:slow']);
    expect(ra.stats).toMatchObject({ acked: 1, leaseLost: 0, errors: 0 });
    expect(await admin.remaining(table)).toBe(0);
  });

  it('item 7 (control) and lease fencing: without heartbeats the row is re-claimed, and the late ack is refused', async () => {
    const table = uniqueTable('p7c');
    await admin.fill(table, [{ k: 'slow' }]);
    const runs: string[] = [];
    const bRan = deferred<void>();
    const errors: string[] = [];
    const inner = await source(table, { lease: 300, pollInterval: 50 });
    const a = track(
      consume<{ k: string }>(
        delegate(inner, { heartbeat: undefined, heartbeatInterval: undefined }),
        async ({ k }) => {
          runs.push(`a:${k}`);
          await bRan.promise;
        },
        { concurrency: 1, onError: (e, op) => errors.push(`${op}: ${e.message}`) },
      ),
    );
    const b = track(
      consume<{ k: string }>(
        await source(table, { lease: 300, pollInterval: 50 }),
        async ({ k }, { message }) => {
          runs.push(`b:${k}:${message.deliveryCount}`);
          bRan.resolve();
          await new Promise((r) => setTimeout(r, 50)); // a's ack lands first and must be refused
        },
        { concurrency: 1 },
      ),
    );
    await deadline(bRan.promise, 5000, 'redelivery to b');
    const ra = await a.close();
    const rb = await b.close();
    expect(runs).toEqual(['a:slow', 'b:slow:2']);
    expect(errors).toEqual([
      expect.stringMatching(/^ack: ack refused for message \d+: its lease was lost/),
    ]);
    expect(ra.stats.acked).toBe(0);
    expect(rb.stats.acked).toBe(1);
    expect(await admin.remaining(table)).toBe(0);
  });

  it('item 9: malformed messages (bad JSON, missing fields, oversized, not UTF-8) are dead-lettered at once; the rest flow', async () => {
    const table = uniqueTable('p9');
    await admin.fill(table, [
      { k: 'ok1' },
      '{not json',
      { kk: 'missing k' },
      { k: 'x'.repeat(5000) },
      new Uint8Array([0xff, 0xfe, 0x7b]),
      { k: 'ok2' },
    ]);
    const seen: string[] = [];
    const consumer = track(
      consume<{ k: string }>(
        await source(table),
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
    await until(
      async () => (await admin.deadLetters(table)).length >= 4 && seen.length >= 2,
      'four dead letters',
    );
    const report = await consumer.close();
    expect(seen.sort()).toEqual(['ok1', 'ok2']);
    const letters = await admin.deadLetters(table);
    expect(letters.map((l) => l.code)).toEqual(Array(4).fill('ERR_MESSAGE_MALFORMED'));
    expect(letters.map((l) => l.deliveries)).toEqual([1, 1, 1, 1]);
    const errors = letters.map((l) => l.error).join('\n');
    expect(errors).toMatch(/decode failed: .*JSON/);
    expect(errors).toMatch(/field k \(string\) is missing/);
    expect(errors).toMatch(/over maxBodySize 1024/);
    expect(errors).toMatch(/decode failed: .*(encoded|utf-8|UTF-8)/i);
    expect(report.stats).toMatchObject({ acked: 2, deadLettered: 4, malformed: 4, retried: 0 });
    expect(await admin.remaining(table)).toBe(0);
  });
  it('release() hands fetched rows back at once, without charging a delivery', async () => {
    const table = uniqueTable('prel');
    await admin.fill(table, payloads(3));
    const a = await source(table);
    const b = await source(table);
    const never = new AbortController().signal;
    try {
      const first = await a.fetch(3, never);
      expect(first.map((m) => m.deliveryCount)).toEqual([1, 1, 1]);
      expect(await b.fetch(3, AbortSignal.timeout(50))).toEqual([]); // leased to a
      for (const m of first) await a.release(m);
      const again = await b.fetch(3, never);
      expect(again.map((m) => m.id).sort()).toEqual(first.map((m) => m.id).sort());
      expect(again.map((m) => m.deliveryCount)).toEqual([1, 1, 1]);
      for (const m of again) await b.ack(m);
      // a's lease is gone: its late completion is refused.
      await expect(a.ack(first[0]!)).rejects.toThrow(/lease was lost/);
      expect(await admin.remaining(table)).toBe(0);
    } finally {
      await a.close();
      await b.close();
    }
  });
  it('a caller-owned pool is used and left open by close()', async () => {
    const table = uniqueTable('pown');
    await admin.fill(table, payloads(5));
    const ledger = new Ledger();
    const consumer = consume<{ k: string }>(
      await source(table, { pool: admin.pool }),
      ({ k }) => {
        ledger.add(k);
      },
      { concurrency: 2 },
    );
    await ledger.until(5);
    await consumer.close();
    expect((await admin.pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    expect(await admin.remaining(table)).toBe(0);
  });
});
