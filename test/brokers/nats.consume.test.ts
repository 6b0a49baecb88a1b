/**
 * consume() over NATS JetStream, against the real server on loopback (issue 5, items 1-7 and 9;
 * the broker restart, item 8, is in nats.restart.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { type NatsSource, natsSource } from '../../src/brokers/nats.js';
import { MalformedMessageError } from '../../src/errors.js';
import { forkNatsConsumer, handled } from '../fixtures/brokers/nats-child.js';
import { type NatsAdmin, natsAdmin, uniqueStream } from '../fixtures/brokers/nats-helpers.js';

let admin: NatsAdmin;
let dir: string;
const streams: string[] = [];
const sources: NatsSource[] = [];

async function setup(opts: { ackWait?: number } = {}) {
  const stream = uniqueStream('C');
  streams.push(stream, `${stream}_DEAD`);
  const source = await natsSource({ stream, consumer: 'workers', ...opts });
  sources.push(source);
  return { stream, source, subject: `${stream}.work` };
}

const json = (i: number) => JSON.stringify({ i });

/** Resolves when `cond()` holds; checks on every turn of a short poll, fails after `ms`. */
async function until(cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

beforeAll(async () => {
  admin = await natsAdmin();
  dir = mkdtempSync(join(tmpdir(), 'sluice-nats-'));
});
afterAll(async () => {
  for (const s of sources) await s.close();
  await admin.cleanup(...streams);
  rmSync(dir, { recursive: true, force: true });
});

describe('consume() over NATS JetStream', () => {
  it('1. 2,000 messages at concurrency 32: each handled, acked, none pending', async () => {
    const { stream, source, subject } = await setup();
    await admin.publishMany(subject, 2000, json);
    const seen = new Set<number>();
    const consumer = consume<{ i: number }>(source, async ({ i }) => void seen.add(i), {
      concurrency: 32,
    });
    await until(() => consumer.stats().acked === 2000);
    const report = await consumer.close();
    expect(seen.size).toBe(2000);
    expect(report.stats).toMatchObject({ acked: 2000, retried: 0, deadLettered: 0, errors: 0 });
    expect(report.stats.peakHeld).toBeLessThanOrEqual(32);
    expect(await admin.pending(stream, 'workers')).toMatchObject({ ackPending: 0, pending: 0 });
    expect(await admin.count(stream)).toBe(0);
  });

  it('2. a failing handler is retried with backoff up to maxDeliveries, then dead-lettered with its error', async () => {
    const { stream, source, subject } = await setup();
    await admin.publishMany(subject, 20, json);
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
      // Backoff: ~100 ms before the 2nd delivery, ~200 ms before the 3rd (server-side nak delay).
      expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(90);
      expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(180);
    }
    const dead = await admin.readAll(`${stream}_DEAD`);
    expect(dead.map((d) => JSON.parse(d.data).i).sort((a, b) => a - b)).toEqual([0, 5, 10, 15]);
    for (const d of dead) {
      expect(d.headers['Sluice-Error']).toBe(`handler failed on ${JSON.parse(d.data).i}`);
      expect(d.headers['Sluice-Deliveries']).toBe('3');
    }
    expect(await admin.pending(stream, 'workers')).toMatchObject({ ackPending: 0, pending: 0 });
  });

  it('3. SIGKILL mid-run: a second consumer recovers; every message handled, nothing pending', async () => {
    const { stream, subject } = await setup({ ackWait: 2000 });
    await admin.publishMany(subject, 2000, json);
    const logA = join(dir, 'crash-a.log');
    const logB = join(dir, 'crash-b.log');
    const cfg = { stream, concurrency: 16, handlerMs: 2, ackWait: 2000 };
    const a = forkNatsConsumer({ ...cfg, log: logA });
    await until(() => handled(logA).length >= 300);
    a.proc.kill('SIGKILL');
    expect((await a.exited).signal).toBe('SIGKILL');
    const b = forkNatsConsumer({ ...cfg, log: logB });
    const all = () => new Set([...handled(logA), ...handled(logB)]);
    await until(async () => all().size === 2000 && (await admin.count(stream)) === 0, 25_000);
    b.proc.kill('SIGTERM');
    expect((await b.exited).code).toBe(0);
    const total = handled(logA).length + handled(logB).length;
    const duplicates = total - 2000;
    console.info(
      `nats crash: A handled ${handled(logA).length} before SIGKILL, B ${handled(logB).length}; duplicates ${duplicates}`,
    );
    expect(all().size).toBe(2000);
    expect(duplicates).toBeGreaterThanOrEqual(0);
    expect(duplicates).toBeLessThanOrEqual(16); // at most what A held: its concurrency
    expect(await admin.pending(stream, 'workers')).toMatchObject({ ackPending: 0, pending: 0 });
  }, 40_000);

  it('4. two consumer processes split the work; nothing lost', async () => {
    const { stream, subject } = await setup();
    const logs = [join(dir, 'split-a.log'), join(dir, 'split-b.log')];
    const kids = logs.map((log) =>
      forkNatsConsumer({ stream, concurrency: 16, handlerMs: 2, ackWait: 30_000, log }),
    );
    // Both consume before the work arrives, so a slow start cannot hand it all to one.
    await Promise.all(kids.map((k) => k.waitFor((e) => e.t === 'ready')));
    await admin.publishMany(subject, 2000, json);
    await until(async () => (await admin.count(stream)) === 0, 25_000);
    for (const k of kids) k.proc.kill('SIGTERM');
    for (const k of kids) expect((await k.exited).code).toBe(0);
    const [a, b] = logs.map(handled) as [number[], number[]];
    console.info(`nats split: A ${a.length}, B ${b.length}`);
    expect(new Set([...a, ...b]).size).toBe(2000);
    expect(a.length + b.length).toBe(2000); // no crash, no redelivery: each exactly once
    expect(Math.min(a.length, b.length)).toBeGreaterThan(200);
    expect(await admin.pending(stream, 'workers')).toMatchObject({ ackPending: 0, pending: 0 });
  }, 40_000);

  it('5. SIGTERM drains: in-flight finish and are acked, the rest stays in the stream, exit 0', async () => {
    const { stream, subject } = await setup();
    await admin.publishMany(subject, 100, json);
    const log = join(dir, 'drain.log');
    const kid = forkNatsConsumer({ stream, concurrency: 8, handlerMs: 400, ackWait: 30_000, log });
    // Wait until 8 handlers are running, then signal.
    await until(() => kid.events.filter((e) => e.t === 'start').length >= 8);
    kid.proc.kill('SIGTERM');
    const report = (await kid.waitFor((e) => e.t === 'report')) as unknown as {
      report: { completed: number; released: number; stats: { acked: number; fetched: number } };
      started: number;
    };
    expect((await kid.exited).code).toBe(0);
    const done = handled(log);
    const started = report.started;
    // Everything that started, finished and was acked; what was fetched but never started was released.
    expect(done).toHaveLength(started);
    expect(report.report.stats.acked).toBe(started);
    expect(report.report.released).toBe(report.report.stats.fetched - started);
    console.info(
      `nats drain: ${started} in flight finished, ${report.report.released} released unstarted`,
    );
    expect(await admin.pending(stream, 'workers')).toMatchObject({
      ackPending: 0,
      pending: 100 - started,
    });
  });

  it('5b. close() returns within 1 s while waiting on an empty stream', async () => {
    const { source } = await setup();
    const consumer = consume(source, async () => {}, { concurrency: 4 });
    await sleep(200); // the loop is now inside a blocking fetch
    const t0 = performance.now();
    await consumer.close();
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('6. flow control: slow handler, 10,000 backlog, held never above concurrency', async () => {
    const { stream, source, subject } = await setup();
    await admin.publishMany(subject, 10_000, json, 1000);
    const concurrency = 16;
    let peak = 0;
    let serverPeak = 0;
    const consumer = consume(source, () => sleep(20), { concurrency });
    const sample = setInterval(() => {
      peak = Math.max(peak, consumer.stats().held + source.buffered);
    }, 2);
    try {
      for (let k = 0; k < 10; k++) {
        // The server's view: delivered and unacked for this consumer (in flight or buffered here).
        serverPeak = Math.max(serverPeak, (await admin.pending(stream, 'workers')).ackPending);
        await sleep(100);
      }
    } finally {
      clearInterval(sample);
    }
    const report = await consumer.close();
    console.info(
      `nats flow control: peak held ${peak} (process), ${serverPeak} (server), concurrency ${concurrency}`,
    );
    expect(report.stats.peakHeld).toBeLessThanOrEqual(concurrency);
    expect(peak).toBeLessThanOrEqual(concurrency);
    expect(serverPeak).toBeLessThanOrEqual(concurrency);
    expect(report.stats.acked).toBeGreaterThan(100);
    const after = await admin.pending(stream, 'workers');
    // Nothing lost: every message not acked is pending, or was delivered into the pull that
    // close() ended (the server may still send into it) and awaits redelivery after ack_wait.
    // Those few can never exceed one pull's credit, i.e. the free slots.
    expect(after.ackPending).toBeLessThanOrEqual(concurrency);
    expect(after.pending + after.ackPending).toBe(10_000 - report.stats.acked);
  });

  it('7. a slow but alive handler (3 x ack_wait) is not handed to a second consumer', async () => {
    const { stream, source, subject } = await setup({ ackWait: 1000 });
    const other = await natsSource({ stream, consumer: 'workers' });
    sources.push(other);
    await admin.publishMany(subject, 1, json);
    const calls: string[] = [];
    const slow = consume(
      source,
      async () => {
        calls.push('slow');
        await sleep(3000);
      },
      { concurrency: 1 },
    );
    await until(() => calls.length === 1);
    const second = consume(other, async () => void calls.push('other'), { concurrency: 1 });
    await until(() => slow.stats().acked === 1, 10_000);
    await Promise.all([slow.close(), second.close()]);
    expect(calls).toEqual(['slow']);
    expect(await admin.pending(stream, 'workers')).toMatchObject({ ackPending: 0, pending: 0 });
  }, 15_000);

  it('9. malformed messages (bad JSON, missing fields, oversized) are dead-lettered; the consumer goes on', async () => {
    const { stream, source, subject } = await setup();
    const bodies = [
      '{"i":1}',
      '{not json',
      '{"x":2}',
      JSON.stringify({ i: 3, pad: 'x'.repeat(5000) }),
      '{"i":4}',
    ];
    await admin.publishMany(subject, bodies.length, (k) => bodies[k]!);
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
    const dead = await admin.readAll(`${stream}_DEAD`);
    const errors = dead.map((d) => d.headers['Sluice-Error'] ?? '').sort();
    expect(errors).toHaveLength(3);
    expect(errors.join('|')).toMatch(/JSON/);
    expect(errors.join('|')).toMatch(/missing field "i"/);
    expect(errors.join('|')).toMatch(/over maxBodySize 4096/);
    for (const d of dead) expect(d.headers['Sluice-Error-Code']).toBe('ERR_MESSAGE_MALFORMED');
    expect(await admin.pending(stream, 'workers')).toMatchObject({ ackPending: 0, pending: 0 });
  });
});
