/**
 * consume() over RabbitMQ, against the real broker on loopback (issue 5, items 1-7 and 9; the
 * broker restart, item 8, is in amqp.restart.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AmqpSource, amqpSource } from '../../src/brokers/amqp.js';
import { consume } from '../../src/brokers/consumer.js';
import { MalformedMessageError } from '../../src/errors.js';
import { forkAmqpConsumer, handled } from '../fixtures/brokers/amqp-child.js';
import {
  type AmqpAdmin,
  amqpAdmin,
  brokerCounts,
  uniqueQueue,
} from '../fixtures/brokers/amqp-helpers.js';

let admin: AmqpAdmin;
let dir: string;
const queues: string[] = [];
const sources: AmqpSource[] = [];

async function setup() {
  const queue = uniqueQueue('c');
  queues.push(queue);
  const source = await amqpSource({ queue });
  sources.push(source);
  return { queue, source };
}

const json = (i: number) => JSON.stringify({ i });

async function until(cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** Nothing ready and nothing unacked (no consumer left holding anything). */
async function empty(queue: string): Promise<boolean> {
  const c = await brokerCounts(queue);
  return c.ready === 0 && c.unacked === 0;
}

beforeAll(async () => {
  admin = await amqpAdmin();
  dir = mkdtempSync(join(tmpdir(), 'sluice-amqp-'));
});
afterAll(async () => {
  for (const s of sources) await s.close();
  await admin.cleanup(...queues);
  rmSync(dir, { recursive: true, force: true });
});

