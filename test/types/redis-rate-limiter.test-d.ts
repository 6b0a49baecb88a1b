/**
 * Type tests, checked by `npm run typecheck:types`, never run: `redisRateLimiter` takes the
 * node-redis clients a user gets from `createClient()` as they come (any RESP version, the bare
 * `@redis/client`), and what it returns is a `RateLimiter`.
 */
import { createClient as createBareClient } from '@redis/client';
import { createClient } from 'redis';
import { expectTypeOf } from 'vitest';
import { type RedisRateLimiterOptions, redisRateLimiter } from '../../src/brokers/redis/index.js';
import type { RateLimiter } from '../../src/gates/rate-limiter.js';

export function redisRateLimiterClients(): void {
  const opts: RedisRateLimiterOptions = { limit: 100, interval: 1000 };
  expectTypeOf(redisRateLimiter(createClient(), 'api', opts)).toEqualTypeOf<RateLimiter>();
  redisRateLimiter(createClient({ RESP: 3 }), 'api', { ...opts, burst: 5 });
  redisRateLimiter(createBareClient(), 'api', opts);
  // @ts-expect-error: interval is required
  redisRateLimiter(createClient(), 'api', { limit: 100 });
  // @ts-expect-error: not a Redis client
  redisRateLimiter({}, 'api', opts);
}
