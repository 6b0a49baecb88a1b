// Node refusing to start a thread: `new Worker` throws ERR_WORKER_INIT_FAILED (EAGAIN when the
// process is out of threads or memory). Simulated by a Worker that throws on chosen creations.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WorkerCrashedError, WorkerStartupError } from '../../src/errors.js';
import { jobsPool } from './helpers.js';

const refuse = vi.hoisted(() => ({ creations: 0, refused: new Set<number>() }));

vi.mock('node:worker_threads', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:worker_threads')>();
  class Worker extends actual.Worker {
    constructor(...args: ConstructorParameters<typeof actual.Worker>) {
      refuse.creations++;
      if (refuse.refused.has(refuse.creations)) {
        throw Object.assign(new Error('Worker initialization failure: EAGAIN'), {
          code: 'ERR_WORKER_INIT_FAILED',
        });
      }
      super(...args);
    }
  }
  return { ...actual, Worker, default: { ...actual, Worker } };
});

afterEach(() => {
  refuse.creations = 0;
  refuse.refused.clear();
});

describe('a thread Node refuses to start', () => {
  it('replacing a crashed thread: the crash fails its job only, the slot is retried, later jobs run', async () => {
    refuse.refused.add(2); // the replacement of the first thread
    await using pool = jobsPool({ threads: 1 });
    expect(await pool.run({ kind: 'double', x: 2 })).toBe(4);
    await expect(pool.run({ kind: 'exit', code: 3 })).rejects.toBeInstanceOf(WorkerCrashedError);
    // Was an uncaught exception from the dead thread's 'exit' handler: the process ended.
    expect(await pool.run({ kind: 'double', x: 5 })).toBe(10);
    expect(refuse.creations).toBe(3);
    expect(pool.stats().threads).toHaveLength(1);
  });

  it('at construction: no throw; the slot is retried with backoff and the pool works', async () => {
    refuse.refused.add(1);
    await using pool = jobsPool({ threads: 1 });
    expect(await pool.run({ kind: 'double', x: 4 })).toBe(8);
    await pool.ready;
  });

  it('every time: the pool fails with one WorkerStartupError whose cause is Node’s error', async () => {
    for (let n = 1; n <= 10; n++) refuse.refused.add(n);
    const pool = jobsPool({ threads: 2, maxStartupFailures: 2 });
    const job = pool.run({ kind: 'double', x: 1 }).catch((e: unknown) => e);
    const error = await pool.ready.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkerStartupError);
    expect((error as Error).cause).toHaveProperty('code', 'ERR_WORKER_INIT_FAILED');
    expect(await job).toBe(error);
    await pool.drain();
  });
});
