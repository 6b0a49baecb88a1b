/**
 * `redisRateLimiter()`: one start rate shared by every process that names the same limiter, kept
 * in Redis by the generic cell rate algorithm (GCRA).
 *
 * @module
 */
import type { RateLimiter } from '../gates/rate-limiter.js';
import {
  argument,
  invalidArgument,
  invalidOption,
  nonEmptyString,
  optionalDuration,
  optionsObject,
  positiveInt,
} from '../internal/options.js';
import { type AnyRedisClient, evalScript } from './redis-source.js';

/** Options of {@link redisRateLimiter}. */
export interface RedisRateLimiterOptions {
  /** Starts allowed per `interval`: a positive integer. */
  limit: number;
  /** The window in ms (> 0, at most about 24.8 days); the steady pace is one start per `interval / limit` ms. */
  interval: number;
  /**
   * How many starts an idle limiter lets through at once (the bucket's size): a positive
   * integer. Any window of `interval` ms holds at most `limit + burst` starts. `1` spaces every
   * start `interval / limit` ms apart; the default leaves room for the slips of real processes (a
   * permit's reply in flight, a late timer, a busy event loop) to be made up later, so that the
   * starts achieved reach `limit` per `interval` (strict spacing measured 2% short at 500/s over 4
   * processes). @default max(1, ceil(limit / 50)) — 2% of `limit`
   */
  burst?: number;
}

/** Prefix of the Redis key holding a limiter's state: `sluice:rate:<name>`. */
export const RATE_KEY_PREFIX = 'sluice:rate:';

/**
 * GCRA in one step, on the server's clock. The state is the theoretical arrival time (TAT, in
 * µs): when the next start would be due at the steady pace. A permit is usable at
 * `TAT - tolerance` (or now, if later) and moves TAT one step on from `max(TAT, now)`.
 * A state whose TAT has passed means the same as no state at all, so the key expires at TAT
 * (`SET … PX`, in the same write): an idle limiter leaves nothing behind, and a missing key is a
 * full bucket.
 * `TIME` is read here rather than passed in, so that hosts with skewed clocks share one
 * timeline (Redis >= 5 replicates scripts by their effects, which allows it before a write).
 * The TAT keeps its fraction of a µs (`%.17g` prints a double exactly): rounding it at every
 * step would drift the pace whenever `interval / limit` is not a whole number of µs.
 * KEYS[1] = state key; ARGV = step µs, tolerance µs. Returns the wait in whole µs (rounded up).
 */
export const GCRA_RESERVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local step = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local wait = tat - tonumber(ARGV[2]) - now
if wait < 0 then wait = 0 end
tat = tat + step
redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', math.ceil((tat - now) / 1000))
return math.ceil(wait)
`;

/**
 * A {@link RateLimiter} shared through Redis: every process (on any machine) that builds one
 * with the same `name` and options draws from one limit, e.g. as the `rate` option of a pool.
 *
 * **What it guarantees.** Permits are handed out by GCRA, a token bucket written as a schedule:
 * one permit every `interval / limit` ms, and after a pause up to `burst` at once. On the Redis
 * server's clock, **any window of `interval` ms holds at most `limit + burst` permits**, both
 * ends counted (a full bucket, then one permit per `interval / limit` ms; counting `[t, t +
 * interval)` it is one fewer). Under steady demand, once the bucket is spent, such a window holds
 * `limit`, so over a long run the starts approach `limit` per `interval`. Starts as the
 * processes make them lag their permits by the reply's trip and the timer's lateness (a busy
 * event loop adds more), so starts seen on one clock can bunch: a window of them can hold one
 * more for each reserver whose late start slipped into it. When a hard external limit must
 * hold, set `limit` a little below it and `burst: 1`.
 *
 * **What it costs.** One round trip per start (`EVALSHA` of one script; `EVAL` once after a
 * Redis restart or `SCRIPT FLUSH`): each `reserve()` takes one permit and is answered with its
 * wait, not batched, so that a permit is never held by a process that does not need it.
 *
 * **How far ahead.** A permit may be reserved any distance into the future; there is no cap.
 * A pool reserves only when a job could start and one permit at a time, so the schedule runs
 * ahead by at most (pools waiting on the limiter) × `interval / limit` ms. A caller that
 * reserves in a loop without using its permits pushes every user's waits out by as much (a
 * canceled job keeps its permit too: the limiter errs on the side of fewer starts).
 *
 * **State.** One string key, `sluice:rate:<name>`, holding the next due time; it expires as
 * soon as the limiter is idle (the due time passed), so unused limiters leave nothing behind.
 * Processes that share a name must share `limit`, `interval` and `burst` (each sends its own
 * with every permit). Needs Redis >= 5 (`TIME` in a script that writes).
 *
 * @param client - a connected node-redis v5 client, as `createClient()` returns it (any RESP
 *   version); the caller keeps ownership and closes it.
 * @param name - names the limit: every limiter with this name shares it.
 * @throws TypeError/RangeError `ERR_INVALID_ARGUMENT` for a bad `client` or `name`,
 *   `ERR_INVALID_OPTION` for a bad option, at once. `reserve()` rejects with the client's error
 *   when Redis cannot be reached, which fails the job that asked.
 * @example
 * ```ts
 * const client = await createClient({ url: 'redis://10.0.0.5:6379' }).connect();
 * // 100 calls per second to the partner API, shared by every worker on every host.
 * const rate = redisRateLimiter(client, 'partner-api', { limit: 100, interval: 1000 });
 * const pool = new Pool(callPartnerApi, { concurrency: 16, rate });
 * ```
 */
export function redisRateLimiter(
  client: AnyRedisClient,
  name: string,
  options: RedisRateLimiterOptions,
): RateLimiter {
  if (typeof (client as Partial<AnyRedisClient> | null)?.sendCommand !== 'function') {
    invalidArgument('client', client, 'a connected node-redis client');
  }
  const key = RATE_KEY_PREFIX + nonEmptyString(argument('name'), name);
  const { step, tolerance } = schedule(options);
  const keys = [key];
  const args = [String(step), String(tolerance)];
  return {
    async reserve(): Promise<number> {
      return Number(await evalScript(client, GCRA_RESERVE, keys, args)) / 1000;
    },
  };
}

/** Checks the options and returns the GCRA step and tolerance, in µs. */
function schedule(value: unknown): { step: number; tolerance: number } {
  const o = optionsObject<Partial<RedisRateLimiterOptions>>('options', value);
  if (o === undefined) invalidOption('options', value, 'an object with limit and interval');
  const limit = positiveInt('limit', o.limit);
  const interval =
    optionalDuration('interval', o.interval) ??
    invalidOption('interval', o.interval, 'a positive finite number of milliseconds');
  const burst = o.burst == null ? defaultBurst(limit) : positiveInt('burst', o.burst);
  const step = (interval * 1000) / limit;
  // A bucket of `burst` lets `burst - 1` permits run ahead of the steady schedule.
  return { step, tolerance: (burst - 1) * step };
}

/** 2% of `limit`, at least 1: see {@link RedisRateLimiterOptions.burst}. */
export const defaultBurst = (limit: number): number => Math.max(1, Math.ceil(limit / 50));
