import { afterEach, describe, expect, it, vi } from 'vitest';
import { Pool } from '../src/index.js';
import { SAMPLE_PERIOD } from '../src/stats.js';

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/**
 * Fake timers including performance.now(), which the stats read: time moves only when the test
 * advances it. Returns a counter of clock readings.
 */
function fakeClock(): () => number {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
  });
  const spy = vi.spyOn(performance, 'now');
  return () => spy.mock.calls.length;
}

/** Submits `n` jobs as a service does (await each submit) and waits until all settled. */
async function submitAll<R>(pool: Pool<number, R>, from: number, n: number): Promise<void> {
  const results: Promise<unknown>[] = [];
  for (let i = from; i < from + n; i++) results.push((await pool.submit(i)).result);
  await Promise.all(results);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('Pool: stats timings', () => {
  it('times every job while its events come more than 10 µs apart', async () => {
    fakeClock();
    // Six jobs in 300 run 100 ms, the rest 1 ms: p99 sees them only if every job is timed (a
    // 1-in-16 sample would miss all six: none of their indexes is a multiple of 16).
    const slow = (i: number) => i % 50 === 7;
    const pool = new Pool<number, void>((i) => sleep(slow(i) ? 100 : 1), { concurrency: 4 });
    const done = submitAll(pool, 0, 300);
    await vi.runAllTimersAsync();
    await done;
    const s = pool.stats();
    expect(s.succeeded).toBe(300);
    expect(s.runTime).toEqual({ p50: 1, p90: 1, p99: 100 });
  });

  it('in a burst of jobs back to back, reads the clock for about one job in 16, counting all', async () => {
    const reads = fakeClock();
    const pool = new Pool<number, number>(async (x) => x, { concurrency: 16 });
    // Frozen time: every event is less than 10 µs after the last, a burst from the 64th reading.
    await submitAll(pool, 0, 10_000);
    const s = pool.stats();
    expect(s).toMatchObject({ submitted: 10_000, succeeded: 10_000, running: 0, queued: 0 });
    // Exact for the first jobs, then acceptance and settlement of one in 16.
    expect(reads()).toBeLessThan((10_000 * 2) / SAMPLE_PERIOD + 200);
    expect(s.runTime).toEqual({ p50: 0, p90: 0, p99: 0 });
  });

  it('times every job again once events come further apart than 10 µs', async () => {
    const reads = fakeClock();
    const pool = new Pool<number, void>((i) => (i < 5_000 ? Promise.resolve() : sleep(1)), {
      concurrency: 4,
    });
    await submitAll(pool, 0, 5_000); // a burst: sampled
    const before = reads();
    const done = submitAll(pool, 5_000, 200);
    await vi.runAllTimersAsync();
    await done;
    // At most the first few accepted in the same frozen instant are sampled; each of the rest is
    // read at its acceptance (or the settlement that made room) and its settlement.
    expect(reads() - before).toBeGreaterThan(180);
    expect(pool.stats().runTime).toMatchObject({ p90: 1, p99: 1 });
  });

  it('in a burst, utilization counts each timed job for the jobs it stands for', async () => {
    const reads = fakeClock();
    const pool = new Pool<number, void>(() => sleep(1), {
      concurrency: 256,
      queueSize: Number.POSITIVE_INFINITY,
    });
    // 256 jobs settle and 256 start every ms (~2 µs per event): a burst. Every slot is busy for
    // 39 ms, then 16 of them for one more.
    for (let i = 0; i < 10_000; i++) pool.trySubmit(i);
    await vi.advanceTimersByTimeAsync(100);
    await pool.onIdle();
    const s = pool.stats();
    expect(s.succeeded).toBe(10_000);
    expect(reads()).toBeLessThan((10_000 * 2) / 8);
    // The exact figure, every job read: 10,000 / (256 × 40) = 0.977.
    expect(s.utilization).toBeCloseTo(10_000 / (256 * 40), 2);
    expect(s.runTime).toEqual({ p50: 1, p90: 1, p99: 1 });
  });
});
