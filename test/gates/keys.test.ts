import { afterEach, describe, expect, it, vi } from 'vitest';
import { Pool, runPool } from '../../src/index.js';
import { deferred, flush, maxInWindow } from '../helpers.js';

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/**
 * Fake timers, with a clock that synchronous work moves without firing a timer: `work(ms)`.
 */
function fakeTimeWithWork(): (ms: number) => void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  const timersNow = performance.now.bind(performance);
  let worked = 0;
  vi.spyOn(performance, 'now').mockImplementation(() => timersNow() + worked);
  return (ms) => {
    worked += ms;
  };
}

interface Job {
  key: string;
  n: number;
}

describe('key and perKey', () => {
  it('round-robin: two small keys behind a hot key of 1,000 start within a bounded number of starts, one at a time per key', async () => {
    const started: string[] = [];
    const running = new Map<string, number>();
    let overlap = false;
    const pool = new Pool(
      async (job: Job) => {
        started.push(job.key);
        const now = (running.get(job.key) ?? 0) + 1;
        if (now > 1) overlap = true;
        running.set(job.key, now);
        await flush();
        running.set(job.key, (running.get(job.key) ?? 1) - 1);
        return job.n;
      },
      {
        concurrency: 3,
        queueSize: Number.POSITIVE_INFINITY,
        key: (job) => job.key,
        perKey: { concurrency: 1 },
      },
    );
    for (let n = 0; n < 1000; n++) pool.trySubmit({ key: 'hot', n });
    for (let n = 0; n < 10; n++) pool.trySubmit({ key: 'a', n });
    for (let n = 0; n < 10; n++) pool.trySubmit({ key: 'b', n });
    await pool.drain();
    expect(overlap).toBe(false);
    expect(started).toHaveLength(1020);
    // Turns alternate among keys with work: the 10th job of a and b start among the first 31.
    const lastSmall = Math.max(started.lastIndexOf('a'), started.lastIndexOf('b'));
    expect(lastSmall).toBeLessThan(31);
  });

  it('100,000 distinct keys leave no per-key state once they drain', async () => {
    const pool = new Pool((n: number) => n, {
      concurrency: 8,
      queueSize: 1000,
      key: (n) => `tenant-${n}`,
      perKey: { concurrency: 1 },
    });
    let peakKeys = 0;
    for (let n = 0; n < 100_000; n++) {
      await pool.submit(n);
      if (n % 1000 === 0) peakKeys = Math.max(peakKeys, pool.stats().keys);
    }
    await pool.onIdle();
    expect(peakKeys).toBeLessThanOrEqual(1008);
    expect(pool.stats()).toMatchObject({ keys: 0, succeeded: 100_000 });
  });

  it('a per-key rate spaces the starts of one key and not the others', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    const starts: { key: string; at: number }[] = [];
    const pool = new Pool(
      (job: Job) => {
        starts.push({ key: job.key, at: Date.now() });
        return job.n;
      },
      {
        concurrency: 4,
        queueSize: 100,
        key: (job) => job.key,
        perKey: { concurrency: 4, rate: { limit: 2, interval: 1000 } },
      },
    );
    for (let n = 0; n < 6; n++) pool.trySubmit({ key: 'x', n });
    pool.trySubmit({ key: 'y', n: 0 });
    await vi.advanceTimersByTimeAsync(3000);
    await pool.drain();
    const x = starts.filter((s) => s.key === 'x').map((s) => s.at);
    expect(x).toEqual([0, 0, 1000, 1000, 2000, 2000].map((d) => (x[0] as number) + d));
    expect(starts.find((s) => s.key === 'y')?.at).toBe(x[0]);
    expect(pool.stats().keys).toBeLessThanOrEqual(1); // x lingers only until its window empties
    await vi.advanceTimersByTimeAsync(1000);
    pool.stats();
  });

  it('a key lingering in its rate window is forgotten once the window passes, with nothing else happening', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    const pool = new Pool((job: Job) => job.n, {
      concurrency: 1,
      key: (job) => job.key,
      perKey: { rate: { limit: 1, interval: 5 } },
    });
    await (await pool.submit({ key: 'a', n: 0 })).result;
    expect(pool.stats().keys).toBe(1);
    vi.advanceTimersByTime(5);
    expect(pool.stats().keys).toBe(0);
  });

  it('a key whose last queued job is canceled while it waits on the rate leaves no state once the pool is idle', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    const pool = new Pool((job: Job) => job.n, {
      concurrency: 1,
      queueSize: 1,
      key: (job) => job.key,
      perKey: { concurrency: 1 },
      rate: { limit: 1, interval: 5 },
    });
    await (await pool.submit({ key: 'a', n: 0 })).result;
    const ac = new AbortController();
    const second = await pool.submit({ key: 'a', n: 1 }, { signal: ac.signal });
    ac.abort();
    expect((await second.result).ok).toBe(false);
    await vi.advanceTimersByTimeAsync(10);
    await pool.drain();
    expect(pool.stats()).toMatchObject({ queued: 0, keys: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('jobs held by their key show in stats; a throwing key function fails only that job', async () => {
    const gate = deferred<void>();
    const pool = new Pool(async (job: Job) => gate.promise.then(() => job.n), {
      concurrency: 4,
      key: (job) => {
        if (job.key === 'bad') throw new Error('no key');
        return job.key;
      },
      perKey: { concurrency: 1 },
    });
    await pool.submit({ key: 'a', n: 1 });
    await pool.submit({ key: 'a', n: 2 });
    const bad = await pool.submit({ key: 'bad', n: 3 });
    await flush();
    expect(pool.stats()).toMatchObject({ running: 1, queued: 1, waiting: { key: 1 }, keys: 1 });
    const result = await bad.result;
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.message).toBe('no key');
    gate.resolve();
    await pool.drain();
    expect(pool.stats()).toMatchObject({ succeeded: 2, failed: 1, keys: 0 });
  });

  it('a job whose key function threw holds onIdle() and drain() until it settled', async () => {
    const pool = new Pool((n: number) => n, {
      concurrency: 1,
      key: () => {
        throw new Error('no key');
      },
    });
    const task = pool.trySubmit(1);
    let settled = false;
    void task?.result.then(() => {
      settled = true;
    });
    // Read on the first turn each can run: the job's failure must be known by then.
    const idle = pool.onIdle().then(() => ({ settled, failed: pool.stats().failed }));
    const drained = pool.drain().then((report) => ({ settled, report }));
    expect(await idle).toEqual({ settled: true, failed: 1 });
    expect(await drained).toMatchObject({ settled: true, report: { completed: 1, canceled: 0 } });
  });

  it('a key function that returns a non-string fails only that job, with ERR_INVALID_RETURN_VALUE', async () => {
    const pool = new Pool(async (job: Job) => job.n, {
      concurrency: 2,
      key: (job) => (job.key === 'num' ? (7 as unknown as string) : job.key),
      perKey: { concurrency: 1 },
    });
    const bad = await pool.submit({ key: 'num', n: 1 });
    const good = await pool.submit({ key: 'a', n: 2 });
    const failed = await bad.result;
    expect(failed.ok).toBe(false);
    if (!failed.ok) {
      expect(failed.error).toBeInstanceOf(TypeError);
      expect(failed.error).toMatchObject({ code: 'ERR_INVALID_RETURN_VALUE' });
      expect(failed.error.message).toBe('the key function returned 7, expected a string');
    }
    expect(await good.result).toMatchObject({ ok: true, value: 2 });
    await pool.drain();
  });

  it('perKey without key is refused at construction', () => {
    expect(() => new Pool(() => 1, { concurrency: 1, perKey: { concurrency: 2 } })).toThrow(
      /perKey/,
    );
    expect(
      () => new Pool(() => 1, { concurrency: 1, key: () => 'k', perKey: { concurrency: 0 } }),
    ).toThrow(/perKey\.concurrency/);
  });

  it('a key rate counts each start of a pass at its own time, not the first reading of the pass (Pool: a worker ran in between)', async () => {
    const work = fakeTimeWithWork();
    const starts: number[] = [];
    const pool = new Pool(
      (job: string) => {
        if (job.startsWith('a')) starts.push(performance.now());
        if (job === 'a1') work(50); // 50 ms of synchronous work before a2 starts
        return new Promise<string>((resolve) =>
          setTimeout(() => resolve(job), job === 'b' ? 50 : 1000),
        );
      },
      {
        concurrency: 10,
        key: (job: string) => job.slice(0, 1),
        perKey: { concurrency: 10, rate: { limit: 2, interval: 100 } },
      },
    );
    pool.pause();
    const tasks = [];
    for (const job of ['a1', 'b', 'a2', 'a3', 'a4']) tasks.push((await pool.submit(job)).result);
    pool.resume(); // one pass starts a1, b, a2; b's settlement (at 100) starts the next
    await vi.advanceTimersByTimeAsync(3000);
    await Promise.all(tasks);
    // a2 started at 50, so a3 and a4 may not both start before 150.
    expect(starts.slice(0, 2)).toEqual([0, 50]);
    expect(maxInWindow(starts, 100)).toBe(2);
    await pool.close();
  });

  it('a key rate counts each start of a pass at its own time, not the first reading of the pass (runPool: a worker ran in between)', async () => {
    const work = fakeTimeWithWork();
    const starts: number[] = [];
    const jobs = ['a1', 'a2', 'b', 'a3', 'a4', 'a5', 'a6'];
    const results = runPool(
      jobs,
      (job: string) => {
        if (job.startsWith('a')) starts.push(performance.now());
        if (job === 'a3') work(50); // 50 ms of synchronous work before a4 starts, in one pass
        return new Promise<string>((resolve) =>
          setTimeout(() => resolve(job), job === 'b' ? 150 : 1000),
        );
      },
      {
        concurrency: 10,
        key: (job: string) => job.slice(0, 1),
        perKey: { concurrency: 10, rate: { limit: 2, interval: 100 } },
      },
    );
    const done = (async () => {
      let n = 0;
      for await (const r of results) if (r.ok) n++;
      return n;
    })();
    await vi.advanceTimersByTimeAsync(3000);
    expect(await done).toBe(jobs.length);
    // a3 and a4 start in one pass, a4 50 ms later; b's settlement wakes the engine at 200.
    expect(starts.slice(0, 4)).toEqual([0, 0, 100, 150]);
    expect(maxInWindow(starts, 100)).toBe(2);
  });
});
