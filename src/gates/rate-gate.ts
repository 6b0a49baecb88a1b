/**
 * The rate gate of one pool: holds at most one permit at a time from its {@link RateLimiter}
 * and wakes the pool when the permit it asked for is due. Internal.
 *
 * @module
 */
import { MAX_TIMER_MS } from '../internal/options.js';
import type { RateLimiter } from './rate-limiter.js';
import { LocalRateLimiter } from './sliding-window.js';

export class RateGate {
  readonly #limiter: RateLimiter;
  /** The limiter when it is the in-process one: it takes the pool's clock reading. */
  readonly #local: LocalRateLimiter | undefined;
  readonly #wake: () => void;
  readonly #fail: (error: Error) => void;
  /** 'none' until a start needs a permit, 'asked' while one is coming, 'held' once due. */
  #permit: 'none' | 'asked' | 'held' = 'none';
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  /**
   * @param wake - called when an asked-for permit is due: the pool tries to start a job.
   * @param fail - called when the limiter throws or rejects: the pool fails the job that asked.
   */
  constructor(limiter: RateLimiter, wake: () => void, fail: (error: Error) => void) {
    this.#limiter = limiter;
    this.#local = limiter instanceof LocalRateLimiter ? limiter : undefined;
    this.#wake = wake;
    this.#fail = fail;
  }

  /** True while a permit is on its way: the pool is held by its rate. */
  get waiting(): boolean {
    return this.#permit === 'asked';
  }

  /**
   * Uses a permit for a start now: true if one was held or the limiter grants one at once;
   * otherwise asks for one (once) and returns false — `wake` follows when it is due. `now`: a
   * performance.now() reading the pool took for this very start, with no other code run since
   * (saves the in-process limiter a read). A staler reading must not be passed: a permit stamped
   * before its start could let more than the limit into a window.
   */
  take(now?: number): boolean {
    if (this.#permit === 'held') {
      this.#permit = 'none';
      return true;
    }
    if (this.#permit === 'asked' || this.#stopped) return false;
    this.#permit = 'asked';
    let wait: number | Promise<number>;
    try {
      wait =
        this.#local !== undefined && now !== undefined
          ? this.#local.reserveAt(now)
          : this.#limiter.reserve();
    } catch (error) {
      this.#failed(error);
      return false;
    }
    if (typeof wait === 'number' && wait <= 0) {
      this.#permit = 'none';
      return true;
    }
    Promise.resolve(wait).then(
      (ms) => this.#dueIn(ms),
      (error: unknown) => this.#failed(error),
    );
    return false;
  }

  /** A permit taken by {@link take} that no job used (it was canceled): kept for the next. */
  giveBack(): void {
    this.#permit = 'held';
  }

  /** No more permits (pool aborted): drops the pending wake-up. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #dueIn(ms: unknown): void {
    if (this.#stopped) return;
    const grant = () => {
      this.#timer = undefined;
      this.#permit = 'held';
      this.#wake();
    };
    if (typeof ms === 'number' && ms > 0)
      this.#timer = setTimeout(grant, Math.min(ms, MAX_TIMER_MS));
    else grant();
  }

  #failed(error: unknown): void {
    this.#permit = 'none';
    if (!this.#stopped) this.#fail(new Error('the rate limiter failed', { cause: error }));
  }
}

/** A timer that wakes a pool when a key's rate lets a queued job start (the earliest wins). */
export class KeyWake {
  readonly #wake: () => void;
  #timer: NodeJS.Timeout | undefined;
  #at = Number.POSITIVE_INFINITY;

  constructor(wake: () => void) {
    this.#wake = wake;
  }

  /** Wakes the pool `wait` ms after `now` (Infinity: nothing to wait for). */
  arm(now: number, wait: number): void {
    if (wait === Number.POSITIVE_INFINITY) return;
    const at = now + wait;
    if (this.#timer !== undefined && this.#at <= at) return;
    clearTimeout(this.#timer);
    this.#at = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#at = Number.POSITIVE_INFINITY;
      this.#wake();
    }, Math.ceil(wait));
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Number.POSITIVE_INFINITY;
  }
}
