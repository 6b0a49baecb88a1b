/**
 * The rate gate's seam: anything that hands out start permits.
 *
 * @module
 */

/**
 * A source of job-start permits. The `rate` option of every pool kind takes one (or
 * `{ limit, interval }`, which builds the in-process sliding-window limiter); `sluice/redis` ships
 * `redisRateLimiter()` so that processes on many machines share one limit.
 *
 * A permit is a **reservation**: `reserve()` takes one permit now and answers how long the caller
 * must wait before using it. A pool asks for one permit at a time, only when a job could start
 * (a free slot and a queued job), so a limiter never sees more outstanding reservations than the
 * pools using it. A job canceled while it waits does not give its permit back: a limiter errs on
 * the side of fewer starts, never more.
 *
 * @example
 * ```ts
 * // A limiter that lets one job start every 100 ms, whatever the pools using it.
 * let next = 0;
 * const everyTenth: RateLimiter = {
 *   reserve() {
 *     const now = Date.now();
 *     const at = Math.max(now, next);
 *     next = at + 100;
 *     return at - now;
 *   },
 * };
 * const pool = new Pool(fetchPage, { concurrency: 8, rate: everyTenth });
 * ```
 */
export interface RateLimiter {
  /**
   * Reserves one start permit.
   *
   * @returns the wait in ms before the permit may be used (0 = start now), or a promise of it
   *   (a shared limiter answers after a round trip). A rejected promise or a throw fails the job
   *   that asked, with that error as its cause; the pool carries on.
   */
  reserve(): number | Promise<number>;
}
