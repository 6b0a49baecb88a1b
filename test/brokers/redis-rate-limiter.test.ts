/**
 * redisRateLimiter() against the real Redis on loopback: option checks, the GCRA schedule it
 * hands out (checked against the server's clock, bracketed by the client's), the key expiring
 * when idle. Processes sharing one limit: redis-rate-limiter.processes.test.ts.
 */
import { performance } from 'node:perf_hooks';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisRateLimiter } from '../../src/brokers/redis/index.js';
import { defaultBurst, RATE_KEY_PREFIX } from '../../src/brokers/redis/rate-limiter.js';
import { REDIS_URL, uniqueStream } from '../fixtures/brokers/redis-helpers.js';

const newClient = () => createClient({ url: REDIS_URL });
let client: ReturnType<typeof newClient>;
const names: string[] = [];

beforeAll(async () => {
  client = await newClient().connect();
});
afterAll(async () => {
  if (names.length > 0) await client.del(names.map((n) => RATE_KEY_PREFIX + n));
  await client.quit();
});

function uniqueName(tag: string): string {
  const name = uniqueStream(`rate-${tag}`);
  names.push(name);
  return name;
}

/** Each reservation's wait, with the client's clock read just before and after it (ms). */
async function reserveTimed(reserve: () => number | Promise<number>, n: number) {
  const out: { wait: number; before: number; after: number }[] = [];
  for (let i = 0; i < n; i++) {
    const before = performance.now();
    const wait = await reserve();
    out.push({ wait, before, after: performance.now() });
  }
  return out;
}

/**
 * Checks waits against GCRA: permit k (0-based) is due at `first + (k - burst + 1) * step` on the
 * server's clock (at once while the bucket lasts), so `wait_k = due_k - now_k`. The server's
 * `now_k - now_0` is bracketed by the client's readings around calls 0 and k.
 */
function expectSchedule(
  timed: { wait: number; before: number; after: number }[],
  step: number,
  burst: number,
): void {
  const first = timed[0]!;
  timed.forEach(({ wait, before, after }, k) => {
    const due = Math.max(0, k - burst + 1) * step;
    const lo = Math.max(0, due - (after - first.before)) - 0.002; // the wait is rounded to whole µs
    const hi = Math.max(0, due - (before - first.after)) + 0.002;
    expect(wait, `permit ${k}`).toBeGreaterThanOrEqual(lo);
    expect(wait, `permit ${k}`).toBeLessThanOrEqual(hi);
  });
}

