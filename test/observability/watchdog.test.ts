import diagnostics from 'node:diagnostics_channel';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  consume,
  type JobStuckMessage,
  type JobZombieMessage,
  Pool,
  pipeline,
  runPool,
  SLUICE_JOB_STUCK,
  SLUICE_JOB_ZOMBIE,
  TimeoutError,
} from '../../src/index.js';
import { MemorySource } from '../fixtures/brokers/memory-source.js';
import { type Deferred, deferred } from '../helpers.js';

/** Records every stuck and zombie message until `stop()`. */
function listen() {
  const stuck: JobStuckMessage[] = [];
  const zombies: JobZombieMessage[] = [];
  const onStuck = (m: unknown) => stuck.push(m as JobStuckMessage);
  const onZombie = (m: unknown) => zombies.push(m as JobZombieMessage);
  diagnostics.subscribe(SLUICE_JOB_STUCK, onStuck);
  diagnostics.subscribe(SLUICE_JOB_ZOMBIE, onZombie);
  const stop = () => {
    diagnostics.unsubscribe(SLUICE_JOB_STUCK, onStuck);
    diagnostics.unsubscribe(SLUICE_JOB_ZOMBIE, onZombie);
  };
  return { stuck, zombies, stop };
}

/** A worker that returns when the test opens the job's latch (and ignores its signal). */
function latched() {
  const latches = new Map<number, Deferred<number>>();
  const worker = (job: number) => {
    const latch = deferred<number>();
    latches.set(job, latch);
    return latch.promise;
  };
  const open = (job: number) => latches.get(job)?.resolve(job);
  return { worker, open };
}

let events: ReturnType<typeof listen>;

beforeEach(() => {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'],
  });
  events = listen();
});

afterEach(() => {
  events.stop();
  vi.useRealTimers();
});

