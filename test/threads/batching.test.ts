// Under a deep backlog several jobs travel in one message; these tests pin that no job is lost,
// run twice or misattributed when batches meet crashes, cancellations and resizes.
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { AbortError, WorkerCrashedError } from '../../src/errors.js';
import { BatchSize } from '../../src/threads/batch-size.js';
import type { Job } from '../fixtures/threads/jobs.js';
import { batchingOn, cellSet, jobsPool, latch } from './helpers.js';

function counters(n: number): { sab: SharedArrayBuffer; runs: Int32Array } {
  const sab = new SharedArrayBuffer(4 * n);
  return { sab, runs: new Int32Array(sab) };
}

describe('ThreadPool batching', () => {
  it('runs every one of many tiny jobs exactly once, with its own result', async () => {
    await using pool = jobsPool({ threads: 2, queueSize: 512 });
    const n = 3000;
    const { sab, runs } = counters(n);
    const out = await Promise.all(
      Array.from({ length: n }, (_, i) => pool.run({ kind: 'count', sab, i })),
    );
    expect(out).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(runs.every((count) => count === 1)).toBe(true);
    expect(pool.stats()).toMatchObject({ succeeded: n, running: 0, queued: 0 });
  });

  it('one thread with a long backlog settles each job once with its own result, also after a late crash', async () => {
    // One thread and a long backlog: thousands of results taken off its list of jobs sent (a
    // moving head, see SentList), then a crash: results, the crash and the jobs taken back from
    // the dead thread must still match the right jobs.
    await using pool = jobsPool({ threads: 1, queueSize: 512 });
    const n = 6000;
    const crashAt = 4500;
    const { sab, runs } = counters(n);
    const jobs: Job[] = Array.from({ length: n }, (_, i) =>
      i === crashAt ? { kind: 'exit', code: 4 } : { kind: 'count', sab, i },
    );
    const results = await Promise.all(jobs.map((job) => pool.run(job).catch((e: unknown) => e)));
    expect(results[crashAt]).toBeInstanceOf(WorkerCrashedError);
    for (let i = 0; i < n; i++) {
      if (i === crashAt) continue;
      expect(results[i]).toBe(i);
      expect(runs[i]).toBe(1);
    }
    expect(pool.stats()).toMatchObject({ crashed: 1, succeeded: n - 1, running: 0, queued: 0 });
  });

  it('sizes batches by the time the thread spent, not by a stall of the main thread', async () => {
    // A stalled main thread (a long scavenge while 100,000 submits wait) received the results
    // late: measured by their arrival, tiny jobs looked like long ones and batches shrank.
    await using pool = jobsPool({ threads: 1, queueSize: 512 });
    await pool.run({ kind: 'double', x: 1 }); // the thread is ready and idle
    const observed: number[] = [];
    const realObserve = BatchSize.prototype.observe;
    const observe = vi.spyOn(BatchSize.prototype, 'observe').mockImplementation(function (
      this: BatchSize,
      gapMs: number,
      jobs?: number,
    ) {
      observed.push(gapMs);
      realObserve.call(this, gapMs, jobs);
    });
    onTestFinished(() => observe.mockRestore());
    // Long against what a loaded machine can add to the thread's own time for eight tiny jobs
    // (it is descheduled, not stalled by the main thread): a gap near it can only be the stall.
    const stallMs = 1_000;
    const runs = Promise.all(
      Array.from({ length: 8 }, (_, i) => pool.run({ kind: 'double', x: i })),
    );
    // Runs right after the dispatch posted the jobs: the thread runs them meanwhile.
    setImmediate(() => {
      const until = performance.now() + stallMs;
      while (performance.now() < until);
    });
    expect(await runs).toEqual([0, 2, 4, 6, 8, 10, 12, 14]);
    expect(observed.length).toBeGreaterThan(0);
    for (const gap of observed) expect(gap).toBeLessThan(stallMs);
  });

  it('tells each job its own index, also in a batch whose jobs do not follow one another', async () => {
    await using pool = jobsPool({ threads: 1, queueSize: 512 });
    await batchingOn(pool); // runs one job first: index 0
    const n = 200;
    const controllers = Array.from({ length: n }, () => new AbortController());
    const runs = controllers.map((controller) =>
      pool.run({ kind: 'index' }, { signal: controller.signal }).catch((e: Error) => e.name),
    );
    // Canceled while they wait, before the next dispatch: the batches that leave have gaps.
    const skipped = (i: number) => i % 7 === 3;
    for (let i = 0; i < n; i++) if (skipped(i)) controllers[i]?.abort('skip');
    const expected = Array.from({ length: n }, (_, i) => (skipped(i) ? 'AbortError' : i + 1));
    expect(await Promise.all(runs)).toEqual(expected);
  });

  it('a crash inside a batch fails only the crashing job; the rest run once elsewhere', async () => {
    await using pool = jobsPool({ threads: 2, queueSize: 512 });
    const n = 2000;
    const crashAt = 1000;
    const { sab, runs } = counters(n);
    const jobs: Job[] = Array.from({ length: n }, (_, i) =>
      i === crashAt ? { kind: 'exit', code: 3 } : { kind: 'count', sab, i },
    );
    const results = await Promise.all(jobs.map((job) => pool.run(job).catch((e: unknown) => e)));
    const crashes = results.filter((r) => r instanceof WorkerCrashedError) as WorkerCrashedError[];
    expect(crashes).toHaveLength(1);
    expect(crashes[0]?.exitCode).toBe(3);
    expect(results[crashAt]).toBe(crashes[0]);
    for (let i = 0; i < n; i++) if (i !== crashAt) expect(runs[i]).toBe(1);
    expect(pool.stats()).toMatchObject({ crashed: 1, succeeded: n - 1 });
  });

  it('canceling jobs that wait in a batch settles them as canceled and runs the rest once', async () => {
    await using pool = jobsPool({ threads: 2, queueSize: 512 });
    const n = 2000;
    const { sab, runs } = counters(n);
    const controllers = Array.from({ length: n }, () => new AbortController());
    const tasks = Array.from({ length: n }, (_, i) =>
      pool
        .run({ kind: 'count', sab, i }, { signal: controllers[i]?.signal })
        .catch((e: unknown) => e),
    );
    for (let i = 1; i < n; i += 10) controllers[i]?.abort('skip');
    const results = await Promise.all(tasks);
    for (let i = 0; i < n; i++) {
      if (i % 10 === 1) {
        expect(results[i]).toBeInstanceOf(AbortError);
        expect(runs[i]).toBeLessThanOrEqual(1);
      } else {
        expect(results[i]).toBe(i);
        expect(runs[i]).toBe(1);
      }
    }
  });

  it('results of a batch come back together; one that cannot be cloned fails only its own job', async () => {
    await using pool = jobsPool({ threads: 1, queueSize: 128 });
    await batchingOn(pool);
    pool.pause();
    const tasks = [];
    for (let i = 0; i < 64; i++) {
      const job: Job =
        i === 30
          ? { kind: 'return-function' }
          : i === 40
            ? { kind: 'throw', message: 'forty' }
            : { kind: 'double', x: i };
      tasks.push(await pool.submit(job));
    }
    pool.resume();
    const results = await Promise.all(tasks.map((task) => task.result));
    for (let i = 0; i < 64; i++) {
      const result = results[i];
      if (i === 30) {
        expect(result?.ok).toBe(false);
        expect((result as { error: { code?: string } }).error.code).toBe('ERR_DATA_CLONE');
      } else if (i === 40) {
        expect((result as { error: Error }).error.message).toBe('forty');
      } else {
        expect(result).toMatchObject({ ok: true, value: 2 * i });
      }
    }
    expect(pool.stats()).toMatchObject({ succeeded: 63, failed: 2, running: 0, queued: 0 });
  });

  it('a thread terminated after abortGrace mid-batch: the jobs that finished before it fail as documented, the rest run elsewhere', async () => {
    await using pool = jobsPool({ threads: 1, queueSize: 128, abortGrace: 20 });
    await batchingOn(pool);
    const { sab, cells } = latch();
    const stop = new AbortController();
    pool.pause();
    const tasks = [];
    for (let i = 0; i < 20; i++) {
      tasks.push(
        await (i === 10
          ? pool.submit({ kind: 'block', sab }, { signal: stop.signal })
          : pool.submit({ kind: 'double', x: i })),
      );
    }
    pool.resume();
    // Job 10 runs and ignores its signal: jobs 0-9 finished, their results still in the thread.
    await cellSet(cells, 0);
    stop.abort('enough');
    const results = await Promise.all(tasks.map((task) => task.result));
    for (let i = 0; i < 20; i++) {
      const result = results[i];
      if (i < 10) {
        const error = (result as { error: Error }).error;
        expect(error).toBeInstanceOf(WorkerCrashedError);
        expect(error.message).toMatch(
          new RegExp(`after job ${i + 1} finished but before its result left the thread`),
        );
      } else if (i === 10) {
        expect((result as { error: Error }).error).toBeInstanceOf(AbortError);
      } else {
        expect(result).toMatchObject({ ok: true, value: 2 * i });
      }
    }
    expect(await pool.run({ kind: 'double', x: 21 })).toBe(42);
  });

  it('shrinking while batches are out moves unstarted jobs to the remaining thread', async () => {
    await using pool = jobsPool({ threads: 2, queueSize: 512 });
    const n = 2000;
    const { sab, runs } = counters(n);
    const all = Promise.all(
      Array.from({ length: n }, (_, i) => pool.run({ kind: 'count', sab, i })),
    );
    await pool.run({ kind: 'double', x: 1 }); // some batches are out by now
    pool.resize(1);
    expect(await all).toHaveLength(n);
    expect(runs.every((count) => count === 1)).toBe(true);
    expect(pool.stats().threads).toHaveLength(1);
  });
});
