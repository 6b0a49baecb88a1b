import { getEventListeners } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import { PoolClosedError } from '../../src/errors.js';
import { BatchSize, MAX_BATCH } from '../../src/threads/batch-size.js';
import { ThreadPool } from '../../src/threads/pool.js';
import type { Job } from '../fixtures/threads/jobs.js';
import { cellReaches, cellSet, fixture, JOBS, jobsPool, latch, release } from './helpers.js';

describe('ThreadPool has the Pool surface', () => {
  it('submit resolves with a Task whose result is a value; run resolves with the value', async () => {
    await using pool = new ThreadPool<number, number>(fixture('double.ts'), { threads: 2 });
    const task = await pool.submit(5);
    expect(task.job).toBe(5);
    expect(await task.result).toEqual({ ok: true, job: 5, index: 0, value: 10 });
    expect(await pool.run(6)).toBe(12);
  });

  it('bounds the queue for tiny jobs: queueSize plus two full batches per thread, and no more', async () => {
    // Jobs measured tiny (~1 µs each): a thread holds two batches of 64 beside the queue.
    vi.spyOn(BatchSize.prototype, 'limit').mockReturnValue(MAX_BATCH);
    try {
      await using pool = jobsPool({ threads: 2, queueSize: 3 });
      // The first results measure the jobs: from then on each thread holds 2 x 64.
      await Promise.all([1, 2, 3].map((x) => pool.run({ kind: 'double', x })));
      pool.pause();
      let accepted = 0;
      while (pool.trySubmit({ kind: 'double', x: accepted })) accepted++;
      expect(accepted).toBe(3 + 2 * 2 * MAX_BATCH);
      // submit waits for room, as always.
      let admitted = false;
      const waiting = pool.submit({ kind: 'double', x: -1 }).then((task) => {
        admitted = true;
        return task;
      });
      await new Promise((resolve) => setImmediate(resolve));
      expect(admitted).toBe(false);
      pool.resume();
      expect(await (await waiting).result).toMatchObject({ ok: true, value: -2 });
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('bounds the queue: trySubmit returns undefined when threads + queueSize jobs are in', async () => {
    await using pool = jobsPool({ threads: 1, queueSize: 1 });
    const { sab, cells } = latch();
    const running = pool.trySubmit({ kind: 'block', sab });
    const queued = pool.trySubmit({ kind: 'double', x: 1 });
    expect(running).toBeDefined();
    expect(queued).toBeDefined();
    expect(pool.trySubmit({ kind: 'double', x: 2 })).toBeUndefined();
    await cellSet(cells, 0);
    expect(pool.stats()).toMatchObject({ concurrency: 1, running: 1, queued: 1 });
    // submit waits for room: it resolves only after the blocked job ends.
    let accepted = false;
    const waiting = pool.submit({ kind: 'double', x: 3 }).then((task) => {
      accepted = true;
      return task;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(accepted).toBe(false);
    release(cells);
    expect(await (await waiting).result).toMatchObject({ ok: true, value: 6 });
    expect(await running?.result).toMatchObject({ ok: true, value: 'released' });
    expect(await queued?.result).toMatchObject({ ok: true, value: 2 });
  });

  it('close stops intake; drain lets queued and running jobs finish', async () => {
    const pool = jobsPool({ threads: 1, queueSize: 4 });
    const { sab, cells } = latch();
    const blocked = pool.run({ kind: 'block', sab });
    const queued = pool.run({ kind: 'double', x: 4 });
    await cellSet(cells, 0);
    pool.close();
    await expect(pool.submit({ kind: 'double', x: 1 })).rejects.toBeInstanceOf(PoolClosedError);
    expect(() => pool.trySubmit({ kind: 'double', x: 1 })).toThrow(PoolClosedError);
    const drained = pool.drain();
    release(cells);
    expect(await drained).toEqual({ completed: 2, canceled: 0, canceledJobs: [] });
    expect(await blocked).toBe('released');
    expect(await queued).toBe(8);
  });

  it('drain with a timeout cancels what is left at the deadline and reports it', async () => {
    const pool = jobsPool({ threads: 1, queueSize: 4, abortGrace: 10 });
    const { sab, cells } = latch();
    const blocked = pool.submit({ kind: 'block', sab });
    const queued = pool.submit({ kind: 'double', x: 1 });
    await cellSet(cells, 0);
    const report = await pool.drain({ timeout: 20 });
    expect(report.canceled).toBe(2);
    expect(report.canceledJobs.map((job) => job.kind).sort()).toEqual(['block', 'double']);
    expect((await (await blocked).result).ok).toBe(false);
    expect((await (await queued).result).ok).toBe(false);
  });

  it('abort cancels queued and running jobs at once and terminates the threads', async () => {
    const pool = jobsPool({ threads: 1, queueSize: 4 });
    const { sab, cells } = latch();
    const blocked = await pool.submit({ kind: 'block', sab });
    const queued = await pool.submit({ kind: 'double', x: 1 });
    await cellSet(cells, 0);
    const first = pool.abort(new Error('shutting down'));
    // A second abort (a second signal) returns the first one's outcome, not a fresh empty report.
    const second = pool.abort(new Error('again'));
    expect(second).toBe(first);
    const report = await second;
    expect(report.canceled).toBe(2);
    expect(await pool.abort()).toBe(report);
    for (const task of [blocked, queued]) {
      const result = await task.result;
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.error.name).toBe('AbortError');
        expect((result.error.cause as Error).message).toBe('shutting down');
      }
    }
    expect(pool.stats().threads).toEqual([]);
  });

  it('aborting the pool signal aborts the pool', async () => {
    const controller = new AbortController();
    const pool = jobsPool({ signal: controller.signal });
    const { sab, cells } = latch();
    const task = await pool.submit({ kind: 'block', sab });
    await cellSet(cells, 0);
    controller.abort('stop');
    const result = await task.result;
    expect(result.ok).toBe(false);
    await expect(pool.run({ kind: 'double', x: 1 })).rejects.toBeInstanceOf(PoolClosedError);
  });

  it('a pool drained, aborted or closed no longer listens to its signal', async () => {
    const controller = new AbortController();
    const listeners = () => getEventListeners(controller.signal, 'abort').length;
    const drained = jobsPool({ signal: controller.signal });
    expect(await drained.run({ kind: 'double', x: 1 })).toBe(2);
    expect(listeners()).toBe(1);
    await drained.drain();
    expect(listeners()).toBe(0);
    const aborted = jobsPool({ signal: controller.signal });
    await aborted.abort();
    expect(listeners()).toBe(0);
    const closed = jobsPool({ signal: controller.signal });
    closed.close();
    await closed.drain();
    expect(listeners()).toBe(0);
  });

  it('shrinking then growing while jobs run never runs more jobs than threads; stats count them all', async () => {
    const pool = jobsPool({ threads: 2, queueSize: 4 });
    // Gauge cells: 0 = gauge jobs running now, 1 = most ever at once, 2 = release.
    const gauge = latch();
    const gauged = () => pool.run({ kind: 'gauge', sab: gauge.sab });
    try {
      const first = [gauged(), gauged()];
      await cellReaches(gauge.cells, 0, 2);
      pool.resize(1);
      // Both still run: the surplus thread finishes its job before it leaves.
      expect(pool.stats()).toMatchObject({ concurrency: 1, running: 2 });
      pool.resize(2);
      expect(pool.stats()).toMatchObject({ concurrency: 2, running: 2 });
      const third = gauged();
      // Both threads are taken, so the third cannot start; a pool that starts it anyway has a
      // second to show it.
      expect(await cellReaches(gauge.cells, 1, 3, 1_000)).toBe(false);
      expect(pool.stats()).toMatchObject({ running: 2, queued: 1 });
      release(gauge.cells);
      expect(await Promise.all([...first, third])).toEqual(['released', 'released', 'released']);
      expect(Atomics.load(gauge.cells, 1)).toBe(2);
      expect(pool.stats().threads).toHaveLength(2);
    } finally {
      release(gauge.cells);
      await pool.drain();
    }
  });

  it('resize adds threads that take jobs, and removes surplus ones', async () => {
    await using pool = jobsPool({ threads: 1, queueSize: 8 });
    const a = latch();
    const b = latch();
    const first = pool.run({ kind: 'block', sab: a.sab });
    await cellSet(a.cells, 0);
    pool.resize(2);
    expect(pool.threads).toBe(2);
    // The second thread runs a job while the first is still blocked.
    const second = pool.run({ kind: 'block', sab: b.sab });
    await cellSet(b.cells, 0);
    expect(pool.stats()).toMatchObject({ concurrency: 2, running: 2 });
    release(a.cells);
    release(b.cells);
    await Promise.all([first, second]);
    pool.resize(1);
    expect(pool.stats().threads).toHaveLength(1);
    expect(await pool.run({ kind: 'double', x: 5 })).toBe(10);
    expect(() => pool.resize(0)).toThrow(RangeError);
  });

  it('pause starts nothing new until resume; submits are still accepted', async () => {
    await using pool = jobsPool({ queueSize: 4 });
    await pool.ready; // a thread is there to take the job, were the pool not paused
    const { sab, cells } = latch();
    pool.pause();
    expect(pool.paused).toBe(true);
    const task = await pool.submit({ kind: 'block', sab });
    // Round-trip a few event-loop turns: a paused pool must not have sent the job.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(Atomics.load(cells, 0)).toBe(0);
    expect(pool.stats()).toMatchObject({ running: 0, queued: 1 });
    pool.resume();
    await cellSet(cells, 0);
    release(cells);
    expect(await task.result).toMatchObject({ ok: true, value: 'released' });
  });

  it('threads removed by resize while starting are not start-up failures', async () => {
    // With maxStartupFailures 1, one miscounted termination would fail the pool.
    await using pool = jobsPool({ threads: 1, maxStartupFailures: 1 });
    pool.resize(3);
    pool.resize(1);
    await pool.ready;
    expect(await pool.run({ kind: 'double', x: 8 })).toBe(16);
    // Let the terminated threads' exits arrive before looking again.
    for (let i = 0; i < 3; i++) expect(await pool.run({ kind: 'double', x: i })).toBe(2 * i);
    expect(pool.stats()).toMatchObject({ crashed: 0, concurrency: 1 });
  });

  it('onIdle resolves once nothing is queued or running', async () => {
    await using pool = jobsPool({ queueSize: 4 });
    const { sab, cells } = latch();
    const done: string[] = [];
    const task = await pool.submit({ kind: 'block', sab });
    void task.result.then(() => done.push('job'));
    await cellSet(cells, 0);
    const idle = pool.onIdle().then(() => done.push('idle'));
    release(cells);
    await idle;
    expect(done).toEqual(['job', 'idle']);
  });

  it('stats count outcomes and report per-thread utilization', async () => {
    await using pool = jobsPool({ threads: 2, queueSize: 8 });
    await Promise.all([1, 2, 3, 4].map((x) => pool.run({ kind: 'double', x })));
    await pool.run({ kind: 'throw', message: 'no' }).catch(() => {});
    const stats = pool.stats();
    expect(stats).toMatchObject({ concurrency: 2, running: 0, queued: 0, submitted: 5 });
    expect(stats).toMatchObject({ succeeded: 4, failed: 1, timedOut: 0, canceled: 0, crashed: 0 });
    expect(stats.threads.map((t) => t.id)).toEqual([0, 1]);
    for (const thread of stats.threads) {
      expect(thread.utilization).toBeGreaterThanOrEqual(0);
      expect(thread.utilization).toBeLessThanOrEqual(1);
    }
    expect(stats.threads.reduce((sum, t) => sum + t.completed, 0)).toBe(5);
    expect(stats.runTime.p50).toBeGreaterThan(0);
  });

  it('await using drains the pool at the end of the scope', async () => {
    let pool: ThreadPool<number, number> | undefined;
    {
      await using scoped = new ThreadPool<number, number>(fixture('double.ts'), { threads: 1 });
      pool = scoped;
      expect(await scoped.run(1)).toBe(2);
    }
    await expect(pool.run(1)).rejects.toBeInstanceOf(PoolClosedError);
    expect(pool.stats().threads).toEqual([]);
  });
});

describe('ThreadPool misuse: a promise-returning method rejects, a synchronous one throws', () => {
  const bad = { signal: 'not a signal' as unknown as AbortSignal };
  const invalid = expect.objectContaining({ code: 'ERR_INVALID_OPTION' });

  /** Calls `fn`, failing the test if it throws synchronously. */
  const noSyncThrow = <T>(fn: () => T): T => {
    let out: T | undefined;
    expect(() => {
      out = fn();
    }).not.toThrow();
    return out as T;
  };

  it('submit, run, drain, create, fromModule reject (never throw); abort takes any reason and resolves', async () => {
    const pool = jobsPool();
    await expect(noSyncThrow(() => pool.submit({ kind: 'double', x: 1 }, bad))).rejects.toEqual(
      invalid,
    );
    await expect(noSyncThrow(() => pool.run({ kind: 'double', x: 1 }, bad))).rejects.toEqual(
      invalid,
    );
    await expect(
      noSyncThrow(() => pool.submit({ kind: 'double', x: 1 }, { transfer: 'x' as never })),
    ).rejects.toEqual(invalid);
    await expect(noSyncThrow(() => pool.drain({ timeout: -1 }))).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
    });
    // Nothing changed: the pool still takes jobs.
    expect(await pool.run({ kind: 'double', x: 2 })).toBe(4);
    await expect(noSyncThrow(() => ThreadPool.create(JOBS, { threads: 0 }))).rejects.toMatchObject({
      name: 'RangeError',
    });
    await expect(
      noSyncThrow(() => ThreadPool.fromModule(JOBS, { signal: 'x' as never })),
    ).rejects.toEqual(invalid);
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const report = await noSyncThrow(() => pool.abort(proxy));
    expect(report.canceled).toBe(0);
  });

  it('trySubmit, resize and the constructor throw', async () => {
    await using pool = jobsPool();
    expect(() => pool.trySubmit({ kind: 'double', x: 1 }, bad)).toThrow(invalid);
    expect(() => pool.trySubmit({ kind: 'double', x: 1 }, { transfer: 'x' as never })).toThrow(
      invalid,
    );
    expect(() => pool.resize(0)).toThrow(expect.objectContaining({ name: 'RangeError' }));
    expect(() => pool.resize(1.5)).toThrow(expect.objectContaining({ name: 'RangeError' }));
    expect(() => jobsPool({ threads: 0 })).toThrow(expect.objectContaining({ name: 'RangeError' }));
    expect(() => jobsPool({ signal: 'x' as never })).toThrow(invalid);
    expect(pool.threads).toBe(1);
    expect(await pool.run({ kind: 'double', x: 3 })).toBe(6);
  });

  it('null options mean the defaults, as for Pool', async () => {
    await using pool = new ThreadPool<Job, unknown>(JOBS, null as never);
    expect(await pool.run({ kind: 'double', x: 2 })).toBe(4);
  });

  it('a refused submit does not keep its transfer list for a later submit of the same job', async () => {
    await using pool = jobsPool({ threads: 1, queueSize: 0 });
    const buf = new ArrayBuffer(8);
    const job = { kind: 'transfer-in' as const, buf };
    // Refused for a bad signal, then as the queue is full: each time the buffer stays ours.
    await expect(pool.submit(job, { ...bad, transfer: [buf] })).rejects.toEqual(invalid);
    const { sab, cells } = latch();
    const blocker = await pool.submit({ kind: 'block', sab });
    expect(pool.trySubmit(job, { transfer: [buf] })).toBeUndefined();
    const gone = new AbortController();
    const waiting = pool.submit(job, { signal: gone.signal, transfer: [buf] });
    gone.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    release(cells);
    await blocker.result;
    // Submitted without a transfer list: copied, not moved.
    expect(await pool.run(job)).toBe(8);
    expect(buf.byteLength).toBe(8);
  });
});
