import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JobFailedError, WorkerCrashedError, WorkerStartupError } from '../../src/errors.js';
import { ThreadPool } from '../../src/threads/pool.js';
import type { Hostile, Job } from '../fixtures/threads/jobs.js';
import type { ThenableJob } from '../fixtures/threads/thenables.js';
import { fixture, jobsPool } from './helpers.js';

describe('a job that throws fails only that job', () => {
  it('keeps the class name, message, stack and props; the thread takes the next job', async () => {
    await using pool = jobsPool();
    const before = await pool.run({ kind: 'thread-id' });
    const error = (await pool
      .run({ kind: 'throw', message: 'bad input' })
      .catch((e) => e)) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('CustomError');
    expect(error.message).toBe('bad input');
    expect(error.stack).toContain('jobs.ts');
    expect((error as Error & { code?: string }).code).toBe('E_CUSTOM');
    expect(await pool.run({ kind: 'thread-id' })).toBe(before);
    expect(pool.stats()).toMatchObject({ failed: 1, crashed: 0 });
  });

  it('re-creates built-in error classes and wraps thrown non-Errors', async () => {
    await using pool = jobsPool();
    const rejected = (await pool
      .run({ kind: 'reject', message: 'out of range' })
      .catch((e: unknown) => e)) as Error;
    expect(rejected).toBeInstanceOf(RangeError);
    expect(rejected.message).toBe('out of range');
    const value = (await pool.run({ kind: 'throw-value' }).catch((e: unknown) => e)) as Error;
    expect(value).toBeInstanceOf(JobFailedError);
    expect(value.cause).toBe('a string, not an Error');
  });
});

describe('a thrown value whose inspection throws fails only its job', () => {
  const kinds: Hostile[] = ['revoked-proxy', 'trap-proxy', 'message-getter', 'object-getter'];
  it.each(kinds)(
    '%s: the job fails with an Error, the thread stays usable, drain resolves',
    async (what) => {
      const pool = jobsPool();
      const before = await pool.run({ kind: 'thread-id' });
      const task = await pool.submit({ kind: 'throw-hostile', what });
      const result = await task.result;
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error).toBeInstanceOf(Error);
      // The same thread (not a replacement) runs the next job.
      expect(await pool.run({ kind: 'thread-id' })).toBe(before);
      expect(await pool.run({ kind: 'double', x: 2 })).toBe(4);
      const report = await pool.drain();
      expect(report.canceled).toBe(0);
      expect(pool.stats()).toMatchObject({ failed: 1, crashed: 0 });
    },
  );
});

