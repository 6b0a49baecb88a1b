import { describe, expect, it } from 'vitest';
import { AbortError, TimeoutError } from '../../src/errors.js';
import { pipeline } from '../../src/pipeline.js';
import type { Result } from '../../src/result.js';
import { runPool } from '../../src/run-pool.js';
import { ThreadPool } from '../../src/threads/pool.js';
import type { Job } from '../fixtures/threads/jobs.js';
import { cellSet, fixture, latch } from './helpers.js';

describe('ThreadPool with runPool and pipeline', () => {
  it('can be driven by runPool: every job yields one result', async () => {
    await using pool = new ThreadPool<number, number>(fixture('double.ts'), { threads: 2 });
    const values: number[] = [];
    const jobs = Array.from({ length: 50 }, (_, i) => i);
    for await (const r of runPool(jobs, (x, { signal }) => pool.run(x, { signal }), {
      concurrency: 4,
    })) {
      expect(r.ok).toBe(true);
      if (r.ok) values.push(r.value);
    }
    expect(values.sort((a, b) => a - b)).toEqual(jobs.map((x) => x * 2));
  });

  it('can be a pipeline stage; a failure in it skips later stages', async () => {
    await using pool = new ThreadPool<unknown, unknown>(fixture('jobs.ts'), { threads: 2 });
    const source = [1, 2, 3, 4];
    const results: Result<unknown, unknown>[] = [];
    const flow = pipeline(source)
      .stage(
        'to-job',
        (x: number) => (x === 3 ? { kind: 'throw', message: 'three' } : { kind: 'double', x }),
        {
          concurrency: 1,
        },
      )
      .stage('thread', pool, { concurrency: 2 })
      .stage('plus-one', (x: unknown) => (x as number) + 1, { concurrency: 1 });
    for await (const r of flow) results.push(r);
    const ok = results.filter((r) => r.ok).map((r) => (r.ok ? r.value : undefined));
    expect(ok.sort()).toEqual([3, 5, 9]);
    const failed = results.find((r) => !r.ok);
    expect(failed).toMatchObject({ ok: false, stage: 'thread', job: 3 });
    expect(!failed?.ok && failed?.error.name).toBe('CustomError');
  });

  it('a runPool timeout reaches the job inside its thread', async () => {
    await using pool = new ThreadPool<Job, unknown>(fixture('jobs.ts'), { threads: 1 });
    await pool.ready; // so the job starts long before runPool's timeout
    const { sab, cells } = latch();
    const results = [];
    for await (const r of runPool(
      [{ kind: 'wait-abort', sab } as Job],
      (job, { signal }) => pool.run(job, { signal }),
      { concurrency: 1, timeout: 400 },
    )) {
      results.push(r);
    }
    expect(Atomics.load(cells, 0)).toBe(1); // it did start in the thread
    expect(results[0]?.ok).toBe(false);
    expect(!results[0]?.ok && results[0]?.error).toBeInstanceOf(TimeoutError);
    expect(await cellSet(cells, 1)).toBe(1); // the thread's ctx.signal aborted
  });

  it('a canceled runPool job aborts its thread job', async () => {
    await using pool = new ThreadPool<number, number>(fixture('double.ts'), { threads: 1 });
    const controller = new AbortController();
    controller.abort('early');
    const error = await pool.run(1, { signal: controller.signal }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortError);
  });
});
