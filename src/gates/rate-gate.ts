/**
 * The rate gate of one pool: holds at most one permit at a time from its {@link RateLimiter}
 * and wakes the pool when the permit it asked for is due. Internal.
 *
 * @module
 */
import { RateLimiterError } from '../errors.js';
import { promiseThen } from '../internal/job-run.js';
import { MAX_TIMER_MS } from '../internal/options.js';
import type { RateLimiter } from './rate-limiter.js';
import { LocalRateLimiter } from './sliding-window.js';

export class RateGate {
  readonly #limiter: RateLimiter;
  readonly #wake: () => void;
  readonly #fail: (error: Error) => void;
  readonly #onWait: ((waitMs: number | undefined) => void) | undefined;
  /** 'none' until a start needs a permit, 'asked' while one is coming, 'held' once due. */
  #permit: 'none' | 'asked' | 'held' = 'none';
  /** The pass that gave a permit back (see {@link take}); undefined for one just granted. */
  #heldIn: number | undefined = undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  /**
   * @param wake - called when an asked-for permit is due: the pool tries to start a job.
   * @param fail - called when the limiter throws or rejects: the pool fails the job that asked.
   * @param onWait - called as a wait begins, with its ms (undefined while an async limiter
   *   answers); the pool publishes it (`sluice:job:rate-limited`).
   */
  constructor(
    limiter: RateLimiter,
    wake: () => void,
    fail: (error: Error) => void,
    onWait?: (waitMs: number | undefined) => void,
  ) {
    this.#limiter = limiter;
    this.#wake = wake;
    this.#fail = fail;
    this.#onWait = onWait;
  }

  /** True while a permit is on its way: the pool is held by its rate. */
  get waiting(): boolean {
    return this.#permit === 'asked';
  }

