/**
 * The in-process rate limit: a sliding log of start times.
 *
 * @module
 */
import { Deque } from '../internal/deque.js';
import { invalidOption, numberAtLeast, optionsObject, positiveInt } from '../internal/options.js';
import type { RateLimiter } from './rate-limiter.js';

/** `{ limit, interval }`: at most `limit` starts in any window of `interval` ms. */
export interface RateLimit {
  /** Starts allowed per window: a positive integer. */
  limit: number;
  /** The window in ms: a number > 0 and <= 2147483647. */
  interval: number;
}

/**
 * A sliding log of the latest start times. Guarantee: any window `[t, t + interval)` holds at
 * most `limit` starts — a strict sliding window, not fixed windows (which let through twice the
 * limit across a boundary, as p-queue's `interval` does) and not a token bucket (whose refill
 * lets `2 * limit - 1` through in one window). The burst is `limit` starts at once. Memory:
 * one number per start in the last `interval` ms, so at most `limit`. Internal.
 */
export class SlidingWindow {
  readonly limit: number;
  readonly interval: number;
  /** Start times (performance.now() ms), ascending; pruned when older than the window. */
  readonly #log = new Deque<number>(4);

  constructor(limit: number, interval: number) {
    this.limit = limit;
    this.interval = interval;
  }

  /** ms from `now` until one more start fits in the window (0 = now). */
  delay(now: number): number {
    this.#prune(now);
    const log = this.#log;
    if (log.length < this.limit) return 0;
    // The start `limit` places back must leave the window first.
    return Math.max(0, (log.at(log.length - this.limit) as number) + this.interval - now);
  }

  /** Records a start at `at` (>= every earlier start: reservations only move forward). */
  record(at: number): void {
    this.#log.push(at);
  }

  /** True when no start in the log is still inside a window reaching `now`. */
  idle(now: number): boolean {
    this.#prune(now);
    return this.#log.length === 0;
  }

  #prune(now: number): void {
    const horizon = now - this.interval;
    while (this.#log.length > 0 && (this.#log.peek() as number) <= horizon) this.#log.shift();
  }
}

/** A {@link RateLimiter} over a {@link SlidingWindow}, on this process's monotonic clock. */
class LocalRateLimiter implements RateLimiter {
  readonly #window: SlidingWindow;

  constructor(limit: number, interval: number) {
    this.#window = new SlidingWindow(limit, interval);
  }

  reserve(): number {
    const now = performance.now();
    const wait = this.#window.delay(now);
    this.#window.record(now + wait);
    return wait;
  }
}

/**
 * An in-process limiter that several pools can share: at most `limit` job starts in any window
 * of `interval` ms, summed over every pool using it (a strict sliding window; a burst of `limit`
 * starts at once is allowed). `rate: { limit, interval }` on a pool builds one of its own.
 * Across processes, use `redisRateLimiter()` from `sluice/redis`.
 *
 * @throws TypeError/RangeError (`ERR_INVALID_OPTION`) naming `limit` or `interval` when invalid.
 * @example
 * ```ts
 * const api = rateLimiter({ limit: 100, interval: 1000 }); // the API allows 100 calls/s
 * const a = new Pool(fetchUser, { concurrency: 8, rate: api });
 * const b = new Pool(fetchOrder, { concurrency: 8, rate: api });
 * ```
 */
export function rateLimiter(options: RateLimit): RateLimiter {
  const { limit, interval } = rateLimit('rate', options);
  return new LocalRateLimiter(limit, interval);
}

/** Checks a `{ limit, interval }` option named `name`. */
export function rateLimit(name: string, value: unknown): RateLimit {
  const opts = optionsObject<RateLimit>(name, value);
  if (opts == null) invalidOption(name, value, 'an object { limit, interval }');
  const limit = positiveInt(`${name}.limit`, opts.limit);
  if (typeof opts.interval !== 'number') {
    invalidOption(`${name}.interval`, opts.interval, 'a number of ms > 0');
  }
  const interval = numberAtLeast(`${name}.interval`, opts.interval, Number.MIN_VALUE, {
    unit: 'ms',
  });
  return { limit, interval };
}

/** Resolves the `rate` option: a {@link RateLimiter}, or `{ limit, interval }` (a new local one). */
export function rateOption(value: unknown, prefix = ''): RateLimiter | undefined {
  if (value == null) return undefined;
  if (typeof (value as { reserve?: unknown }).reserve === 'function') return value as RateLimiter;
  const { limit, interval } = rateLimit(`${prefix}rate`, value);
  return new LocalRateLimiter(limit, interval);
}
