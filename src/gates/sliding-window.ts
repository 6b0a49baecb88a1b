/**
 * The in-process rate limit: a sliding log of start times.
 *
 * @module
 */
import { invalidOption, MAX_TIMER_MS, optionsObject, positiveInt } from '../internal/options.js';
import type { RateLimiter } from './rate-limiter.js';

/** `{ limit, interval }`: at most `limit` starts in any window of `interval` ms. */
export interface RateLimit {
  /** Starts allowed per window: a positive integer. */
  limit: number;
  /** The window in ms: a number > 0 and <= 2147483647. */
  interval: number;
}

/**
 * Above this limit, starts less than `interval / BUCKETS_PER_WINDOW` apart share one log entry,
 * so the log holds at most ~BUCKETS_PER_WINDOW entries per window, however high the limit (a
 * never-limiting `{ limit: 1e9 }` would otherwise keep one entry per start of the last window).
 */
const MERGE_ABOVE = 1024;
const BUCKETS_PER_WINDOW = 1024;

/**
 * A sliding log of the latest start times. Guarantee: any window `[t, t + interval)` holds at
 * most `limit` starts — a strict sliding window, not fixed windows (which let through twice the
 * limit across a boundary, as p-queue's `interval` does) and not a token bucket (whose refill
 * lets `2 * limit - 1` through in one window). The burst is `limit` starts at once.
 *
 * The log is a ring of `(time, count)` entries. Up to a limit of {@link MERGE_ABOVE} an entry
 * holds the starts of one instant (exact). Above it, starts within `interval / 1024` ms of an
 * entry's first start join that entry, stamped with the latest of them: a start counts as
 * leaving the window at most `interval / 1024` ms late, never early — so never more starts
 * than the limit, and memory of ~1024 entries per window instead of one per start. Internal.
 */
export class SlidingWindow {
  readonly limit: number;
  readonly interval: number;
  /** How far apart starts may be and still share an entry (0: only the same instant). */
  readonly #grain: number;
  /** Ring of entries, oldest first: the latest start time (performance.now() ms) ... */
  #times = new Float64Array(4);
  /** ... the time of its first start, ... */
  #opened = new Float64Array(4);
  /** ... and how many starts it holds. */
  #counts = new Float64Array(4);
  #head = 0;
  #length = 0;
  /** Starts in the log (the sum of the counts). */
  #total = 0;

  constructor(limit: number, interval: number) {
    this.limit = limit;
    this.interval = interval;
    this.#grain = limit > MERGE_ABOVE ? interval / BUCKETS_PER_WINDOW : 0;
  }

  /** ms from `now` until one more start fits in the window (0 = now). */
  delay(now: number): number {
    this.#prune(now);
    if (this.#total < this.limit) return 0;
    // Enough of the oldest starts must leave for one more to fit: the entry holding the start
    // `limit` places back from the newest leaves the window last among them.
    let leave = this.#total - this.limit + 1;
    const mask = this.#times.length - 1;
    for (let i = 0; i < this.#length; i++) {
      const at = (this.#head + i) & mask;
      leave -= this.#counts[at] as number;
      if (leave <= 0) return Math.max(0, (this.#times[at] as number) + this.interval - now);
    }
    return 0; // not reached: the counts sum to the total
  }

  /** Records a start at `at` (>= every earlier start: reservations only move forward). */
  record(at: number): void {
    this.#total++;
    const mask = this.#times.length - 1;
    if (this.#length > 0) {
      const tail = (this.#head + this.#length - 1) & mask;
      if (at - (this.#opened[tail] as number) <= this.#grain) {
        this.#counts[tail] = (this.#counts[tail] as number) + 1;
        if (at > (this.#times[tail] as number)) this.#times[tail] = at;
        return;
      }
    }
    if (this.#length === this.#times.length) this.#grow();
    const slot = (this.#head + this.#length) & (this.#times.length - 1);
    this.#times[slot] = at;
    this.#opened[slot] = at;
    this.#counts[slot] = 1;
    this.#length++;
  }

  /** True when no start in the log is still inside a window reaching `now`. */
  idle(now: number): boolean {
    this.#prune(now);
    return this.#length === 0;
  }

  #prune(now: number): void {
    const horizon = now - this.interval;
    const mask = this.#times.length - 1;
    while (this.#length > 0 && (this.#times[this.#head] as number) <= horizon) {
      this.#total -= this.#counts[this.#head] as number;
      this.#head = (this.#head + 1) & mask;
      this.#length--;
    }
  }

  #grow(): void {
    const size = this.#times.length;
    const mask = size - 1;
    const times = new Float64Array(size * 2);
    const opened = new Float64Array(size * 2);
    const counts = new Float64Array(size * 2);
    for (let i = 0; i < this.#length; i++) {
      const from = (this.#head + i) & mask;
      times[i] = this.#times[from] as number;
      opened[i] = this.#opened[from] as number;
      counts[i] = this.#counts[from] as number;
    }
    this.#times = times;
    this.#opened = opened;
    this.#counts = counts;
    this.#head = 0;
  }
}

/** A {@link RateLimiter} over a {@link SlidingWindow}, on this process's monotonic clock. */
export class LocalRateLimiter implements RateLimiter {
  readonly #window: SlidingWindow;
  /** The latest reading seen: pools sharing the limiter may pass slightly older ones. */
  #last = Number.NEGATIVE_INFINITY;

  constructor(limit: number, interval: number) {
    this.#window = new SlidingWindow(limit, interval);
  }

  reserve(): number {
    return this.reserveAt(performance.now());
  }

  /**
   * {@link reserve} with the caller's own clock reading (a pool has one for the start already;
   * a reading costs ~50 ns). A reading older than one used before counts as that one: a start
   * stamped later than it happened leaves the window later, never earlier.
   */
  /**
   * Takes a start at `reading` if the window has room (returns 0 and records it), else returns
   * the wait in ms and records nothing: the pool asks again when it is due and the start is
   * recorded when it really happens — a timer that fires late then cannot crowd more than
   * `limit` real starts into a window, as a reservation stamped at its planned time could.
   */
  tryAt(reading: number): number {
    if (reading > this.#last) this.#last = reading;
    const now = this.#last;
    const wait = this.#window.delay(now);
    if (wait <= 0) this.#window.record(now);
    return wait;
  }

  reserveAt(reading: number): number {
    if (reading > this.#last) this.#last = reading;
    const now = this.#last;
    const wait = this.#window.delay(now);
    this.#window.record(now + wait);
    return now + wait - reading;
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
  const interval = opts.interval;
  if (typeof interval !== 'number' || !(interval > 0 && interval <= MAX_TIMER_MS)) {
    invalidOption(
      `${name}.interval`,
      interval,
      `a number of ms > 0 and <= ${MAX_TIMER_MS}`,
      typeof interval === 'number',
    );
  }
  return { limit, interval };
}

/** Resolves the `rate` option: a {@link RateLimiter}, or `{ limit, interval }` (a new local one). */
export function rateOption(value: unknown, prefix = ''): RateLimiter | undefined {
  if (value == null) return undefined;
  if (typeof (value as { reserve?: unknown }).reserve === 'function') return value as RateLimiter;
  const { limit, interval } = rateLimit(`${prefix}rate`, value);
  return new LocalRateLimiter(limit, interval);
}
