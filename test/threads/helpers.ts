// Shared fixtures and latches for the ThreadPool tests.
import { onTestFinished, vi } from 'vitest';
import { BatchSize, MAX_BATCH } from '../../src/threads/batch-size.js';
import { ThreadPool } from '../../src/threads/pool.js';
import type { ThreadPoolOptions } from '../../src/threads/types.js';
import type { Job } from '../fixtures/threads/jobs.js';

export const fixture = (name: string): URL =>
  new URL(`../fixtures/threads/${name}`, import.meta.url);

export const JOBS = fixture('jobs.ts');

/** A pool over the jobs fixture; 1 thread unless told otherwise. */
export function jobsPool(opts: ThreadPoolOptions = {}): ThreadPool<Job, unknown> {
  return new ThreadPool<Job, unknown>(JOBS, { threads: 1, ...opts });
}

/** Latch cells shared with a job (see the jobs fixture). */
export function latch(): { sab: SharedArrayBuffer; cells: Int32Array } {
  const sab = new SharedArrayBuffer(12);
  return { sab, cells: new Int32Array(sab) };
}

// Atomics.waitAsync is in Node 16+, but in TypeScript's lib only from ES2024.
const waitAsync = (
  Atomics as unknown as {
    waitAsync(
      cells: Int32Array,
      index: number,
      value: number,
      timeoutMs?: number,
    ): { async: boolean; value: unknown };
  }
).waitAsync;

/** Resolves once cell `index` is no longer 0; returns its value. Never busy-waits. */
export async function cellSet(cells: Int32Array, index: number): Promise<number> {
  for (;;) {
    const value = Atomics.load(cells, index);
    if (value !== 0) return value;
    const wait = waitAsync(cells, index, 0);
    if (wait.async) await wait.value;
  }
}

/** Ends a blocked job of the jobs fixture. */
export function release(cells: Int32Array): void {
  Atomics.store(cells, 2, 1);
  Atomics.notify(cells, 2);
}

/**
 * Resolves true once cell `index` is at least `value`, false after `timeoutMs` without it.
 * Never busy-waits.
 */
export async function cellReaches(
  cells: Int32Array,
  index: number,
  value: number,
  timeoutMs = Number.POSITIVE_INFINITY,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const now = Atomics.load(cells, index);
    if (now >= value) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    const wait = waitAsync(cells, index, now, left);
    if (wait.async) await wait.value;
  }
}

/**
 * Makes jobs submitted in one turn travel to a thread in one batch, whatever the machine's load
 * (the batch sizer would send one job per message once it measured jobs slower than ~1 ms), until
 * the test ends. Returns the id of the thread the pool runs on.
 */
export async function batchingOn(pool: ThreadPool<Job, unknown>): Promise<unknown[]> {
  const sizer = vi
    .spyOn(BatchSize.prototype, 'next')
    .mockImplementation((waiting: number) => Math.min(waiting, MAX_BATCH));
  onTestFinished(() => sizer.mockRestore());
  return [await pool.run({ kind: 'thread-id' })];
}