describe('watchdog: stuck jobs', () => {
  it('reports a job once past stuckAfter, with its job, index and age, and clears it on settle', async () => {
    const { worker, open } = latched();
    const pool = new Pool(worker, { concurrency: 2, watchdog: { stuckAfter: 1_000 }, name: 'w' });
    const task = await pool.submit(7);
    await vi.advanceTimersByTimeAsync(999);
    expect(events.stuck).toEqual([]);
    expect(pool.stats().stuck).toEqual([]);

    await vi.advanceTimersByTimeAsync(1);
    expect(pool.stats().stuck).toEqual([{ job: 7, index: 0, ageMs: 1_000 }]);
    await vi.advanceTimersByTimeAsync(250); // the next tick reports it
    expect(events.stuck).toHaveLength(1);
    expect(events.stuck[0]).toMatchObject({ name: 'w', kind: 'pool', index: 0, job: 7 });
    expect(events.stuck[0]?.ageMs).toBeGreaterThanOrEqual(1_000);
    expect(events.stuck[0]?.stuckAfter).toBe(1_000);

    await vi.advanceTimersByTimeAsync(5_000); // reported once, not on every tick
    expect(events.stuck).toHaveLength(1);
    expect(pool.stats().stuck?.[0]?.ageMs).toBe(6_250);

    open(7);
    expect((await task.result).ok).toBe(true);
    expect(pool.stats().stuck).toEqual([]);
    await pool.drain();
  });

  it('lists only the jobs past the threshold, oldest first', async () => {
    const { worker, open } = latched();
    const pool = new Pool(worker, { concurrency: 3, watchdog: { stuckAfter: 50 } });
    await pool.submit(1);
    await vi.advanceTimersByTimeAsync(60);
    await pool.submit(2);
    await vi.advanceTimersByTimeAsync(60);
    await pool.submit(3);
    expect(pool.stats().stuck?.map((s) => s.job)).toEqual([1, 2]);
    for (const job of [1, 2, 3]) open(job);
    await pool.drain();
    expect(pool.stats().stuck).toEqual([]);
  });

  it('counts a retried job from its new attempt', async () => {
    let calls = 0;
    const gate = deferred<void>();
    const pool = new Pool(
      async () => {
        calls++;
        if (calls === 1) throw new Error('first attempt fails');
        await gate.promise;
      },
      {
        concurrency: 1,
        retry: { attempts: 2, backoff: { initial: 500, jitter: 0 } },
        watchdog: { stuckAfter: 1_000 },
      },
    );
    const task = await pool.submit(0);
    await vi.advanceTimersByTimeAsync(500); // the backoff; the second attempt starts
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(900);
    expect(pool.stats().stuck).toEqual([]);
    await vi.advanceTimersByTimeAsync(100);
    expect(pool.stats().stuck).toEqual([{ job: 0, index: 0, ageMs: 1_000 }]);
    gate.resolve();
    expect((await task.result).ok).toBe(true);
    await pool.drain();
  });

  it('reports nothing and adds no fields when off', async () => {
    const { worker, open } = latched();
    const pool = new Pool(worker, { concurrency: 1, timeout: 10 });
    const task = await pool.submit(1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect((await task.result).ok).toBe(false);
    const stats = pool.stats();
    expect(stats.stuck).toBeUndefined();
    expect(stats.zombies).toBeUndefined();
    expect(events.stuck).toEqual([]);
    expect(events.zombies).toEqual([]);
    open(1);
    await pool.drain();
  });

  it('arms no timer while nothing runs', async () => {
    const pool = new Pool(async (x: number) => x, {
      concurrency: 1,
      watchdog: { stuckAfter: 50 },
    });
    expect(vi.getTimerCount()).toBe(0);
    await pool.run(1);
    expect(vi.getTimerCount()).toBe(1); // armed by the job, gone at the next tick
    await vi.advanceTimersByTimeAsync(20);
    expect(vi.getTimerCount()).toBe(0);
    await pool.drain();
  });

  it('refuses a bad threshold at construction, naming the option', () => {
    const worker = async () => undefined;
    expect(() => new Pool(worker, { concurrency: 1, watchdog: { stuckAfter: 0 } })).toThrow(
      /watchdog\.stuckAfter/,
    );
    expect(
      () => new Pool(worker, { concurrency: 1, watchdog: { stuckAfter: 5, zombieAfter: -1 } }),
    ).toThrow(/watchdog\.zombieAfter/);
    expect(
      () => new Pool(worker, { concurrency: 1, watchdog: 5 as unknown as { stuckAfter: number } }),
    ).toThrow(/watchdog/);
  });
});

describe('watchdog: zombies', () => {
  it('reports a timed-out job whose worker has not returned after zombieAfter, with its age', async () => {
    const { worker, open } = latched();
    const pool = new Pool(worker, {
      concurrency: 1,
      timeout: 100,
      watchdog: { stuckAfter: 10_000, zombieAfter: 400 },
    });
    const task = await pool.submit(5);
    await vi.advanceTimersByTimeAsync(100);
    const result = await task.result;
    expect(!result.ok && result.error).toBeInstanceOf(TimeoutError);
    expect(pool.stats().stuck).toEqual([]); // settled: no longer running
    await vi.advanceTimersByTimeAsync(399);
    expect(pool.stats().zombies).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    const [zombie] = pool.stats().zombies ?? [];
    expect(zombie).toMatchObject({ job: 5, index: 0, ageMs: 400 });
    expect(zombie?.error).toBeInstanceOf(TimeoutError);

    await vi.advanceTimersByTimeAsync(100);
    expect(events.zombies).toHaveLength(1);
    expect(events.zombies[0]).toMatchObject({ kind: 'pool', index: 0, job: 5, zombieAfter: 400 });
    expect(events.zombies[0]?.ageMs).toBeGreaterThanOrEqual(400);

    open(5); // the worker returns at last
    await vi.advanceTimersByTimeAsync(0);
    expect(pool.stats().zombies).toEqual([]);
    await pool.drain();
    expect(events.zombies).toHaveLength(1);
  });

  it('reports no zombie when a canceled worker returns within the grace', async () => {
    const { worker, open } = latched();
    const pool = new Pool(worker, { concurrency: 1, watchdog: { stuckAfter: 1_000 } });
    const controller = new AbortController();
    const task = await pool.submit(1, { signal: controller.signal });
    controller.abort();
    expect((await task.result).ok).toBe(false);
    await vi.advanceTimersByTimeAsync(999);
    open(1);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(pool.stats().zombies).toEqual([]);
    expect(events.zombies).toEqual([]);
    await pool.drain();
  });

  it('defaults zombieAfter to stuckAfter and reports zombies left by abort()', async () => {
    const { worker } = latched();
    const pool = new Pool(worker, { concurrency: 2, watchdog: { stuckAfter: 300 } });
    await pool.submit(1);
    await pool.submit(2);
    await pool.abort('shutting down');
    await vi.advanceTimersByTimeAsync(300);
    expect(
      pool
        .stats()
        .zombies?.map((z) => z.job)
        .sort(),
    ).toEqual([1, 2]);
  });
});

describe('watchdog: runPool and stages', () => {
  it('reports a stuck runPool job on the channel with the runPool name', async () => {
    const { worker, open } = latched();
    const it = runPool([1, 2], worker, {
      concurrency: 2,
      name: 'rp',
      watchdog: { stuckAfter: 200 },
    });
    const first = it.next();
    await vi.advanceTimersByTimeAsync(250);
    expect(events.stuck.map((m) => [m.name, m.kind, m.job]).sort()).toEqual([
      ['rp', 'run-pool', 1],
      ['rp', 'run-pool', 2],
    ]);
    open(1);
    open(2);
    expect((await first).done).toBe(false);
    for await (const _ of it) {
      // drain the rest
    }
  });

  it('reports a zombie of a runPool job that timed out', async () => {
    const { worker, open } = latched();
    const it = runPool([9], worker, {
      concurrency: 1,
      timeout: 50,
      watchdog: { stuckAfter: 1_000, zombieAfter: 100 },
    });
    const first = it.next();
    await vi.advanceTimersByTimeAsync(50);
    const step = await first;
    expect(!step.done && !step.value.ok && step.value.error).toBeInstanceOf(TimeoutError);
    await vi.advanceTimersByTimeAsync(150);
    expect(events.zombies.map((z) => [z.kind, z.job])).toEqual([['run-pool', 9]]);
    open(9);
    expect((await it.next()).done).toBe(true);
  });

  it("lists a stage's stuck jobs as its input values in the pipeline's stats", async () => {
    const { worker, open } = latched();
    const p = pipeline([10, 20])
      .stage('double', (x: number) => x * 2, { concurrency: 2 })
      .stage('slow', worker, { concurrency: 2, watchdog: { stuckAfter: 500 } });
    const iterator = p[Symbol.asyncIterator]();
    const first = iterator.next();
    await vi.advanceTimersByTimeAsync(500);
    const slow = p.stats().find((s) => s.name === 'slow');
    expect(slow?.stuck?.map((s) => s.job).sort((a, b) => Number(a) - Number(b))).toEqual([20, 40]);
    expect(p.stats().find((s) => s.name === 'double')?.stuck).toBeUndefined();
    await vi.advanceTimersByTimeAsync(125);
    expect(events.stuck.every((m) => m.name === 'slow' && m.kind === 'stage')).toBe(true);
    expect(events.stuck).toHaveLength(2);
    open(20);
    open(40);
    expect((await first).done).toBe(false);
    expect((await iterator.next()).done).toBe(false);
    expect((await iterator.next()).done).toBe(true);
  });
});

describe('watchdog: consume()', () => {
  it("reports a handler call running past stuckAfter, and lists it in the consumer's stats", async () => {
    vi.useRealTimers(); // the memory source's fetch waits on real timers
    const source = new MemorySource();
    source.push('1'); // JSON
    const release = deferred<void>();
    const stuck = deferred<JobStuckMessage>();
    const onStuck = (m: unknown) => stuck.resolve(m as JobStuckMessage);
    diagnostics.subscribe(SLUICE_JOB_STUCK, onStuck);
    try {
      const consumer = consume(source, () => release.promise, {
        concurrency: 1,
        name: 'orders',
        watchdog: { stuckAfter: 20 },
      });
      const message = await stuck.promise;
      expect([message.name, message.kind]).toEqual(['orders', 'consume']);
      expect(consumer.stats().stuck).toHaveLength(1);
      release.resolve();
      await consumer.close();
      expect(source.ops('ack')).toHaveLength(1);
      expect(consumer.stats().stuck).toEqual([]);
    } finally {
      diagnostics.unsubscribe(SLUICE_JOB_STUCK, onStuck);
    }
  });
});
