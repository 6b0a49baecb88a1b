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

  /** @param grain - see {@link SlidingWindow}; tests pass their own to reach it at small limits. */
  constructor(limit: number, interval: number, grain = grainFor(limit, interval)) {
    this.limit = limit;
    this.interval = interval;
    this.#grain = grain;
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

  /**
   * True when `count` more starts fit whatever the time now is: the starts logged and not yet
   * pruned include every start still in the window, so fitting them all is enough.
   */
  fits(count: number): boolean {
    return this.#total + count <= this.limit;
  }

  /**
   * Records `count` starts at `at` (>= every earlier start: reservations only move forward;
   * never before the starts happened, or they would leave the window early).
   */
  record(at: number, count = 1): void {
    this.#total += count;
    const mask = this.#times.length - 1;
    if (this.#length > 0) {
      const tail = (this.#head + this.#length - 1) & mask;
      if (at - (this.#opened[tail] as number) <= this.#grain) {
        this.#counts[tail] = (this.#counts[tail] as number) + count;
        if (at > (this.#times[tail] as number)) this.#times[tail] = at;
        return;
      }
    }
    if (this.#length === this.#times.length) this.#grow();
    const slot = (this.#head + this.#length) & (this.#times.length - 1);
    this.#times[slot] = at;
    this.#opened[slot] = at;
    this.#counts[slot] = count;
    this.#length++;
  }

  /** Takes back the latest start recorded (granted, then not used: its job was canceled). */
  unrecord(): void {
    if (this.#length === 0) return;
    const tail = (this.#head + this.#length - 1) & (this.#times.length - 1);
    this.#total--;
    const left = (this.#counts[tail] as number) - 1;
    if (left > 0) this.#counts[tail] = left;
    else this.#length--;
  }

  /** True when no start in the log is still inside a window reaching `now`. */
  idle(now: number): boolean {
    this.#prune(now);
    return this.#length === 0;
  }

  #prune(now: number): void {
    const mask = this.#times.length - 1;
    // `time + interval <= now`, the very sum `delay` waits out: `time <= now - interval` rounds
    // differently and could keep an entry whose wait `delay` finds to be 0.
    while (this.#length > 0 && (this.#times[this.#head] as number) + this.interval <= now) {
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

/**
 * A {@link RateLimiter} over a {@link SlidingWindow}, on this process's monotonic clock.
 *
 * Above a limit of {@link MERGE_ABOVE}, up to `limit / 1024` starts in a row are granted without
 * a clock reading (~50 ns each on a VM, as much as a whole job's scheduling): granted only when
 * they fit even if no logged start had left the window, and recorded with the next reading,
 * later than they happened, never earlier. So a window never holds more than `limit` starts,
 * and at most `limit / 1024` of them stay in the log longer than they should.
 */
export class LocalRateLimiter implements RateLimiter {
  readonly #window: SlidingWindow;
  /** The latest reading seen: pools sharing the limiter may pass slightly older ones. */
  #last = Number.NEGATIVE_INFINITY;
  /** Starts granted since the last reading, not yet in the log: stamped by the next one. */
  #unstamped = 0;
  /** How many starts in a row {@link try} may grant without reading the clock. */
  readonly #unreadRun: number;

  /**
   * @param unreadRun - starts in a row granted without a reading; by default `limit / 1024`
   *   above a limit of 1,024, else 0 (every start read). Tests pass small ones, and a `grain`
   *   for the window (see {@link SlidingWindow}).
   */
  constructor(limit: number, interval: number, unreadRun = unreadRunFor(limit), grain?: number) {
    this.#window = new SlidingWindow(limit, interval, grain);
    this.#unreadRun = unreadRun;
  }

  reserve(): number {
    return this.reserveAt(performance.now());
  }

  /**
   * {@link tryAt} for a start happening now, reading the clock only when the start might not
   * fit otherwise or the run of unread starts is full.
   */
  try(): number {
    if (this.#unstamped < this.#unreadRun && this.#window.fits(this.#unstamped + 1)) {
      this.#unstamped++;
      return 0;
    }
    return this.tryAt(performance.now());
  }

  /**
   * Takes a start at `reading` if the window has room (returns 0 and records it), else returns
   * the wait in ms and records nothing: the pool asks again when it is due and the start is
   * recorded when it really happens — a timer that fires late then cannot crowd more than
   * `limit` real starts into a window, as a reservation stamped at its planned time could.
   *
   * `reading`: the caller's own clock reading (a pool has one for the start already). A reading
   * older than one used before counts as that one: a start stamped later than it happened
   * leaves the window later, never earlier.
   */
  tryAt(reading: number): number {
    const now = this.#read(reading);
    const wait = this.#window.delay(now);
    if (wait <= 0) this.#window.record(now);
    return wait;
  }

  reserveAt(reading: number): number {
    const now = this.#read(reading);
    const wait = this.#window.delay(now);
    this.#window.record(now + wait);
    return now + wait - reading;
  }

  /**
   * Takes back the start granted last, which did not happen (its job was canceled before it
   * started): the next start asks anew and finds its room. Called before anything else asks.
   */
  giveBack(): void {
    if (this.#unstamped > 0) this.#unstamped--;
    else this.#window.unrecord();
  }

  /** Takes a reading: the latest so far, which also stamps the unread starts before it. */
  #read(reading: number): number {
    if (reading > this.#last) this.#last = reading;
    if (this.#unstamped > 0) {
      this.#window.record(this.#last, this.#unstamped);
      this.#unstamped = 0;
    }
    return this.#last;
  }
}

/** How far apart merged starts may be: 0 (exact) up to the merge threshold. */
function grainFor(limit: number, interval: number): number {
  return limit > MERGE_ABOVE ? interval / BUCKETS_PER_WINDOW : 0;
}

/** Starts in a row granted without a reading: none up to the merge threshold. */
function unreadRunFor(limit: number): number {
  return limit > MERGE_ABOVE ? Math.floor(limit / BUCKETS_PER_WINDOW) : 0;
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
