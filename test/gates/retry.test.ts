import { afterEach, describe, expect, it, vi } from 'vitest';
import { AbortError, Pool, TimeoutError } from '../../src/index.js';
import { deferred, flush } from '../helpers.js';

afterEach(() => {
  vi.useRealTimers();
});

const fakeTime = () =>
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
  });

/** A worker failing its first `failures` runs of each job, then returning the job. */
function flaky(failures: number) {
  const runs = new Map<number, number>();
  return (n: number) => {
    const run = (runs.get(n) ?? 0) + 1;
    runs.set(n, run);
    if (run <= failures) throw new Error(`run ${run} of ${n} failed`);
    return n;
  };
}

describe('retry', () => {
  it('a job failing twice then succeeding is ok after 3 attempts, with both errors kept', async () => {
    fakeTime();
    const pool = new Pool(flaky(2), { concurrency: 1, retry: { attempts: 5, backoff: () => 100 } });
    const task = await pool.submit(7);
    await vi.advanceTimersByTimeAsync(200);
    const result = await task.result;
    expect(result).toMatchObject({ ok: true, value: 7, attempts: 3 });
    expect(result.errors?.map((e) => e.message)).toEqual([
      'run 1 of 7 failed',
      'run 2 of 7 failed',
    ]);
    expect(pool.stats()).toMatchObject({ succeeded: 1, failed: 0, retried: 2 });
  });

  it('a job that always fails settles once after `attempts` runs, the last error with the earlier ones reachable', async () => {
    fakeTime();
    const pool = new Pool(flaky(99), { concurrency: 1, retry: { attempts: 3, backoff: () => 10 } });
    const task = await pool.submit(1);
    await vi.advanceTimersByTimeAsync(100);
    const result = await task.result;
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.attempts).toBe(3);
    expect(result.error.message).toBe('run 3 of 1 failed');
    expect(result.errors?.map((e) => e.message)).toEqual([
      'run 1 of 1 failed',
      'run 2 of 1 failed',
      'run 3 of 1 failed',
    ]);
    expect(pool.stats()).toMatchObject({ failed: 1, retried: 2, submitted: 1 });
  });

  it('retryIf returning false fails the job at once', async () => {
    fakeTime();
    const retryIf = vi.fn(() => false);
    const pool = new Pool(flaky(99), { concurrency: 1, retry: { attempts: 3, retryIf } });
    const result = await (await pool.submit(1)).result;
    expect(result).toMatchObject({ ok: false, attempts: 1 });
    expect(retryIf).toHaveBeenCalledWith(expect.any(Error), 1);
  });

  it('a job waiting to retry holds no slot: another job runs meanwhile', async () => {
    fakeTime();
    const started: string[] = [];
    const gate = deferred<void>();
    let failedOnce = false;
    const pool = new Pool(
      async (job: string) => {
        started.push(job);
        if (job === 'a' && !failedOnce) {
          failedOnce = true;
          throw new Error('a failed');
        }
        if (job === 'b') await gate.promise;
        return job;
      },
      { concurrency: 1, retry: { attempts: 2, backoff: () => 1000 } },
    );
    const a = await pool.submit('a');
    await flush();
    const b = await pool.submit('b');
    await flush();
    expect(started).toEqual(['a', 'b']); // b runs while a waits out its backoff
    expect(pool.stats()).toMatchObject({ running: 1, waiting: { retry: 1 } });
    gate.resolve();
    await vi.advanceTimersByTimeAsync(1000);
    expect(await a.result).toMatchObject({ ok: true, attempts: 2 });
    expect(await b.result).toMatchObject({ ok: true, attempts: 1 });
  });

  it('each attempt gets a fresh signal and its own timeout', async () => {
    fakeTime();
    const signals: AbortSignal[] = [];
    const pool = new Pool(
      (_: number, { signal }) => {
        signals.push(signal);
        return new Promise<number>(() => {}); // never settles: only the timeout ends it
      },
      { concurrency: 1, timeout: 50, retry: { attempts: 2, backoff: () => 10 } },
    );
    const task = await pool.submit(1);
    await vi.advanceTimersByTimeAsync(50);
    expect(signals).toHaveLength(1);
    expect(signals[0]?.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(10);
    expect(signals).toHaveLength(2);
    expect(signals[1]?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(50);
    const result = await task.result;
    expect(result).toMatchObject({ ok: false, attempts: 2 });
    if (!result.ok) expect(result.error).toBeInstanceOf(TimeoutError);
  });

  it('abort() cancels a waiting retry, which settles as canceled', async () => {
    fakeTime();
    const pool = new Pool(flaky(99), {
      concurrency: 1,
      retry: { attempts: 3, backoff: () => 60_000 },
    });
    const task = await pool.submit(1);
    await flush();
    expect(pool.stats().waiting.retry).toBe(1);
    const report = await pool.abort('stop');
    expect(report).toMatchObject({ canceled: 1, canceledJobs: [1] });
    const result = await task.result;
    expect(result).toMatchObject({ ok: false, attempts: 1 });
    if (!result.ok) expect(result.error).toBeInstanceOf(AbortError);
    // The cancel was not a run: it follows the run's error, one more than `attempts`, and is last.
    expect(result.errors).toHaveLength(2);
    expect(result.errors?.[0]?.message).toBe('run 1 of 1 failed');
    if (!result.ok) expect(result.errors?.at(-1)).toBe(result.error);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a drain deadline cancels a waiting retry; a plain drain waits for it', async () => {
    fakeTime();
    const pool = new Pool(flaky(1), { concurrency: 1, retry: { attempts: 3, backoff: () => 500 } });
    const ok = await pool.submit(1);
    await flush();
    const drained = pool.drain();
    await vi.advanceTimersByTimeAsync(500);
    expect(await drained).toMatchObject({ completed: 1, canceled: 0 });
    expect(await ok.result).toMatchObject({ ok: true, attempts: 2 });

    const second = new Pool(flaky(99), {
      concurrency: 1,
      retry: { attempts: 3, backoff: () => 5000 },
    });
    const task = await second.submit(2);
    await flush();
    const cut = second.drain({ timeout: 100 });
    await vi.advanceTimersByTimeAsync(100);
    expect(await cut).toMatchObject({ canceled: 1, canceledJobs: [2] });
    expect((await task.result).ok).toBe(false);
  });

  it("the job's own signal cancels its retry wait", async () => {
    fakeTime();
    const pool = new Pool(flaky(99), {
      concurrency: 1,
      retry: { attempts: 3, backoff: () => 5000 },
    });
    const controller = new AbortController();
    const task = await pool.submit(1, { signal: controller.signal });
    await flush();
    controller.abort('no longer needed');
    const result = await task.result;
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toBeInstanceOf(AbortError);
    expect(pool.stats()).toMatchObject({ canceled: 1, waiting: { retry: 0 } });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a canceled job is never retried', async () => {
    fakeTime();
    const worker = vi.fn(() => new Promise<number>(() => {}));
    const pool = new Pool(worker, { concurrency: 1, retry: { attempts: 3, backoff: () => 1 } });
    const controller = new AbortController();
    const task = await pool.submit(1, { signal: controller.signal });
    controller.abort();
    await vi.advanceTimersByTimeAsync(10);
    expect((await task.result).ok).toBe(false);
    expect(worker).toHaveBeenCalledTimes(1);
  });

  it('backoff defaults grow exponentially from 1 s, capped, with jitter within bounds', async () => {
    fakeTime();
    vi.spyOn(Math, 'random').mockReturnValue(0); // no jitter taken off
    const times: number[] = [];
    const pool = new Pool(
      () => {
        times.push(Date.now());
        throw new Error('x');
      },
      { concurrency: 1, retry: { attempts: 4, backoff: { initial: 100, factor: 3, max: 500 } } },
    );
    const task = await pool.submit(0);
    await vi.advanceTimersByTimeAsync(2000);
    await task.result;
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(gaps).toEqual([100, 300, 500]);
  });

  it('a throwing retryIf counts as retry (as in consume()) and the job keeps its own error; bad options are refused at construction', async () => {
    fakeTime();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const pool = new Pool(flaky(99), {
      concurrency: 1,
      retry: {
        attempts: 3,
        backoff: () => 10,
        retryIf: () => {
          throw new Error('retryIf broke');
        },
      },
    });
    const task = await pool.submit(1);
    await vi.advanceTimersByTimeAsync(100);
    const result = await task.result;
    process.off('warning', onWarning);
    expect(result).toMatchObject({ ok: false, attempts: 3 });
    if (!result.ok) expect(result.error.message).toBe('run 3 of 1 failed');
    expect(() => new Pool(() => 1, { concurrency: 1, retry: { attempts: 0 } })).toThrow(
      /retry\.attempts.*positive integer.*got 0/,
    );
    expect(
      () => new Pool(() => 1, { concurrency: 1, retry: { attempts: 2, backoff: { jitter: 2 } } }),
    ).toThrow(/retry\.backoff\.jitter/);
    expect(() => new Pool(() => 1, { concurrency: 1, retry: {} as never })).toThrow(
      /retry\.attempts/,
    );
  });
});