describe('a worker that returns a thenable of its own (not an async function)', () => {
  const thenablesPool = (): ThreadPool<ThenableJob, unknown> =>
    new ThreadPool<ThenableJob, unknown>(fixture('thenables.ts'), { threads: 1 });

  it.each(['then-throws', 'then-getter-throws'] as const)(
    '%s: fails only that job with its error; the same thread runs the next one',
    async (kind) => {
      await using pool = thenablesPool();
      const before = await pool.run({ kind: 'thread-id' });
      const error = (await pool.run({ kind }).catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(Error);
      expect(error.message).toMatch(/then( getter)? threw/);
      expect(await pool.run({ kind: 'thread-id' })).toBe(before);
      expect(pool.stats()).toMatchObject({ failed: 1, crashed: 0 });
    },
  );

  it('ends when then() calls back, not when what then() returned settles: later jobs run', async () => {
    await using pool = thenablesPool();
    const results = await Promise.all([
      pool.run({ kind: 'then-returns-pending', value: 1 }),
      pool.run({ kind: 'then-returns-pending', value: 2 }),
      pool.run({ kind: 'thread-id' }),
    ]);
    expect(results.slice(0, 2)).toEqual([1, 2]);
    expect(pool.stats()).toMatchObject({ succeeded: 3, running: 0, queued: 0 });
  }, 10_000); // a bound on the failure (the thread stalled for ever), not a wait the pass relies on

  it('fulfilled with another thenable gives the inner value, as await adopts it', async () => {
    await using pool = thenablesPool();
    expect(await pool.run({ kind: 'nested', value: 'inner' })).toBe('inner');
  });
});

describe('values that cannot cross threads fail only their job', () => {
  it('a job that cannot be cloned fails with a TypeError; its batch-mates run', async () => {
    await using pool = jobsPool({ threads: 1, queueSize: 8 });
    const bad = { kind: 'double', x: () => 1 } as unknown as Job;
    const results = await Promise.all(
      [{ kind: 'double', x: 1 } as Job, bad, { kind: 'double', x: 3 } as Job].map((job) =>
        pool.run(job).catch((e: unknown) => e),
      ),
    );
    expect(results[0]).toBe(2);
    expect(results[1]).toBeInstanceOf(TypeError);
    expect((results[1] as Error).message).toMatch(/cannot be sent to a thread/);
    expect(results[1]).toHaveProperty('code', 'ERR_DATA_CLONE');
    expect(results[2]).toBe(6);
  });

  it('a result that cannot be cloned fails that job; the thread stays', async () => {
    await using pool = jobsPool();
    const before = await pool.run({ kind: 'thread-id' });
    const error = (await pool.run({ kind: 'return-function' }).catch((e: unknown) => e)) as Error;
    expect(error.name).toBe('TypeError');
    expect(error.message).toMatch(/result cannot be sent from the thread/);
    expect(error).toHaveProperty('code', 'ERR_DATA_CLONE');
    expect(await pool.run({ kind: 'thread-id' })).toBe(before);
  });
});

describe('a thread that dies mid-job', () => {
  it('per-thread completed counts survive the replacement of a crashed thread', async () => {
    await using pool = jobsPool({ threads: 1 });
    for (let x = 0; x < 5; x++) await pool.run({ kind: 'double', x });
    expect(pool.stats().threads).toMatchObject([{ id: 0, completed: 5 }]);
    await expect(pool.run({ kind: 'exit', code: 1 })).rejects.toBeInstanceOf(WorkerCrashedError);
    for (let x = 0; x < 3; x++) await pool.run({ kind: 'double', x });
    expect(pool.stats().threads).toMatchObject([{ id: 0, completed: 8 }]);
    expect(pool.stats()).toMatchObject({ succeeded: 8, crashed: 1 });
  });

  const cases = [
    { name: 'process.exit(0)', job: { kind: 'exit', code: 0 } as const, exitCode: 0 },
    { name: 'process.exit(1)', job: { kind: 'exit', code: 1 } as const, exitCode: 1 },
    {
      name: 'an uncaught exception in a timer',
      job: { kind: 'timer-throw' } as const,
      exitCode: 1,
    },
  ];
  for (const { name, job, exitCode } of cases) {
    it(`${name}: fails that job with WorkerCrashedError, is replaced, 10 later jobs succeed`, async () => {
      await using pool = jobsPool({ threads: 1, queueSize: 16 });
      const before = await pool.run({ kind: 'thread-id' });
      const crashed = pool.run(job).catch((e: unknown) => e);
      // Queued behind the crash: these must run on the replacement thread.
      const later = Array.from({ length: 10 }, (_, x) => pool.run({ kind: 'double', x }));
      const error = await crashed;
      expect(error).toBeInstanceOf(WorkerCrashedError);
      expect((error as WorkerCrashedError).code).toBe('ERR_WORKER_CRASHED');
      expect((error as WorkerCrashedError).exitCode).toBe(exitCode);
      expect(await Promise.all(later)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
      expect(await pool.run({ kind: 'thread-id' })).not.toBe(before);
      expect(pool.stats()).toMatchObject({ crashed: 1, succeeded: 12 });
    });
  }

  it.each(['revoked-proxy', 'message-getter'] as const)(
    'an uncaught %s in a timer: WorkerCrashedError with a readable message; replaced',
    async (what) => {
      await using pool = jobsPool({ threads: 1 });
      const error = (await pool
        .run({ kind: 'timer-throw-hostile', what })
        .catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(WorkerCrashedError);
      expect(error.message).not.toMatch(/undefined/);
      expect(error.cause).toBeInstanceOf(Error);
      expect(await pool.run({ kind: 'double', x: 5 })).toBe(10);
    },
  );

  it('exceeding resourceLimits: WorkerCrashedError, replaced, 10 later jobs succeed', async () => {
    await using pool = jobsPool({
      threads: 1,
      queueSize: 16,
      resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 8 },
    });
    const crashed = pool.run({ kind: 'oom' }).catch((e: unknown) => e);
    const later = Array.from({ length: 10 }, (_, x) => pool.run({ kind: 'double', x }));
    const error = (await crashed) as WorkerCrashedError;
    expect(error).toBeInstanceOf(WorkerCrashedError);
    expect(error.exitCode).toBe(1);
    expect((error.cause as { code?: string }).code).toBe('ERR_WORKER_OUT_OF_MEMORY');
    expect(await Promise.all(later)).toHaveLength(10);
  });
});

describe('a module that throws on import', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-threads-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is restarted with backoff, then fails the pool with one error every queued job gets', async () => {
    const attempts = join(dir, 'attempts');
    process.env.SLUICE_TEST_ATTEMPTS = attempts;
    const started = performance.now();
    const pool = new ThreadPool<number, number>(fixture('import-throws.ts'), {
      threads: 1,
      queueSize: 8,
      maxStartupFailures: 3,
    });
    const jobs = [1, 2, 3, 4, 5].map((x) => pool.run(x).catch((e: unknown) => e));
    const errors = await Promise.all(jobs);
    // Three attempts, not a tight loop: 50 ms then 100 ms of backoff between them.
    expect(readFileSync(attempts, 'utf8').split('\n').filter(Boolean)).toHaveLength(3);
    expect(performance.now() - started).toBeGreaterThanOrEqual(150);
    const [first] = errors;
    expect(first).toBeInstanceOf(WorkerStartupError);
    expect((first as Error).message).toMatch(/3 consecutive thread start-up failures/);
    expect(((first as Error).cause as Error).message).toBe('this module always fails to load');
    for (const error of errors) expect(error).toBe(first);
    await expect(pool.ready).rejects.toBe(first);
    await expect(pool.run(6)).rejects.toBe(first);
    expect(pool.stats()).toMatchObject({ crashed: 5, succeeded: 0 });
    await pool.drain();
  });

  it('recovers when only the first import fails', async () => {
    process.env.SLUICE_TEST_MARKER = join(dir, 'marker');
    await using pool = new ThreadPool<number, number>(fixture('import-throws-once.ts'), {
      threads: 1,
    });
    expect(await pool.run(7)).toBe(49);
    await pool.ready;
  });
});