describe('redisRateLimiter', () => {
  it('refuses bad arguments and options at construction, naming them', () => {
    const opts = { limit: 10, interval: 1000 };
    const cases: [() => unknown, ErrorConstructor, RegExp, string][] = [
      [
        () => redisRateLimiter({} as never, 'n', opts),
        TypeError,
        /"client"/,
        'ERR_INVALID_ARGUMENT',
      ],
      [
        () => redisRateLimiter(null as never, 'n', opts),
        TypeError,
        /"client"/,
        'ERR_INVALID_ARGUMENT',
      ],
      [() => redisRateLimiter(client, '', opts), TypeError, /"name".*""/, 'ERR_INVALID_ARGUMENT'],
      [
        () => redisRateLimiter(client, 'n', undefined as never),
        TypeError,
        /"options"/,
        'ERR_INVALID_OPTION',
      ],
      [
        () => redisRateLimiter(client, 'n', { interval: 1000 } as never),
        TypeError,
        /"limit".*undefined/,
        'ERR_INVALID_OPTION',
      ],
      [
        () => redisRateLimiter(client, 'n', { limit: 0, interval: 1000 }),
        RangeError,
        /"limit".*0/,
        'ERR_INVALID_OPTION',
      ],
      [
        () => redisRateLimiter(client, 'n', { limit: 2.5, interval: 1000 }),
        RangeError,
        /"limit".*2\.5/,
        'ERR_INVALID_OPTION',
      ],
      [
        () => redisRateLimiter(client, 'n', { limit: 1001, interval: 1 }),
        RangeError,
        /"limit".*1000.*1001/,
        'ERR_INVALID_OPTION',
      ],
      [
        () => redisRateLimiter(client, 'n', { limit: 10 } as never),
        TypeError,
        /"interval".*undefined/,
        'ERR_INVALID_OPTION',
      ],
      [
        () => redisRateLimiter(client, 'n', { limit: 10, interval: 0 }),
        RangeError,
        /"interval".*0/,
        'ERR_INVALID_OPTION',
      ],
      [
        () => redisRateLimiter(client, 'n', { limit: 10, interval: Number.POSITIVE_INFINITY }),
        RangeError,
        /"interval".*Infinity/,
        'ERR_INVALID_OPTION',
      ],
      [
        () => redisRateLimiter(client, 'n', { limit: 10, interval: '1s' as never }),
        TypeError,
        /"interval".*1s/,
        'ERR_INVALID_OPTION',
      ],
      [
        () => redisRateLimiter(client, 'n', { ...opts, burst: 0 }),
        RangeError,
        /"burst".*0/,
        'ERR_INVALID_OPTION',
      ],
      [
        () => redisRateLimiter(client, 'n', { ...opts, burst: '2' as never }),
        TypeError,
        /"burst".*2/,
        'ERR_INVALID_OPTION',
      ],
    ];
    for (const [build, type, message, code] of cases) {
      expect(build).toThrow(type);
      expect(build).toThrow(message);
      expect(build).toThrow(expect.objectContaining({ code }));
    }
  });

  it('defaults burst to 5% of limit, at least 1', () => {
    expect([1, 20, 21, 500, 5000].map(defaultBurst)).toEqual([1, 1, 2, 25, 250]);
  });

  it('answers 0 while the bucket lasts, then waits that grow by one step per permit', async () => {
    const limiter = redisRateLimiter(client, uniqueName('grow'), {
      limit: 10,
      interval: 10_000,
      burst: 3,
    });
    const timed = await reserveTimed(() => limiter.reserve(), 6);
    const waits = timed.map((t) => t.wait);
    expect(waits.slice(0, 3)).toEqual([0, 0, 0]);
    // Then one step (1000 ms) more per permit, less the time the calls themselves took.
    for (let k = 3; k < 6; k++) {
      const elapsed = timed[k]!.after - timed[0]!.before;
      expect(waits[k]).toBeGreaterThanOrEqual((k - 2) * 1000 - elapsed - 0.002);
      expect(waits[k]).toBeLessThanOrEqual((k - 2) * 1000 + 0.002);
      expect(waits[k]).toBeGreaterThan(waits[k - 1]!);
    }
  });

  it('hands out 2 x limit permits back to back on the exact GCRA schedule', async () => {
    // A step of 1000 ms, a bucket of 3: permits 0-2 at once, then one per step.
    const a = redisRateLimiter(client, uniqueName('gcra'), {
      limit: 10,
      interval: 10_000,
      burst: 3,
    });
    expectSchedule(await reserveTimed(() => a.reserve(), 20), 1000, 3);
    // A step that is not a whole number of µs (1000 / 3 ms) does not drift: permit 30 is due
    // exactly 10 s after the first.
    const b = redisRateLimiter(client, uniqueName('gcra-frac'), {
      limit: 3,
      interval: 1000,
      burst: 1,
    });
    expectSchedule(await reserveTimed(() => b.reserve(), 31), 1000 / 3, 1);
  });

  it('shares one schedule among limiters of the same name on different connections', async () => {
    const other = await newClient().connect();
    try {
      const name = uniqueName('shared');
      const opts = { limit: 10, interval: 10_000, burst: 1 };
      const limiters = [redisRateLimiter(client, name, opts), redisRateLimiter(other, name, opts)];
      let i = 0;
      expectSchedule(await reserveTimed(() => limiters[i++ % 2]!.reserve(), 8), 1000, 1);
    } finally {
      await other.quit();
    }
  });

  it('leaves no key behind once idle: the state expires when its last permit is due', async () => {
    const name = uniqueName('expire');
    const key = RATE_KEY_PREFIX + name;
    const limiter = redisRateLimiter(client, name, { limit: 20, interval: 1000, burst: 1 });
    const timed = await reserveTimed(() => limiter.reserve(), 5);
    // The next permit is due 5 steps (250 ms) after the first: that is the key's time to live.
    const ttl = await client.pTTL(key);
    const elapsed = performance.now() - timed[0]!.before;
    expect(ttl).toBeGreaterThan(250 - elapsed - 2);
    expect(ttl).toBeLessThanOrEqual(250);
    // Redis deletes it once that time passes (polled, bounded at 5 s on a loaded machine).
    const until = Date.now() + 5000;
    while ((await client.exists(key)) === 1 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(await client.exists(key)).toBe(0);
    // And a limiter whose key is gone starts with a full bucket again.
    expect(await limiter.reserve()).toBe(0);
  });

  it('rejects reserve() with the client error when the client is closed', async () => {
    const closed = await newClient().connect();
    await closed.quit();
    const limiter = redisRateLimiter(closed, uniqueName('closed'), { limit: 1, interval: 1000 });
    await expect(limiter.reserve()).rejects.toThrow(/closed/i);
  });
});
