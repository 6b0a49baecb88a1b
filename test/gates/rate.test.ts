import { afterEach, describe, expect, it, vi } from 'vitest';
import { AbortError, Pool, type RateLimiter, rateLimiter } from '../../src/index.js';
import { deferred, flush, maxInWindow } from '../helpers.js';

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

const fakeTime = () =>
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
  });

/**
 * A paused pool (one start per second) holding a job whose signal, when aborted, first resumes
 * the pool: the pass that starts takes a permit for that job, then finds its signal aborted
 * before the pool's own listener ran.
 */
async function pausedWithJobToCancel() {
  fakeTime();
  const started: string[] = [];
  const pool = new Pool(
    (name: string) => {
      started.push(name);
      return name;
    },
    { concurrency: 1, rate: { limit: 1, interval: 1000 } },
  );
  pool.pause();
  const controller = new AbortController();
  controller.signal.addEventListener('abort', () => pool.resume());
  const canceled = await pool.submit('canceled', { signal: controller.signal });
  return { pool, started, controller, canceled };
}

describe('rate', () => {
  it('1,000 jobs at 50 per 1000 ms: no 1000 ms window holds more than 50 starts, and they take 19 s', async () => {
    fakeTime();
    const starts: number[] = [];
    const pool = new Pool(
      (n: number) => {
        starts.push(Date.now());
        return n;
      },
      { concurrency: 10, queueSize: Number.POSITIVE_INFINITY, rate: { limit: 50, interval: 1000 } },
    );
    const t0 = Date.now();
    const tasks = [];
    for (let i = 0; i < 1000; i++) tasks.push(pool.trySubmit(i));
    await vi.advanceTimersByTimeAsync(25_000);
    const results = await Promise.all(tasks.map((t) => t?.result));
    expect(results.every((r) => r?.ok)).toBe(true);
    expect(starts).toHaveLength(1000);
    expect(maxInWindow(starts, 1000)).toBe(50);
    // A burst of 50 at once, then 50 more each time the oldest leaves the window.
    expect((starts.at(-1) as number) - t0).toBe(19_000);
  });

  it('a job waiting on the rate holds no slot and shows in stats; abort cancels it', async () => {
    fakeTime();
    const pool = new Pool((n: number) => n, {
      concurrency: 4,
      rate: { limit: 1, interval: 10_000 },
    });
    const first = await pool.submit(1);
    const second = await pool.submit(2);
    await flush();
    expect(await first.result).toMatchObject({ ok: true });
    expect(pool.stats()).toMatchObject({ running: 0, queued: 1, waiting: { rate: 1 } });
    const report = await pool.abort('shutdown');
    expect(report).toMatchObject({ canceled: 1, canceledJobs: [2] });
    const result = await second.result;
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toBeInstanceOf(AbortError);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('one rateLimiter() shared by two pools limits their starts together', async () => {
    fakeTime();
    const starts: number[] = [];
    const shared = rateLimiter({ limit: 5, interval: 1000 });
    const work = (n: number) => {
      starts.push(Date.now());
      return n;
    };
    const a = new Pool(work, { concurrency: 5, queueSize: 100, rate: shared });
    const b = new Pool(work, { concurrency: 5, queueSize: 100, rate: shared });
    for (let i = 0; i < 20; i++) (i % 2 ? a : b).trySubmit(i);
    await vi.advanceTimersByTimeAsync(5000);
    await Promise.all([a.drain(), b.drain()]);
    expect(starts).toHaveLength(20);
    expect(
      maxInWindow(
        starts.sort((x, y) => x - y),
        1000,
      ),
    ).toBe(5);
  });

  it('a permit asked for in the middle of a turn counts from its reservation: the start after it keeps a full interval away', async () => {
    fakeTime();
    const starts: number[] = [];
    let failed = false;
    const pool = new Pool(
      (n: number) => {
        starts.push(performance.now());
        if (n === 0 && !failed) {
          failed = true;
          throw new Error('once');
        }
        return n;
      },
      {
        concurrency: 1,
        queueSize: 1,
        retry: { attempts: 2, backoff: () => 0 },
        rate: { limit: 1, interval: 11 },
      },
    );
    await pool.submit(0);
    // The retry comes due inside this synchronous advance and asks for its permit there.
    vi.advanceTimersByTime(1);
    await pool.submit(1);
    for (let i = 0; i < 3; i++) {
      await flush();
      vi.advanceTimersByTime(20);
    }
    await pool.drain();
    expect(starts).toHaveLength(3);
    expect(maxInWindow(starts, 11)).toBe(1);
  });

  it('a permit that came due while every key was at its limit is not spent later: the window holds when the key frees', async () => {
    fakeTime();
    const starts: number[] = [];
    const gate = deferred<void>();
    let failed = false;
    const pool = new Pool(
      async (job: { key: string; n: number }) => {
        starts.push(performance.now());
        if (job.n === 0) await gate.promise;
        else if (!failed) {
          failed = true;
          throw new Error('once');
        }
        return job.n;
      },
      {
        concurrency: 2,
        queueSize: 0,
        key: (job) => job.key,
        perKey: { concurrency: 1 },
        rate: { limit: 1, interval: 5 },
        retry: { attempts: 2, backoff: () => 0 },
      },
    );
    await pool.submit({ key: 'a', n: 0 });
    await pool.submit({ key: 'a', n: 1 }); // held by its key; its permit comes due meanwhile
    await vi.advanceTimersByTimeAsync(20);
    gate.resolve();
    await vi.advanceTimersByTimeAsync(20);
    await pool.drain();
    expect(starts).toHaveLength(3);
    expect(maxInWindow(starts, 5)).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a permit timer that fires before the clock reaches the permit (Node times it from the loop's cached clock) waits out the rest", async () => {
    fakeTime();
    const starts: number[] = [];
    const pool = new Pool(
      (n: number) => {
        starts.push(performance.now());
        return n;
      },
      { concurrency: 2, rate: { limit: 1, interval: 100 } },
    );
    await pool.submit(0);
    await pool.submit(1); // its permit is due 100 ms after the first start
    // From here the clock the pool reads lags the timers by 30 ms, as the reservation did in
    // Node when made late in a turn whose cached loop time the timer was armed from.
    const now = performance.now.bind(performance);
    vi.spyOn(performance, 'now').mockImplementation(() => now() - 30);
    await vi.advanceTimersByTimeAsync(200);
    await pool.drain();
    expect(starts).toHaveLength(2);
    expect((starts[1] as number) - (starts[0] as number)).toBeGreaterThanOrEqual(100);
  });

  it('an async RateLimiter is asked once per start, and its failure fails only the job that asked', async () => {
    let asked = 0;
    const limiter: RateLimiter = {
      reserve: async () => {
        asked++;
        if (asked === 2) throw new Error('limiter down');
        return 0;
      },
    };
    const pool = new Pool((n: number) => n, { concurrency: 1, rate: limiter });
    const tasks = [await pool.submit(1), await pool.submit(2)];
    const third = await pool.submit(3);
    const results = await Promise.all([...tasks, third].map((t) => t.result));
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    const failed = results[1];
    if (failed && !failed.ok) expect((failed.error.cause as Error).message).toBe('limiter down');
    expect(asked).toBe(3);
  });

  it("a RateLimiter's promise whose constructor cannot be read fails only the job that asked", async () => {
    let asked = 0;
    const limiter: RateLimiter = {
      reserve() {
        asked++;
        if (asked !== 2) return 0;
        const hostile = Promise.resolve(0);
        Object.defineProperty(hostile, 'constructor', {
          get() {
            throw new Error('no constructor');
          },
        });
        return hostile;
      },
    };
    const pool = new Pool((n: number) => n, { concurrency: 1, rate: limiter });
    const tasks = [await pool.submit(1), await pool.submit(2), await pool.submit(3)];
    const results = await Promise.all(tasks.map((t) => t.result));
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    const failed = results[1];
    if (failed && !failed.ok) {
      expect(failed.error).toMatchObject({ code: 'ERR_RATE_LIMITER' });
      expect((failed.error.cause as Error).message).toBe('no constructor');
    }
  });

  it("a RateLimiter's native promise is adopted with the built-in then, as await does (its own then property is never called)", async () => {
    let ownThenCalls = 0;
    const limiter: RateLimiter = {
      reserve: () => {
        const p = Promise.resolve(0);
        // biome-ignore lint/suspicious/noThenProperty: a native promise's own then, never called.
        (p as { then: unknown }).then = () => {
          ownThenCalls++;
        };
        return p;
      },
    };
    const pool = new Pool((n: number) => n, { concurrency: 1, rate: limiter });
    const tasks = [await pool.submit(1), await pool.submit(2)];
    const results = await Promise.all(tasks.map((t) => t.result));
    expect(results.map((r) => r.ok)).toEqual([true, true]);
    expect(ownThenCalls).toBe(0);
  });

  it('a permit taken for a job canceled in the same pass goes to the next job of that pass, not to waste', async () => {
    const { pool, started, controller, canceled } = await pausedWithJobToCancel();
    const next = await pool.submit('next');
    controller.abort();
    await flush(); // no timer advanced: a start that waited for the rate would not be here yet
    // The one start the window allows is the next job's, at once, not a second later.
    expect(started).toEqual(['next']);
    expect(await next.result).toMatchObject({ ok: true, value: 'next' });
    const result = await canceled.result;
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toBeInstanceOf(AbortError);
    await pool.close();
  });

  it('a permit taken for a job canceled before it started is given back to the window: a job submitted later starts at once', async () => {
    const { pool, started, controller, canceled } = await pausedWithJobToCancel();
    controller.abort();
    await flush();
    vi.advanceTimersByTime(1); // another pass, at another time
    const next = await pool.submit('next');
    await flush(); // no timer advanced: a start that waited for the rate would not be here yet
    expect(started).toEqual(['next']);
    expect(await next.result).toMatchObject({ ok: true, value: 'next' });
    expect((await canceled.result).ok).toBe(false);
    await pool.close();
  });

  it('a never-limiting rate reads the clock once per limit / 1024 starts, not per start', async () => {
    // Fake time: the stats time a sample of jobs once readings come fast, so on a real clock the
    // reads depend on the machine's speed; a clock that stands still makes both runs alike.
    fakeTime();
    const reads = async (rate?: { limit: number; interval: number }) => {
      const spy = vi.spyOn(performance, 'now');
      const pool = new Pool((n: number) => n, { concurrency: 4, rate });
      const tasks = [];
      for (let i = 0; i < 10_000; i++) tasks.push((await pool.submit(i)).result);
      await Promise.all(tasks);
      await pool.close();
      const count = spy.mock.calls.length;
      spy.mockRestore();
      return count;
    };
    const without = await reads();
    const withRate = await reads({ limit: 10_240_000, interval: 1000 });
    expect(withRate - without).toBeLessThanOrEqual(10);
  });

  it('bad rate options are refused at construction with the option name', () => {
    expect(() => new Pool(() => 1, { concurrency: 1, rate: { limit: 0, interval: 1000 } })).toThrow(
      /rate\.limit.*got 0/,
    );
    expect(() => new Pool(() => 1, { concurrency: 1, rate: { limit: 5, interval: -1 } })).toThrow(
      /rate\.interval/,
    );
    expect(() => new Pool(() => 1, { concurrency: 1, rate: 5 as never })).toThrow(/"rate"/);
  });
});