describe('consume() over RabbitMQ', () => {
  it('1. 2,000 messages at concurrency 32: each handled, acked, none pending', async () => {
    const { queue, source } = await setup();
    await admin.publishMany(queue, 2000, json);
    const seen = new Set<number>();
    const consumer = consume<{ i: number }>(source, async ({ i }) => void seen.add(i), {
      concurrency: 32,
    });
    await until(() => consumer.stats().acked === 2000);
    const report = await consumer.close();
    expect(seen.size).toBe(2000);
    expect(report.stats).toMatchObject({ acked: 2000, retried: 0, deadLettered: 0, errors: 0 });
    expect(report.stats.peakHeld).toBeLessThanOrEqual(32);
    expect(await brokerCounts(queue)).toEqual({ ready: 0, unacked: 0 });
  });

  it('2. a failing handler is retried with backoff up to maxDeliveries, then dead-lettered with its error', async () => {
    const { queue, source } = await setup();
    await admin.publishMany(queue, 20, json);
    const attempts = new Map<number, number[]>();
    const consumer = consume<{ i: number }>(
      source,
      async ({ i }) => {
        attempts.set(i, [...(attempts.get(i) ?? []), Date.now()]);
        if (i % 5 === 0) throw new Error(`handler failed on ${i}`);
      },
      { concurrency: 8, maxDeliveries: 3, backoff: { initial: 100, factor: 2, jitter: 0 } },
    );
    await until(() => {
      const s = consumer.stats();
      return s.acked === 16 && s.deadLettered === 4;
    });
    await consumer.close();
    for (const [i, times] of attempts) {
      if (i % 5 !== 0) {
        expect(times).toHaveLength(1);
        continue;
      }
      expect(times).toHaveLength(3);
      // Backoff through the per-delay queues: ~100 ms, then ~200 ms.
      expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(90);
      expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(180);
    }
    const dead = await admin.drainQueue(`${queue}.dead`);
    expect(dead.map((d) => JSON.parse(d.body).i).sort((a, b) => a - b)).toEqual([0, 5, 10, 15]);
    for (const d of dead) {
      expect(d.headers['x-sluice-error']).toBe(`handler failed on ${JSON.parse(d.body).i}`);
      expect(d.headers['x-sluice-deliveries']).toBe(3);
    }
    expect(await brokerCounts(queue)).toEqual({ ready: 0, unacked: 0 });
  });

  it('3. SIGKILL mid-run: a second consumer recovers; every message handled, nothing pending', async () => {
    const { queue } = await setup();
    await admin.publishMany(queue, 2000, json);
    const logA = join(dir, 'crash-a.log');
    const logB = join(dir, 'crash-b.log');
    const cfg = { queue, concurrency: 16, handlerMs: 2 };
    const a = forkAmqpConsumer({ ...cfg, log: logA });
    await until(() => handled(logA).length >= 300);
    a.proc.kill('SIGKILL');
    expect((await a.exited).signal).toBe('SIGKILL');
    const b = forkAmqpConsumer({ ...cfg, log: logB });
    const all = () => new Set([...handled(logA), ...handled(logB)]);
    await until(async () => all().size === 2000 && (await empty(queue)), 25_000);
    b.proc.kill('SIGTERM');
    expect((await b.exited).code).toBe(0);
    const total = handled(logA).length + handled(logB).length;
    const duplicates = total - 2000;
    console.info(
      `amqp crash: A handled ${handled(logA).length} before SIGKILL, B ${handled(logB).length}; duplicates ${duplicates}`,
    );
    expect(all().size).toBe(2000);
    expect(duplicates).toBeGreaterThanOrEqual(0);
    expect(duplicates).toBeLessThanOrEqual(16); // at most what A held: its prefetch
    expect(await brokerCounts(queue)).toEqual({ ready: 0, unacked: 0 });
  }, 40_000);

  it('4. two consumer processes split the work; nothing lost', async () => {
    const { queue } = await setup();
    const logs = [join(dir, 'split-a.log'), join(dir, 'split-b.log')];
    const kids = logs.map((log) => forkAmqpConsumer({ queue, concurrency: 16, handlerMs: 2, log }));
    // Both consume before the work arrives, so a slow start cannot hand it all to one.
    await Promise.all(kids.map((k) => k.waitFor((e) => e.t === 'ready')));
    await admin.publishMany(queue, 2000, json);
    await until(() => logs.flatMap(handled).length >= 2000, 25_000);
    for (const k of kids) k.proc.kill('SIGTERM');
    for (const k of kids) expect((await k.exited).code).toBe(0);
    const [a, b] = logs.map(handled) as [number[], number[]];
    console.info(`amqp split: A ${a.length}, B ${b.length}`);
    expect(new Set([...a, ...b]).size).toBe(2000);
    expect(a.length + b.length).toBe(2000);
    expect(Math.min(a.length, b.length)).toBeGreaterThan(200);
    expect(await brokerCounts(queue)).toEqual({ ready: 0, unacked: 0 });
  }, 40_000);

  it('5. SIGTERM drains: in-flight finish and are acked, the rest stays in the queue, exit 0', async () => {
    const { queue } = await setup();
    await admin.publishMany(queue, 100, json);
    const log = join(dir, 'drain.log');
    const kid = forkAmqpConsumer({ queue, concurrency: 8, handlerMs: 400, log });
    await until(() => kid.events.filter((e) => e.t === 'start').length >= 8);
    kid.proc.kill('SIGTERM');
    const report = (await kid.waitFor((e) => e.t === 'report')) as unknown as {
      report: { completed: number; released: number; stats: { acked: number; fetched: number } };
      started: number;
    };
    expect((await kid.exited).code).toBe(0);
    const started = report.started;
    expect(handled(log)).toHaveLength(started);
    expect(report.report.stats.acked).toBe(started);
    expect(report.report.released).toBe(report.report.stats.fetched - started);
    console.info(
      `amqp drain: ${started} in flight finished, ${report.report.released} released unstarted`,
    );
    expect(await brokerCounts(queue)).toEqual({ ready: 100 - started, unacked: 0 });
  });

  it('5b. close() returns within 1 s while waiting on an empty queue', async () => {
    const { source } = await setup();
    const consumer = consume(source, async () => {}, { concurrency: 4 });
    await sleep(200);
    const t0 = performance.now();
    await consumer.close();
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('6. flow control: slow handler, 10,000 backlog, held never above concurrency', async () => {
    const { queue, source } = await setup();
    await admin.publishMany(queue, 10_000, json, 2000);
    const concurrency = 16;
    let peak = 0;
    let brokerPeak = 0;
    const consumer = consume(source, () => sleep(20), { concurrency });
    const sample = setInterval(() => {
      peak = Math.max(peak, consumer.stats().held + source.buffered);
    }, 2);
    try {
      for (let k = 0; k < 3; k++) {
        brokerPeak = Math.max(brokerPeak, (await brokerCounts(queue)).unacked);
      }
    } finally {
      clearInterval(sample);
    }
    const report = await consumer.close();
    console.info(
      `amqp flow control: peak held ${peak} (process), ${brokerPeak} (broker unacked), concurrency ${concurrency}`,
    );
    expect(report.stats.peakHeld).toBeLessThanOrEqual(concurrency);
    expect(peak).toBeLessThanOrEqual(concurrency);
    expect(brokerPeak).toBeLessThanOrEqual(concurrency);
    expect(report.stats.acked).toBeGreaterThan(50);
    expect(await brokerCounts(queue)).toEqual({ ready: 10_000 - report.stats.acked, unacked: 0 });
  });

  it('7. a slow but alive handler is not handed to a second consumer (RabbitMQ holds it for the channel)', async () => {
    const { queue, source } = await setup();
    const other = await amqpSource({ queue });
    sources.push(other);
    await admin.publishMany(queue, 1, json);
    const calls: string[] = [];
    const slow = consume(
      source,
      async () => {
        calls.push('slow');
        await sleep(2000);
      },
      { concurrency: 1 },
    );
    await until(() => calls.length === 1);
    const second = consume(other, async () => void calls.push('other'), { concurrency: 1 });
    await until(() => slow.stats().acked === 1, 10_000);
    await Promise.all([slow.close(), second.close()]);
    expect(calls).toEqual(['slow']);
    expect(await brokerCounts(queue)).toEqual({ ready: 0, unacked: 0 });
  }, 15_000);

  it('9. malformed messages (bad JSON, missing fields, oversized) are dead-lettered; the consumer goes on', async () => {
    const { queue, source } = await setup();
    const bodies = [
      '{"i":1}',
      '{not json',
      '{"x":2}',
      JSON.stringify({ i: 3, pad: 'x'.repeat(5000) }),
      '{"i":4}',
    ];
    await admin.publishMany(queue, bodies.length, (k) => bodies[k]!);
    const seen: number[] = [];
    const consumer = consume<{ i: number }>(source, async ({ i }) => void seen.push(i), {
      concurrency: 4,
      maxBodySize: 4096,
      decode: (body) => {
        const v = JSON.parse(new TextDecoder().decode(body)) as { i?: unknown };
        if (typeof v.i !== 'number')
          throw new MalformedMessageError('missing field "i" (a number)');
        return v as { i: number };
      },
    });
    await until(() => consumer.stats().acked === 2 && consumer.stats().deadLettered === 3);
    const report = await consumer.close();
    expect(seen.sort()).toEqual([1, 4]);
    expect(report.stats.malformed).toBe(3);
    const dead = await admin.drainQueue(`${queue}.dead`);
    const errors = dead.map((d) => String(d.headers['x-sluice-error'])).sort();
    expect(errors).toHaveLength(3);
    expect(errors.join('|')).toMatch(/JSON/);
    expect(errors.join('|')).toMatch(/missing field "i"/);
    expect(errors.join('|')).toMatch(/over maxBodySize 4096/);
    for (const d of dead) expect(d.headers['x-sluice-error-code']).toBe('ERR_MESSAGE_MALFORMED');
    expect(await brokerCounts(queue)).toEqual({ ready: 0, unacked: 0 });
  });
});
