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
 * (`errors`, oldest first, then the cancel that ended a wait to retry if one did; `error` is the
 * last).
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
   * The wait in ms before attempt `attempt + 1`, or -1 when the failure is final. As in
   * `consume()`, a `retryIf` that throws (or answers anything but a boolean) counts as "retry",
   * and a backoff function that throws or returns a bad delay is replaced by the default
   * backoff: the job's own error stays its error, and the broken callback is reported once with
   * `process.emitWarning`.
   */
  next(error: Error, attempt: number): number {
    if (attempt >= this.attempts || error instanceof AbortError) return -1;
    if (this.#retryIf !== undefined) {
      let answer: unknown;
      try {
        answer = this.#retryIf(error, attempt);
      } catch (thrown) {
        warnOnce('retryIf', `threw (${String(thrown)}); the job is retried`);
        answer = true;
      }
      if (answer === false) return -1;
      if (answer !== true)
        warnOnce('retryIf', `returned ${String(answer)}, not a boolean; retried`);
    }
    try {
      return this.#delay(attempt, error);
    } catch (thrown) {
      warnOnce('backoff', `failed (${String(thrown)}); the default backoff is used`);
      return DEFAULT_DELAYS(attempt, error);
    }
  }
}

const DEFAULT_DELAYS = backoffDelays('retry.backoff', undefined);
const warned = new Set<string>();

/** One warning per kind of broken callback per process: a hot loop must not flood stderr. */
function warnOnce(what: string, detail: string): void {
  if (warned.has(what)) return;
  warned.add(what);
  process.emitWarning(`sluice: a retry.${what} function ${detail}`, {
    code: 'SLUICE_RETRY_CALLBACK',
  });
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
