/**
 * `redisRateLimiter()`: one start rate shared by every process that names the same limiter, kept
 * in Redis by the generic cell rate algorithm (GCRA).
 *
 * @module
 */
import type { RateLimiter } from '../../gates/rate-limiter.js';
import {
  argument,
  brokerName,
  invalidArgument,
  invalidOption,
  optionalDuration,
  optionsObject,
  positiveInt,
} from '../../internal/options.js';
import { type AnyRedisClient, evalScript } from './source.js';

/** Options of {@link redisRateLimiter}. */
export interface RedisRateLimiterOptions {
  /** Starts allowed per `interval`: a positive integer, at most one per µs (`interval x 1000`). */
  limit: number;
  /** The window in ms (> 0, at most about 24.8 days); the steady pace is one start per `interval / limit` ms. */
  interval: number;
  /**
   * How many starts an idle limiter lets through at once (the bucket's size): a positive
   * integer. Any window of `interval` ms holds at most `limit + burst` permits on the server's
   * clock (starts as made can bunch a little more: see {@link redisRateLimiter}). `1` spaces every
   * start `interval / limit` ms apart, and then any stall (a reply in flight, a late timer, a
   * busy event loop, Redis itself waiting for a CPU) while no process was asking for a permit
   * loses those starts for good. The bucket is what makes them up later: the default absorbs
   * stalls of about `interval / 20` (50 ms at 1 s; longer ones still cost starts), so that the
   * starts achieved reach `limit` per `interval` (4 processes at 500/s on a busy 2-core machine:
   * a bucket of 1 fell 2% short, the default stayed within 0.5% until whole-machine stalls passed
   * 50 ms). @default max(1, ceil(limit / 20)), 5% of `limit`
   */
  burst?: number;
}

/** Prefix of the Redis key holding a limiter's state: `sluice:rate:<name>`. */
export const RATE_KEY_PREFIX = 'sluice:rate:';

/**
 * GCRA in one step, on the server's clock. The state is the theoretical arrival time (TAT): when
 * the next permit would be due at the steady pace. A permit is usable at `TAT - tolerance` (or
 * now, if later) and moves TAT one step on from `max(TAT, now)`. A TAT that has passed means
 * the same as no state at all, so the key expires at TAT (`SET … PX`, in the same write): an
 * idle limiter leaves nothing behind, and a missing key is a full bucket.
 * The TAT is counted in steps, not µs: adding one step is then exact, where `TAT + step` in µs
 * (~1.7e15, a double's resolution there is 0.25 µs) would round at every permit and drift the
 * pace whenever `interval / limit` is not a whole number of µs. `%.17g` stores it exactly.
 * `TIME` is read here rather than passed in, so that hosts with skewed clocks share one
 * timeline (Redis >= 5 replicates scripts by their effects, which allows it before a write).
 * KEYS[1] = state key; ARGV = step µs, tolerance in steps. Returns the wait in whole µs
 * (rounded to the nearest: the product `tat * step` is only exact to 0.25 µs).
 */
export const GCRA_RESERVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local step = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local wait = 0
if tat * step > now then
  wait = math.floor((tat - tonumber(ARGV[2])) * step - now + 0.5)
  if wait < 0 then wait = 0 end
else
  tat = now / step
end
tat = tat + 1
local ttl = math.ceil((tat * step - now) / 1000)
if ttl < 1 then ttl = 1 end
redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', ttl)
return wait
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
 * about `limit`, so over a long run the starts approach `limit` per `interval`.
 *
 * **Starts as made.** A process starts its job when its wait ends, a little after its permit is
 * due (the reply's trip, the timer's lateness, a busy event loop): starts seen on one clock can
 * bunch. Each caller holding a permit can have one that fell due before a window and started
 * inside it, so **a window of `interval` ms of starts holds at most `limit + burst + n`**, `n`
 * being the callers that hold a permit at once — one per pool, which reserves one permit at a
 * time (on hosts whose clocks agree). When a hard external limit must hold, set `limit` below
 * it by that margin, and `burst: 1`.
 *
 * **What it costs.** One round trip per start (`EVALSHA` of one script; `EVAL` once after a
 * Redis restart or `SCRIPT FLUSH`): each `reserve()` takes one permit and is answered with its
 * wait, not batched, so that a permit is never held by a process that does not need it.
 *
 * **How far ahead.** A permit may be reserved any distance into the future; there is no cap.
 * A pool reserves only when a job could start and one permit at a time, so the schedule runs
 * ahead by about (pools waiting on the limiter) × `interval / limit` ms at most. A caller that
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
 *   when its command fails, which fails the job that asked. During an outage the command
 *   waits as the client's settings say: node-redis's defaults (offline queue, reconnecting
 *   for ever) hold it, and the job with it, until Redis is back (abort or a drain deadline
 *   still settle the job); a client made with `disableOfflineQueue: true` rejects at once.
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
  const key = RATE_KEY_PREFIX + brokerName(argument('name'), name);
  const { step, tolerance } = schedule(options);
  const keys = [key];
  const args = [String(step), String(tolerance)];
  return {
    async reserve(): Promise<number> {
      return Number(await evalScript(client, GCRA_RESERVE, keys, args)) / 1000;
    },
  };
}

/** Checks the options and returns the GCRA step (µs) and tolerance (steps). */
function schedule(value: unknown): { step: number; tolerance: number } {
  const o = optionsObject<Partial<RedisRateLimiterOptions>>('options', value);
  if (o === undefined) invalidOption('options', value, 'an object with limit and interval');
  const limit = positiveInt('limit', o.limit);
  const interval =
    optionalDuration('interval', o.interval) ??
    invalidOption('interval', o.interval, 'a positive finite number of milliseconds');
  const burst = o.burst == null ? defaultBurst(limit) : positiveInt('burst', o.burst);
  // A step under 1 µs would leave the TAT, counted in steps, past 2^53 where adding one is lost.
  if (limit > interval * 1000) {
    invalidOption(
      'limit',
      limit,
      `a positive integer <= interval x 1000 (${interval * 1000})`,
      true,
    );
  }
  // A bucket of `burst` lets `burst - 1` permits run ahead of the steady schedule.
  return { step: (interval * 1000) / limit, tolerance: burst - 1 };
}

/** 5% of `limit`, at least 1: see {@link RedisRateLimiterOptions.burst}. */
export const defaultBurst = (limit: number): number => Math.max(1, Math.ceil(limit / 20));
