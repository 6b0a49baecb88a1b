/**
 * The rate gate of one pool: holds at most one permit at a time from its {@link RateLimiter}
 * and wakes the pool when the permit it asked for is due. Internal.
 *
 * @module
 */
import { MAX_TIMER_MS } from '../internal/options.js';
import type { RateLimiter } from './rate-limiter.js';

export class RateGate {
  readonly #limiter: RateLimiter;
  readonly #wake: () => void;
  readonly #fail: (error: Error) => void;
  /** 'none' until a start needs a permit, 'asked' while one is coming, 'held' once due. */
  #permit: 'none' | 'asked' | 'held' = 'none';
  /** performance.now() of the pass that gave a permit back; undefined for one just granted. */
  #heldAt: number | undefined = undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  /**
   * @param wake - called when an asked-for permit is due: the pool tries to start a job.
   * @param fail - called when the limiter throws or rejects: the pool fails the job that asked.
   */
  constructor(limiter: RateLimiter, wake: () => void, fail: (error: Error) => void) {
    this.#limiter = limiter;
    this.#wake = wake;
    this.#fail = fail;
  }

  /** True while a permit is on its way: the pool is held by its rate. */
  get waiting(): boolean {
    return this.#permit === 'asked';
  }

  /**
   * Uses a permit for a start at `now`: true if one was held or the limiter grants one at once;
   * otherwise asks for one (once) and returns false — `wake` follows when it is due.
   *
   * A permit is good only at the time it was reserved for: the limiter counts the start then,
   * so a start later than that could come closer than `interval` to a start the limiter lets
   * through next. A permit nobody used in its own pass is dropped, and the next start asks anew.
   */
  take(now: number): boolean {
    if (this.#permit === 'held') {
      this.#permit = 'none';
      if (this.#heldAt === undefined || this.#heldAt === now) return true;
    }
    if (this.#permit === 'asked' || this.#stopped) return false;
    this.#permit = 'asked';
    let wait: number | Promise<number>;
    try {
      wait = this.#limiter.reserve();
    } catch (error) {
      this.#failed(error);
      return false;
    }
    if (typeof wait === 'number') {
      if (wait <= 0) {
        this.#permit = 'none';
        return true;
      }
      // Armed now, not on a microtask: the wait counts from this reservation, and a timer armed
      // later (after the rest of this turn's synchronous work) would start the job that much
      // after its reserved time, closer than `interval` to the start the next reservation allows.
      this.#dueIn(wait);
      return false;
    }
    Promise.resolve(wait).then(
      (ms) => this.#dueIn(ms),
      (error: unknown) => this.#failed(error),
    );
    return false;
  }

  /** A permit taken by {@link take} at `now` that no job used (it was canceled): kept for the
   * next start in the same pass (same `now`). */
  giveBack(now: number): void {
    this.#permit = 'held';
    this.#heldAt = now;
  }

  /** No more permits (pool aborted): drops the pending wake-up. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #dueIn(ms: unknown): void {
    if (this.#stopped) return;
    const due = performance.now() + (typeof ms === 'number' && ms > 0 ? ms : 0);
    const grant = () => {
      this.#timer = undefined;
      // Node times a timer from the event loop's cached clock, which lags the reservation made
      // later in the same turn: the timer may fire before the permit's time. Wait out the rest.
      const early = due - performance.now();
      if (early > 0) {
        this.#timer = setTimeout(grant, Math.ceil(early));
        return;
      }
      this.#permit = 'held';
      this.#heldAt = undefined;
      this.#wake();
      // Not used now (the jobs it was for were canceled, the pool paused…): dropped, see take().
      if (this.#permit === 'held' && this.#heldAt === undefined) this.#permit = 'none';
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