  /**
   * Uses a permit for a start now: true if one was held or the limiter grants one at once;
   * otherwise asks for one (once) and returns false — `wake` follows when it is due.
   *
   * A permit is good only at the time it was reserved for: the limiter counts the start then,
   * so a start later than that could come closer than `interval` to a start the limiter lets
   * through next. A permit nobody used in its own pass is dropped, and the next start asks anew.
   * `pass` names the caller's pass (any number, the same for every start of one pass); it
   * matters only after {@link giveBack}.
   *
   * `reading`: a clock reading taken for this very start with no user code run since, which
   * the in-process limiter records the start at instead of reading the clock itself (never
   * before the start: the start follows at once).
   */
  take(pass?: number, reading?: number): boolean {
    if (this.#permit === 'held') {
      this.#permit = 'none';
      if (this.#heldIn === undefined || this.#heldIn === pass) return true;
    }
    if (this.#permit === 'asked' || this.#stopped) return false;
    if (this.#limiter instanceof LocalRateLimiter) {
      const limiter = this.#limiter;
      return this.#tryLocal(reading === undefined ? limiter.try() : limiter.tryAt(reading));
    }
    this.#permit = 'asked';
    let wait: number | Promise<number>;
    try {
      wait = this.#limiter.reserve();
    } catch (error) {
      // Failed on a microtask, not from inside the pool's pump: a limiter that always throws
      // would otherwise fail a whole queue by recursion.
      queueMicrotask(() => this.#failed(error));
      return false;
    }
    if (typeof wait === 'number') {
      if (!(wait >= 0)) {
        const bad = badWait(wait);
        queueMicrotask(() => this.#failed(bad));
        return false;
      }
      if (wait === 0) {
        this.#permit = 'none';
        return true;
      }
      // Armed now, not on a microtask: the wait counts from this reservation, and a timer armed
      // later (after the rest of this turn's synchronous work) would start the job that much
      // after its reserved time, closer than `interval` to the start the next reservation allows.
      const due = performance.now() + Math.min(wait, MAX_TIMER_MS);
      // Due already (a wait of a fraction of a µs): granted now. Granted through `wake`, it would
      // reach a pool that has not parked the job yet, and be dropped with no wake-up to come.
      if (due <= performance.now()) {
        this.#permit = 'none';
        return true;
      }
      this.#onWait?.(wait);
      if (!this.#stopped) this.#armFor(due);
      return false;
    }
    this.#onWait?.(undefined);
    let answer: Promise<number>;
    try {
      // Reads the promise's `constructor` (user code on a hostile promise): a throw fails the job.
      answer = Promise.resolve(wait);
    } catch (error) {
      queueMicrotask(() => this.#failed(error));
      return false;
    }
    // The built-in `then`, as `await` would: a native promise's own `then` property is not called.
    promiseThen.call(
      answer,
      (ms) => this.#dueIn(ms),
      (error: unknown) => this.#failed(error),
    );
    return false;
  }

  /**
   * A permit taken by {@link take} in `pass` that no job used (it was canceled), given back
   * before anything else asks: the in-process limiter takes the start back; a permit of
   * another limiter cannot be returned, so it is kept for the next start in the same pass.
   */
  giveBack(pass: number): void {
    if (this.#limiter instanceof LocalRateLimiter) {
      this.#limiter.giveBack();
      return;
    }
    this.#permit = 'held';
    this.#heldIn = pass;
  }

  /** No more permits (pool aborted): drops the pending wake-up. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * The in-process limiter is asked, not reserved from: a start is recorded when it happens, and
   * a pool whose turn is not yet due asks again when it is (see `LocalRateLimiter.tryAt`).
   * `wait`: its answer.
   */
  #tryLocal(wait: number): boolean {
    if (wait <= 0) return true;
    this.#permit = 'asked';
    this.#onWait?.(wait);
    // Its subscriber (user code) may have stopped the pool: no wake-up then, and no timer left.
    if (this.#stopped) return false;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#permit = 'none';
        this.#wake();
      },
      Math.min(Math.ceil(wait), MAX_TIMER_MS),
    );
    return false;
  }

  #dueIn(ms: unknown): void {
    if (this.#stopped) return;
    if (typeof ms !== 'number' || !(ms >= 0)) {
      this.#failed(badWait(ms));
      return;
    }
    const wait = Math.min(ms, MAX_TIMER_MS);
    this.#grantAt(performance.now() + wait);
  }

  /**
   * Holds the permit from `due` on. A Node timer may fire up to ~1 ms early (it rounds to whole
   * ms): granting then would start a job before its permit and put one start too many in a
   * window, so the clock is checked and the rest waited out.
   */
  #grantAt(due: number): void {
    if (due > performance.now()) {
      this.#armFor(due);
      return;
    }
    this.#timer = undefined;
    this.#permit = 'held';
    this.#heldIn = undefined;
    this.#wake();
    // Not used now (the jobs it was for were canceled, the pool paused…): dropped, see take().
    if (this.#permit === 'held' && this.#heldIn === undefined) this.#permit = 'none';
  }

  /** Calls {@link #grantAt} once `due` may have come (never synchronously: see {@link take}). */
  #armFor(due: number): void {
    this.#timer = setTimeout(
      () => this.#grantAt(due),
      Math.max(1, Math.ceil(due - performance.now())),
    );
  }

  #failed(error: unknown): void {
    this.#permit = 'none';
    if (!this.#stopped) this.#fail(new RateLimiterError(error));
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

  /**
   * Wakes the pool `wait` ms after `now` (Infinity: nothing to wait for). True when this starts
   * a wait (no earlier wake-up was armed), for the pool's `sluice:job:rate-limited` event.
   */
  arm(now: number, wait: number): boolean {
    if (wait === Number.POSITIVE_INFINITY) return false;
    const at = now + wait;
    if (this.#timer !== undefined && this.#at <= at) return false;
    const fresh = this.#timer === undefined;
    clearTimeout(this.#timer);
    this.#at = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#at = Number.POSITIVE_INFINITY;
      this.#wake();
    }, Math.ceil(wait));
    return fresh;
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Number.POSITIVE_INFINITY;
  }
}

/** A limiter's answer that is not a wait: the job that asked fails with this. */
function badWait(value: unknown): RangeError {
  return new RangeError(
    `RateLimiter.reserve() answered ${typeof value === 'number' ? value : typeof value}: expected a number of ms >= 0`,
  );
}
