/**
 * The retry gate: which failures run again, and after how long. A job waiting to retry holds no
 * slot; the scheduling core owns the wait (see `scheduler/core.ts`).
 *
 * @module
 */
import { AbortError } from '../errors.js';
import { fn, invalidOption, optionsObject, positiveInt } from '../internal/options.js';
import type { Result } from '../result.js';
import { type BackoffFunction, type BackoffOptions, backoffDelays } from './backoff.js';

/**
 * The `retry` option of every pool kind: run a failed job again, up to `attempts` runs in all.
 *
 * Each attempt is a fresh run: a new `ctx.signal`, its own `timeout`. Between attempts the job
 * waits its backoff without holding a slot (other jobs run meanwhile). Its own signal, the pool's
 * `abort()` and a drain deadline cancel the wait (the job settles as `AbortError`). A canceled
 * job (`AbortError`) is never retried; every other failure, timeouts and thread crashes included,
 * is — unless `retryIf` says no. The result carries `attempts` and the errors of every attempt
 * (`errors`, oldest first; `error` is the last).
 *
 * Defaults follow p-retry and BullMQ: exponential backoff from 1 s, doubling, capped at 30 s,
 * half of each delay random.
 *
 * @example
 * ```ts
 * const pool = new Pool(callApi, {
 *   concurrency: 8,
 *   retry: { attempts: 3, backoff: { initial: 200 }, retryIf: (e) => e.name !== 'ValidationError' },
 * });
 * ```
 */
export interface RetryOptions {
  /** Runs in all, including the first: an integer >= 1 (1 = no retry). Required. */
  attempts: number;
  /** Delay before each retry: exponential `{ initial, max, factor, jitter }` (ms) or a function. */
  backoff?: BackoffOptions | BackoffFunction;
  /** Whether `error` (from attempt `attempt`, 1-based) is worth retrying. @default every failure but a cancel */
  retryIf?: (error: Error, attempt: number) => boolean;
}

type RetryIf = (error: Error, attempt: number) => boolean;

/** A resolved `retry` option. Internal. */
export class RetryPolicy {
  readonly attempts: number;
  readonly #delay: BackoffFunction;
  readonly #retryIf: RetryIf | undefined;

  constructor(attempts: number, delay: BackoffFunction, retryIf: RetryIf | undefined) {
    this.attempts = attempts;
    this.#delay = delay;
    this.#retryIf = retryIf;
  }

  /**
   * The wait in ms before attempt `attempt + 1`, or -1 when the failure is final. A `retryIf`
   * or backoff function that throws makes the failure final with that error (returned instead).
   */
  next(error: Error, attempt: number): number | Error {
    if (attempt >= this.attempts || error instanceof AbortError) return -1;
    try {
      if (this.#retryIf !== undefined && !this.#retryIf(error, attempt)) return -1;
      return this.#delay(attempt, error);
    } catch (thrown) {
      return thrown instanceof Error ? thrown : new Error(String(thrown));
    }
  }
}

/** Checks the `retry` option. @throws TypeError/RangeError naming the bad field. */
export function retryPolicy(value: unknown, prefix = ''): RetryPolicy | undefined {
  if (value == null) return undefined;
  const name = `${prefix}retry`;
  const opts = optionsObject<RetryOptions>(name, value) as RetryOptions;
  if (opts.attempts === undefined)
    invalidOption(`${name}.attempts`, undefined, 'a positive integer');
  const attempts = positiveInt(`${name}.attempts`, opts.attempts);
  const delay = backoffDelays(`${name}.backoff`, opts.backoff);
  const retryIf = opts.retryIf == null ? undefined : fn<RetryIf>(`${name}.retryIf`, opts.retryIf);
  return new RetryPolicy(attempts, delay, retryIf);
}

/** What {@link attemptsResult} reads of a job's last run. */
interface LastRun {
  readonly attempt: number;
  readonly errors: Error[] | undefined;
  /** -1 when the run never started (canceled in the queue or while waiting to retry). */
  readonly workerId: number;
}

/**
 * A retrying pool's result: `attempts` (runs that started) and `errors` (each failed run's
 * error, oldest first, then the final error when it is not already the last of them).
 */
export function attemptsResult<J, R>(
  result: Result<J, R>,
  run: LastRun,
  error: Error | undefined,
): Result<J, R> {
  const errors = run.errors ?? [];
  return Object.assign(result, {
    attempts: run.workerId >= 0 ? run.attempt : run.attempt - 1,
    errors: error === undefined ? errors : [...errors, error],
  });
}
