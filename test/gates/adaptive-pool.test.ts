import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AdaptiveConcurrency, adaptive, Pool, pipeline, runPool } from '../../src/index.js';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

/**
 * The simulated downstream as a worker: capacity `c()` requests at 10 ms; with n > c running a
 * request takes 10 x n / c ms; above 2c it is refused at once (a 503 after 1 ms).
 */
function downstream(c: () => number) {
  let running = 0;
  return async (): Promise<void> => {
    const n = ++running;
    const cap = c();
    try {
      if (n > 2 * cap) {
        await new Promise((r) => setTimeout(r, 1));
        throw Object.assign(new Error('Service Unavailable'), { status: 503 });
      }
      await new Promise((r) => setTimeout(r, n <= cap ? 10 : (10 * n) / cap));
    } finally {
      running--;
    }
  };
}

describe('Pool with adaptive concurrency', () => {
  it('converges to the downstream capacity and follows it down and up', async () => {
    let capacity = 100;
    const limit = adaptive({ min: 1, max: 1000 });
    const pool = new Pool(
      downstream(() => capacity),
      { concurrency: limit, queueSize: Infinity },
    );
    for (let i = 0; i < 150_000; i++) pool.trySubmit(undefined);
    // Each phase: 3 s of virtual time (~300 round trips), then every reading over 1 s more
    // must lie within ±20% of the capacity.
    const phase = async (c: number) => {
      capacity = c;
      await vi.advanceTimersByTimeAsync(3_000);
      for (let t = 0; t < 10; t++) {
        await vi.advanceTimersByTimeAsync(100);
        const l = pool.stats().concurrency;
        expect(l, `limit ${l} for capacity ${c}`).toBeGreaterThanOrEqual(0.8 * c);
        expect(l, `limit ${l} for capacity ${c}`).toBeLessThanOrEqual(1.2 * c);
      }
    };
    await phase(100);
    await phase(50);
    await phase(100);
    const stats = pool.stats();
    expect(stats.limit?.current).toBe(stats.concurrency);
    expect(stats.limit?.history.length).toBe(50);
    expect(stats.limit?.history.some((h) => h.reason === 'latency' || h.reason === 'drop')).toBe(
      true,
    );
    await pool.abort();
  });

  it('keeps its limit when every job fails fast for a reason that is not overload', async () => {
    const limit = adaptive({ min: 1, max: 100, initial: 30 });
    const pool = new Pool(
      async () => {
        throw new TypeError('bad input');
      },
      { concurrency: limit, queueSize: Infinity },
    );
    const results = [];
    for (let i = 0; i < 1000; i++) results.push(pool.trySubmit(i)?.result);
    await Promise.all(results);
    expect(pool.stats().failed).toBe(1000);
    expect(pool.stats().concurrency).toBe(30);
    expect(pool.stats().limit?.history).toEqual([]);
  });

  it('shrinks on overload failures and never leaves [min, max]', async () => {
    const limit = adaptive({ min: 4, max: 64, initial: 64 });
    const seen = new Set<number>();
    const pool = new Pool(
      async () => {
        seen.add(pool.stats().concurrency);
        await new Promise((r) => setTimeout(r, 5));
        throw Object.assign(new Error('Too Many Requests'), { statusCode: 429 });
      },
      { concurrency: limit, queueSize: Infinity },
    );
    for (let i = 0; i < 2000; i++) pool.trySubmit(i);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(pool.stats().concurrency).toBe(4);
    for (const l of seen) expect(l >= 4 && l <= 64).toBe(true);
    await pool.abort();
  });

  it('resize() moves the adaptive limit within its range and refuses outside it', async () => {
    const pool = new Pool(async () => {}, { concurrency: adaptive({ min: 2, max: 10 }) });
    pool.resize(7);
    expect(pool.stats().limit?.current).toBe(7);
    expect(pool.stats().limit?.history.at(-1)?.reason).toBe('manual');
    expect(() => pool.resize(11)).toThrow(/concurrency/);
    // The same code as any misused argument (resize(0) included), not an option's.
    for (const n of [11, 1, 0]) {
      expect(() => pool.resize(n)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
      );
    }
    await pool.abort();
  });

  it('refuses invalid options at construction, naming the option', () => {
    const shared = adaptive({ min: 1, max: 4 });
    new Pool(async () => {}, { concurrency: shared });
    expect(() => new Pool(async () => {}, { concurrency: shared })).toThrow(/"concurrency"/);
    expect(() => new Pool(async () => {}, { concurrency: adaptive({ min: 3, max: 2 }) })).toThrow(
      /"adaptive\.max"/,
    );
    expect(() => new Pool(async () => {}, { concurrency: 'auto' as never })).toThrow(
      /"concurrency"/,
    );
    expect(shared).toBeInstanceOf(AdaptiveConcurrency);
  });
});

describe('runPool with adaptive concurrency', () => {
  it('converges to the downstream capacity and follows it halving', async () => {
    let capacity = 100;
    const limit = adaptive({ min: 1, max: 1000 });
    const jobs = Array.from({ length: 150_000 }, (_, i) => i);
    const results = runPool(
      jobs,
      downstream(() => capacity),
      { concurrency: limit },
    );
    const readings: number[] = [];
    const consume = (async () => {
      for await (const _ of results) {
        // results are only drained
      }
    })();
    const phase = async (c: number) => {
      capacity = c;
      await vi.advanceTimersByTimeAsync(3_000);
      for (let t = 0; t < 10; t++) {
        await vi.advanceTimersByTimeAsync(100);
        readings.push(limit.limit);
        expect(limit.limit, `limit for capacity ${c}`).toBeGreaterThanOrEqual(0.8 * c);
        expect(limit.limit, `limit for capacity ${c}`).toBeLessThanOrEqual(1.2 * c);
      }
    };
    await phase(100);
    await phase(50);
    await results.return?.();
    await vi.runAllTimersAsync();
    await consume;
    expect(readings.length).toBe(20);
  });
});

describe('pipeline stage with adaptive concurrency', () => {
  it('converges to the downstream capacity and reports the limit in stats()', async () => {
    const capacity = 100;
    const limit = adaptive({ min: 1, max: 1000 });
    const jobs = Array.from({ length: 60_000 }, (_, i) => i);
    const p = pipeline(jobs).stage(
      'call',
      downstream(() => capacity),
      { concurrency: limit },
    );
    const results = p[Symbol.asyncIterator]();
    const consume = (async () => {
      for (let r = await results.next(); !r.done; r = await results.next()) {
        // drained
      }
    })();
    await vi.advanceTimersByTimeAsync(3_000);
    for (let t = 0; t < 10; t++) {
      await vi.advanceTimersByTimeAsync(100);
      const l = p.stats()[0]?.concurrency ?? 0;
      expect(l).toBe(limit.limit);
      expect(l).toBeGreaterThanOrEqual(0.8 * capacity);
      expect(l).toBeLessThanOrEqual(1.2 * capacity);
    }
    await results.return?.();
    await vi.runAllTimersAsync();
    await consume;
  });
});
