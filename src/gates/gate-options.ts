/**
 * The gate options every pool kind takes (`retry`, `rate`, `key`, `perKey`), checked once and
 * resolved into what the scheduling core uses. Internal; the public types are re-exported.
 *
 * @module
 */
import { formatValue } from '../internal/format-value.js';
import { coded, fn, invalidOption, optionsObject, positiveInt } from '../internal/options.js';
import { KeyedQueue } from './keyed-queue.js';
import type { RateLimiter } from './rate-limiter.js';
import { type RetryOptions, type RetryPolicy, retryPolicy } from './retry.js';
import type { Queued, RunQueue } from './run-queue.js';
import { FifoQueue } from './run-queue.js';
import { type RateLimit, rateLimit, rateOption } from './sliding-window.js';

/** Limits applied to each key separately (with the `key` option). */
export interface PerKeyOptions {
  /** Jobs of one key running at once: a positive integer. @default 1 */
  concurrency?: number;
  /** Starts of one key per window (a strict sliding window, like `rate`). @default none */
  rate?: RateLimit;
}

/**
 * Start gates and retries, with one meaning on `Pool`, `ThreadPool`, `runPool`, each pipeline
 * stage and `consume()`.
 */
export interface GateOptions<J> {
  /** Run failed jobs again, with backoff, holding no slot meanwhile. See {@link RetryOptions}. */
  retry?: RetryOptions;
  /**
   * At most `limit` job starts in any window of `interval` ms — a strict sliding window: a burst
   * of `limit` starts at once, never more than `limit` in any `[t, t + interval)`. Or any
   * {@link RateLimiter}, e.g. one `rateLimiter()` shared by several pools, or `redisRateLimiter()`
   * shared by processes on many machines. A job waiting on the rate holds no slot.
   *
   * A start is counted when the pool takes its permit, just before calling the job: a job's own
   * clock reading comes later by that gap (µs; ms on first use or under OS preemption), so give
   * a strict remote limit a margin.
   *
   * Memory and cost: the in-process window logs at most `limit` start times; above a `limit` of
   * 1024, starts less than `interval / 1024` ms apart share one entry (~1024 per window, however
   * high the limit), and up to `limit / 1024` starts in a row are granted without a clock reading
   * (only when they fit even if no logged start had left the window) and logged at the next
   * reading. Such starts may count as leaving the window late, never early: a merged one by up
   * to `interval / 1024` ms (a burst inside that time leaves with its last start), an unread one
   * (at most `limit / 1024` at a time) from the next reading on, however late that comes.
   */
  rate?: RateLimit | RateLimiter;
  /**
   * The job's key (a tenant, a host, a user …) for per-key fairness: queued jobs start in
   * round-robin among the keys that have work, so one busy key cannot starve the others, each
   * key within its `perKey` limits. A throwing key function fails that job.
   */
  key?: (job: J) => string;
  /** Limits per key (needs `key`). @default { concurrency: 1 } */
  perKey?: PerKeyOptions;
}

/** The resolved gates of one pool. */
export interface Gates<J> {
  retry: RetryPolicy | undefined;
  rate: RateLimiter | undefined;
  key: ((job: J) => string) | undefined;
  /** A key has a rate (`perKey.rate`): the keyed queue records each start at the time given. */
  keyRate: boolean;
  /** A queue for this pool's discipline: keyed when `key` is set, else FIFO. */
  newQueue<E extends Queued>(): RunQueue<E>;
}

/**
 * Checks and resolves the gate options of `opts`; `prefix` names the owner in messages (a
 * stage's `"name."`). @throws TypeError/RangeError naming the option.
 */
export function gateOptions<J>(opts: GateOptions<J>, prefix = ''): Gates<J> {
  const retry = retryPolicy(opts.retry, prefix);
  const rate = rateOption(opts.rate, prefix);
  const key = opts.key == null ? undefined : fn<(job: J) => string>(`${prefix}key`, opts.key);
  const perKey = optionsObject<PerKeyOptions>(`${prefix}perKey`, opts.perKey);
  if (perKey != null && key === undefined) {
    invalidOption(`${prefix}perKey`, perKey, 'to come with a key function (the key option)');
  }
  const limits = key && {
    concurrency: positiveInt(`${prefix}perKey.concurrency`, perKey?.concurrency ?? 1, true),
    rate: perKey?.rate == null ? undefined : rateLimit(`${prefix}perKey.rate`, perKey.rate),
    byPriority: true,
  };
  return {
    retry,
    rate,
    key,
    keyRate: limits !== undefined && limits.rate !== undefined,
    newQueue: <E extends Queued>(): RunQueue<E> =>
      limits ? new KeyedQueue<E>(limits) : new FifoQueue<E>(),
  };
}

/** The key of `job` as a string; a non-string key is the key function's bug. */
export function keyOf<J>(key: (job: J) => string, job: J): string {
  const value = key(job);
  if (typeof value !== 'string') {
    throw coded(
      new TypeError(`the key function returned ${formatValue(value)}, expected a string`),
      'ERR_INVALID_RETURN_VALUE',
    );
  }
  return value;
}
