import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AbortError,
  JobFailedError,
  Pool,
  PoolClosedError,
  pipeline,
  type Result,
  runPool,
  TimeoutError,
  WorkerCrashedError,
} from '../src/index.js';
import { HOOKS } from '../src/scheduler/hooks.js';
import { type Deferred, deferred, flush } from './helpers.js';

afterEach(() => {
  vi.useRealTimers();
});

/** Fake timers including performance.now(), which the stats read. */
const fakeTime = () =>
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
  });

/** A pool whose jobs each wait on their own latch: the test decides when each finishes. */
function latchedPool(opts: { concurrency: number; queueSize?: number; timeout?: number }) {
  const latches = new Map<number, Deferred<number>>();
  const started: number[] = [];
  let running = 0;
  let peak = 0;
  const pool = new Pool<number, number>(async (n, { signal }) => {
    started.push(n);
    running++;
    peak = Math.max(peak, running);
    const latch = deferred<number>();
    latches.set(n, latch);
    signal.addEventListener('abort', () => latch.reject(signal.reason));
    try {
      return await latch.promise;
    } finally {
      running--;
    }
  }, opts);
  const finish = (n: number) => latches.get(n)?.resolve(n);
  return { pool, started, finish, peak: () => peak };
}

describe('Pool: submit, trySubmit, run', () => {
  it('submit resolves when the job is accepted; that await is the backpressure', async () => {
    const { pool, started, finish } = latchedPool({ concurrency: 1, queueSize: 1 });
    const t0 = await pool.submit(0); // runs
    const t1 = await pool.submit(1); // queued
    let accepted = false;
    const p2 = pool.submit(2).then((t) => {
      accepted = true;
      return t;
    });
    await flush();
    expect(accepted).toBe(false);
    expect(pool.stats()).toMatchObject({ running: 1, queued: 1 });
    finish(0);
    const t2 = await p2;
    expect(accepted).toBe(true);
    await flush();
    expect(started).toEqual([0, 1]);
    finish(1);
    await flush();
    finish(2);
    expect(await t0.result).toMatchObject({ ok: true, value: 0, index: 0 });
    expect(await t1.result).toMatchObject({ ok: true, value: 1, index: 1 });
    expect(await t2.result).toMatchObject({ ok: true, value: 2, index: 2 });
  });

  it('trySubmit never waits: undefined when full', async () => {
    const { pool, finish } = latchedPool({ concurrency: 1, queueSize: 1 });
    expect(pool.trySubmit(0)).toBeDefined();
    expect(pool.trySubmit(1)).toBeDefined();
    expect(pool.trySubmit(2)).toBeUndefined();
    finish(0);
    await flush();
    expect(pool.trySubmit(3)).toBeDefined();
    await pool.abort();
  });

  it('run returns the value or rejects with the job error; Task.result never rejects', async () => {
    const pool = new Pool<number, number>(
      async (n) => {
        if (n < 0) throw new RangeError('negative');
        return n * 2;
      },
      { concurrency: 2 },
    );
    expect(await pool.run(21)).toBe(42);
    await expect(pool.run(-1)).rejects.toBeInstanceOf(RangeError);
    const task = await pool.submit(-2);
    const result = await task.result;
    expect(result).toMatchObject({ ok: false, job: -2 });
    expect(result.ok === false && result.error.message).toBe('negative');
  });

  it('a synchronously throwing worker fails its job, never the pool', async () => {
    const pool = new Pool<number, number>(
      (n) => {
        if (n === 1) throw new Error('boom');
        return n;
      },
      { concurrency: 1 },
    );
    const results = await Promise.all([0, 1, 2].map(async (n) => (await pool.submit(n)).result));
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
  });
});

describe('Pool: close, drain, abort', () => {
  it('close() then submit rejects PoolClosedError; waiting submits reject too', async () => {
    const { pool, finish } = latchedPool({ concurrency: 1, queueSize: 0 });
    await pool.submit(0);
    const waiting = pool.submit(1);
    pool.close();
    await expect(waiting).rejects.toBeInstanceOf(PoolClosedError);
    await expect(pool.submit(2)).rejects.toMatchObject({ code: 'ERR_POOL_CLOSED' });
    expect(() => pool.trySubmit(3)).toThrow(PoolClosedError);
    finish(0);
    expect(await pool.drain()).toMatchObject({ completed: 1, canceled: 0 });
  });

  it('drain() resolves after queued and in-flight jobs finish', async () => {
    const { pool, finish } = latchedPool({ concurrency: 2, queueSize: 4 });
    const tasks = await Promise.all([0, 1, 2, 3].map((n) => pool.submit(n)));
    let drained = false;
    const draining = pool.drain().then((r) => {
      drained = true;
      return r;
    });
    finish(0);
    finish(1);
    await flush();
    expect(drained).toBe(false);
    finish(2);
    finish(3);
    expect(await draining).toEqual({ completed: 4, canceled: 0, canceledJobs: [] });
    for (const t of tasks) expect((await t.result).ok).toBe(true);
  });

  it('drain({ timeout }) cancels what is left at the deadline and reports it', async () => {
    fakeTime();
    const { pool, finish } = latchedPool({ concurrency: 2, queueSize: 4 });
    const tasks = await Promise.all([0, 1, 2, 3].map((n) => pool.submit(n)));
    const draining = pool.drain({ timeout: 1_000 });
    finish(0);
    await vi.advanceTimersByTimeAsync(1_000);
    const report = await draining;
    expect(report.completed).toBe(1);
    expect(report.canceled).toBe(3);
    expect(report.canceledJobs.sort()).toEqual([1, 2, 3]);
    const results = await Promise.all(tasks.map((t) => t.result));
    expect(results[0]?.ok).toBe(true);
    for (const r of results.slice(1)) {
      expect(r.ok === false && r.error).toBeInstanceOf(AbortError);
    }
  });

  it("drain()'s completed counts the jobs settled after the call: 0 for jobs settled before it", async () => {
    const idle = new Pool(async (n: number) => n, { concurrency: 2 });
    await idle.run(1);
    await idle.run(2);
    expect(await idle.drain()).toMatchObject({ completed: 0, canceled: 0 });

    const gate = deferred<void>();
    const busy = new Pool(
      async (n: number) => {
        if (n > 0) await gate.promise;
        return n;
      },
      { concurrency: 1 },
    );
    await busy.run(0);
    // One running, two queued at the call: the three count, the one settled before does not.
    const tasks = await Promise.all([1, 2, 3].map((n) => busy.submit(n)));
    const draining = busy.drain();
    gate.resolve();
    expect(await draining).toMatchObject({ completed: 3, canceled: 0 });
    expect((await Promise.all(tasks.map((t) => t.result))).every((r) => r.ok)).toBe(true);
  });

  it('drain({ timeout: 0 }) cancels whatever is left right away', async () => {
    const { pool } = latchedPool({ concurrency: 1, queueSize: 1 });
    const tasks = await Promise.all([0, 1].map((n) => pool.submit(n)));
    const report = await pool.drain({ timeout: 0 });
    expect(report).toMatchObject({ completed: 0, canceled: 2 });
    for (const t of tasks) {
      const r = await t.result;
      expect(r.ok === false && r.error).toBeInstanceOf(AbortError);
    }
  });

  it('a job timeout or drain deadline past the longest timer (2^31-1 ms) is refused, not fired after 1 ms', async () => {
    const huge = 2 ** 31;
    expect(() => new Pool(async () => 1, { concurrency: 1, timeout: huge })).toThrow(
      /^Invalid option "timeout": expected a positive finite number of milliseconds <= 2147483647/,
    );
    const pool = new Pool(async (n: number) => n, { concurrency: 1 });
    await expect(pool.drain({ timeout: huge })).rejects.toMatchObject({
      name: 'RangeError',
      code: 'ERR_INVALID_OPTION',
      message: expect.stringContaining('<= 2147483647'),
    });
    expect(() => runPool([1], async (n: number) => n, { concurrency: 1, timeout: huge })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION' }),
    );
    expect(() =>
      pipeline([1]).stage('s', async (n: number) => n, { concurrency: 1, timeout: huge }),
    ).toThrow(/^Invalid option "s.timeout"/);
    // The longest timer itself is kept as given.
    expect(await pool.run(3)).toBe(3);
    expect(() => new Pool(async () => 1, { concurrency: 1, timeout: 2 ** 31 - 1 })).not.toThrow();
  });

  it('abort() cancels queued jobs at once and aborts running ones', async () => {
    const { pool, started } = latchedPool({ concurrency: 1, queueSize: 2 });
    const tasks = await Promise.all([0, 1, 2].map((n) => pool.submit(n)));
    const report = await pool.abort('stop now');
    expect(report.canceled).toBe(3);
    const results = await Promise.all(tasks.map((t) => t.result));
    for (const r of results) {
      expect(r.ok).toBe(false);
      expect(r.ok === false && r.error).toBeInstanceOf(AbortError);
      expect(r.ok === false && r.error.cause).toBe('stop now');
    }
    expect(started).toEqual([0]);
    await expect(pool.submit(9)).rejects.toBeInstanceOf(PoolClosedError);
    expect(pool.stats()).toMatchObject({ running: 0, queued: 0, canceled: 3 });
  });

  it("a second abort() returns the first one's promise and report; its reason is ignored", async () => {
    const { pool } = latchedPool({ concurrency: 1, queueSize: 2 });
    const tasks = await Promise.all([0, 1, 2].map((n) => pool.submit(n)));
    const first = pool.abort('first');
    const second = pool.abort('second');
    expect(second).toBe(first);
    const report = await second;
    expect(report.canceled).toBe(3);
    expect([...report.canceledJobs].sort()).toEqual([0, 1, 2]);
    for (const t of tasks) {
      const r = await t.result;
      expect(r.ok === false && r.error.cause).toBe('first');
    }
    // Long after: still the first call's outcome, not a fresh empty report.
    expect(await pool.abort('third')).toBe(report);
  });

  it('the pool signal aborts the pool', async () => {
    const ac = new AbortController();
    const pool = new Pool<number, number>(() => new Promise<number>(() => {}), {
      concurrency: 1,
      signal: ac.signal,
    });
    const t = await pool.submit(1);
    ac.abort('bye');
    const r = await t.result;
    expect(r.ok === false && r.error).toBeInstanceOf(AbortError);
    await expect(pool.submit(2)).rejects.toBeInstanceOf(PoolClosedError);
  });

  it('await using drains the pool at the end of the scope', async () => {
    const done: number[] = [];
    {
      await using pool = new Pool<number, void>(
        async (n) => {
          await flush();
          done.push(n);
        },
        { concurrency: 2 },
      );
      for (let i = 0; i < 5; i++) await pool.submit(i);
    }
    expect(done.sort()).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('Pool: onIdle', () => {
  it('resolves at once on a pool that never had work', async () => {
    const pool = new Pool(async () => 1, { concurrency: 1 });
    let idle = false;
    await pool.onIdle().then(() => {
      idle = true;
    });
    expect(idle).toBe(true);
  });

  it('resolves only once the queue and in-flight work are empty, checked when it resolves', async () => {
    const { pool, finish } = latchedPool({ concurrency: 1, queueSize: 5 });
    await pool.submit(0);
    let idle = false;
    const waiting = pool.onIdle().then(() => {
      idle = true;
    });
    await pool.submit(1); // submitted after onIdle() was called: still waited for
    finish(0);
    await flush();
    expect(idle).toBe(false);
    finish(1);
    await waiting;
    expect(idle).toBe(true);
    expect(pool.stats()).toMatchObject({ running: 0, queued: 0 });
  });

  it("every run()'s own handlers, failures included, have run when onIdle() or abort() resumes the caller", async () => {
    const odd = async (n: number) => {
      await new Promise((resolve) => setImmediate(resolve)); // the last job settles alone
      if (n % 2 === 1) throw new Error(`job ${n}`);
      return n;
    };
    const idlePool = new Pool(odd, { concurrency: 2, queueSize: 8 });
    const outcomes: string[] = [];
    for (const n of [0, 1, 2, 3]) {
      idlePool.run(n).then(
        () => outcomes.push(`ok ${n}`),
        () => outcomes.push(`failed ${n}`),
      );
    }
    await idlePool.onIdle();
    expect(outcomes.sort()).toEqual(['failed 1', 'failed 3', 'ok 0', 'ok 2']);

    const hung = new Pool<number, never>(() => new Promise(() => {}), {
      concurrency: 2,
      queueSize: 8,
    });
    const canceled: number[] = [];
    for (const n of [0, 1, 2, 3, 4, 5]) hung.run(n).catch(() => canceled.push(n));
    await hung.abort();
    expect(canceled.sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

describe('Pool: resize, pause, resume', () => {
  it('resize up starts queued jobs at once; down starts nothing new until running < n', async () => {
    const { pool, started, finish, peak } = latchedPool({ concurrency: 1, queueSize: 10 });
    for (let i = 0; i < 6; i++) await pool.submit(i);
    expect(started).toEqual([0]);
    pool.resize(3);
    expect(started).toEqual([0, 1, 2]);
    pool.resize(1);
    finish(0);
    finish(1);
    await flush();
    expect(started).toEqual([0, 1, 2]);
    finish(2);
    await flush();
    expect(started).toEqual([0, 1, 2, 3]);
    expect(pool.stats().running).toBe(1);
    finish(3);
    await flush();
    finish(4);
    await flush();
    finish(5);
    await pool.drain();
    expect(peak()).toBe(3);
    expect(() => pool.resize(0)).toThrow(/"concurrency".*0/);
  });

  it('pause() starts nothing while paused; resume() starts what is queued', async () => {
    const { pool, started, finish } = latchedPool({ concurrency: 2, queueSize: 10 });
    pool.pause();
    for (let i = 0; i < 3; i++) await pool.submit(i);
    await flush();
    expect(started).toEqual([]);
    expect(pool.stats().queued).toBe(3);
    pool.resume();
    expect(started).toEqual([0, 1]);
    finish(0);
    finish(1);
    await flush();
    finish(2);
    await pool.drain();
    expect(started).toEqual([0, 1, 2]);
  });
});

describe('Pool: signals and listeners', () => {
  it('a long-lived signal passed to 10,000 jobs: no MaxListenersExceededWarning, listeners back to baseline', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const ac = new AbortController();
      const baseline = getEventListeners(ac.signal, 'abort').length;
      const pool = new Pool<number, number>(async (n) => n, { concurrency: 4 });
      const tasks = [];
      for (let i = 0; i < 10_000; i++) tasks.push(await pool.submit(i, { signal: ac.signal }));
      await pool.drain();
      const results = await Promise.all(tasks.map((t) => t.result));
      expect(results.every((r) => r.ok)).toBe(true);
      await flush();
      expect(getEventListeners(ac.signal, 'abort').length).toBe(baseline);
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('aborting a running and a queued job in the same tick frees both slots; the next job runs', async () => {
    const { pool, started, finish } = latchedPool({ concurrency: 1, queueSize: 5 });
    const a1 = new AbortController();
    const a2 = new AbortController();
    const t1 = await pool.submit(1, { signal: a1.signal });
    const t2 = await pool.submit(2, { signal: a2.signal });
    const t3 = await pool.submit(3);
    a2.abort();
    a1.abort();
    await flush();
    expect(started).toEqual([1, 3]);
    finish(3);
    expect((await t1.result).ok === false).toBe(true);
    expect((await t2.result).ok === false).toBe(true);
    expect(await t3.result).toMatchObject({ ok: true, value: 3 });
    expect(pool.stats()).toMatchObject({ canceled: 2, succeeded: 1, running: 0, queued: 0 });
  });

  it("a worker's ctx cannot settle or forge its own job's result (only signal, index, workerId)", async () => {
    const pool = new Pool<number, string>(
      async (_n, ctx) => {
        const c = ctx as unknown as Record<string, unknown>;
        expect(c.cancel).toBeUndefined();
        expect(c.resolveResult).toBeUndefined();
        expect(c.start).toBeUndefined();
        expect(c.job).toBeUndefined();
        expect(ctx.index).toBe(0);
        expect(ctx.workerId).toBe(0);
        expect(ctx.signal.aborted).toBe(false);
        return 'real';
      },
      { concurrency: 1 },
    );
    const task = await pool.submit(1);
    expect(await task.result).toMatchObject({ ok: true, value: 'real' });
    for await (const r of runPool([1], async (_n, ctx) => 'cancel' in ctx, { concurrency: 1 })) {
      expect(r).toMatchObject({ ok: true, value: false });
    }
  });

  it('an already-aborted signal: accepted and canceled at once with room; not accepted when full (submit rejects, trySubmit returns undefined)', async () => {
    const { pool, started, finish } = latchedPool({ concurrency: 1, queueSize: 0 });
    const aborted = AbortSignal.abort(new Error('gone'));
    // Room: accepted, settles at once as canceled, counted.
    const task = await pool.submit(1, { signal: aborted });
    const r = await task.result;
    expect(r.ok === false && r.error).toBeInstanceOf(AbortError);
    expect(pool.trySubmit(2, { signal: aborted })).toBeDefined();
    expect(pool.stats()).toMatchObject({ submitted: 2, canceled: 2 });
    // Full: nothing accepted or counted.
    await pool.submit(3);
    await flush();
    expect(started).toEqual([3]);
    await expect(pool.submit(4, { signal: aborted })).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    });
    expect(pool.trySubmit(5, { signal: aborted })).toBeUndefined();
    expect(pool.stats()).toMatchObject({ submitted: 3, canceled: 2 });
    finish(3);
    await pool.drain();
    expect(started).toEqual([3]);
  });

  it('an already-aborted job signal settles the task as canceled without running it', async () => {
    const ran: number[] = [];
    const pool = new Pool<number, number>((n) => ran.push(n), { concurrency: 1 });
    const task = await pool.submit(1, { signal: AbortSignal.abort('nope') });
    const r = await task.result;
    expect(r.ok === false && r.error).toBeInstanceOf(AbortError);
    expect(ran).toEqual([]);
  });

  it('timeout from job start: TimeoutError, signal aborted, slot freed for the next job', async () => {
    fakeTime();
    const { pool, started, finish } = latchedPool({ concurrency: 1, timeout: 100 });
    const t1 = await pool.submit(1);
    const t2 = await pool.submit(2);
    await vi.advanceTimersByTimeAsync(100);
    const r1 = await t1.result;
    expect(r1.ok === false && r1.error).toBeInstanceOf(TimeoutError);
    expect(started).toEqual([1, 2]);
    finish(2);
    expect(await t2.result).toMatchObject({ ok: true, value: 2 });
    expect(pool.stats()).toMatchObject({ timedOut: 1, succeeded: 1 });
  });
});

describe('Pool: stats', () => {
  it('reports counts by outcome and wait/run percentiles', async () => {
    fakeTime();
    const pool = new Pool<number, number>(
      async (n, { signal }) => {
        if (n === 3) throw new Error('fail');
        if (n === 4) throw new WorkerCrashedError('thread died', 1);
        if (n === 5) {
          await new Promise((_, reject) => signal.addEventListener('abort', reject));
        }
        await new Promise((resolve) => setTimeout(resolve, n * 10));
        return n;
      },
      { concurrency: 2, queueSize: 10, timeout: 1_000 },
    );
    const a = new AbortController();
    const tasks: Promise<Result<number, number>>[] = [];
    for (const n of [1, 2, 3, 4, 5, 6]) {
      tasks.push((await pool.submit(n, n === 6 ? { signal: a.signal } : undefined)).result);
    }
    a.abort();
    expect(pool.stats()).toMatchObject({ concurrency: 2, submitted: 6, canceled: 1 });
    await vi.advanceTimersByTimeAsync(2_000);
    await Promise.all(tasks);
    const s = pool.stats();
    expect(s).toMatchObject({
      concurrency: 2,
      running: 0,
      queued: 0,
      submitted: 6,
      succeeded: 2,
      failed: 1,
      crashed: 1,
      timedOut: 1,
      canceled: 1,
    });
    // Run times with fake timers are exact: jobs 1 and 2 ran 10 and 20 ms, job 5 timed out at 1 s.
    expect(s.runTime.p99).toBeCloseTo(1_000, 0);
    expect(s.runTime.p50).toBeLessThanOrEqual(20);
    // Job 3 waited 10 ms (for job 1's slot), job 4 likewise ~10-20 ms; job 5 waited 20 ms.
    expect(s.waitTime.p90).toBeGreaterThanOrEqual(10);
    expect(s.utilization).toBeGreaterThan(0);
    expect(s.utilization).toBeLessThanOrEqual(1);
  });

  it('utilization is near 1 when every slot is always busy', async () => {
    fakeTime();
    const pool = new Pool<number, void>(
      () => new Promise<void>((resolve) => setTimeout(resolve, 100)),
      { concurrency: 2, queueSize: 100 },
    );
    for (let i = 0; i < 20; i++) await pool.submit(i);
    await vi.advanceTimersByTimeAsync(1_000);
    await pool.onIdle();
    expect(pool.stats().utilization).toBeGreaterThan(0.99);
  });
});

describe('Pool: bad options', () => {
  const worker = async (n: number) => n;
  it.each([
    [0, RangeError],
    [-1, RangeError],
    [1.5, RangeError],
    [Number.NaN, RangeError],
    ['4', TypeError],
  ])('concurrency %s throws %s naming the option and value', (value, Type) => {
    const make = () => new Pool(worker, { concurrency: value as number });
    expect(make).toThrow(Type);
    expect(make).toThrow(/"concurrency"/);
    expect(make).toThrow(String(value));
  });

  it('negative timeout and queueSize, and a non-function worker, throw at construction', () => {
    expect(() => new Pool(worker, { concurrency: 1, timeout: -1 })).toThrow(/"timeout".*-1/);
    expect(() => new Pool(worker, { concurrency: 1, queueSize: -3 })).toThrow(/"queueSize".*-3/);
    expect(() => new Pool(42 as unknown as typeof worker, { concurrency: 1 })).toThrow(TypeError);
    expect(
      () => new Pool(worker, { concurrency: 1, signal: 'x' as unknown as AbortSignal }),
    ).toThrow(/"signal"/);
  });
});

/** A Proxy that is already revoked: any inspection of it (`instanceof`, `String`, …) throws. */
function revokedProxy(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

describe('Pool: hostile workers and callers', () => {
  it('a waiting submit whose job is accepted and started resolves, even when its worker aborts that submit signal synchronously', async () => {
    const gate = deferred<void>();
    const ac = new AbortController();
    const pool = new Pool<string, string>(
      async (job) => {
        if (job === 'A') await gate.promise;
        else ac.abort('changed my mind');
        return job;
      },
      { concurrency: 1, queueSize: 0 },
    );
    const a = await pool.submit('A');
    const submittingB = pool.submit('B', { signal: ac.signal });
    gate.resolve();
    await a.result;
    const b = await submittingB; // accepted and started: the submit resolves
    const r = await b.result;
    expect(r.ok === false && r.error).toBeInstanceOf(AbortError);
    expect(pool.stats()).toMatchObject({ submitted: 2, succeeded: 1, canceled: 1, running: 0 });
  });

  it('a worker that throws (or rejects with) a revoked Proxy fails its job with an Error; the slot is freed, nothing unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    try {
      const pool = new Pool<string, string>(
        (job) => {
          if (job === 'throw') throw revokedProxy();
          if (job === 'reject') return Promise.reject(revokedProxy());
          return job;
        },
        { concurrency: 1 },
      );
      const results = await Promise.all(
        ['throw', 'reject', 'ok'].map(async (j) => (await pool.submit(j)).result),
      );
      expect(results[0]?.ok === false && results[0].error).toBeInstanceOf(JobFailedError);
      expect(results[1]?.ok === false && results[1].error).toBeInstanceOf(JobFailedError);
      expect(results[2]).toMatchObject({ ok: true, value: 'ok' });
      expect(pool.stats()).toMatchObject({ failed: 2, succeeded: 1, running: 0 });
      for await (const r of runPool(['x'], () => Promise.reject(revokedProxy()), {
        concurrency: 1,
      })) {
        expect(r.ok === false && r.error).toBeInstanceOf(JobFailedError);
      }
      await flush();
    } finally {
      process.off('unhandledRejection', onUnhandled);
      process.off('uncaughtException', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });

  it('an abort reason whose inspection throws (a revoked Proxy) still cancels: job signal, pool.abort(), pipeline.abort()', async () => {
    const { pool } = latchedPool({ concurrency: 1, queueSize: 2 });
    const ac = new AbortController();
    const running = await pool.submit(1, { signal: ac.signal });
    const queued = await pool.submit(2, { signal: ac.signal });
    const reason = revokedProxy();
    ac.abort(reason);
    for (const task of [running, queued]) {
      const r = await task.result;
      expect(r.ok === false && r.error).toBeInstanceOf(AbortError);
      expect(r.ok === false && r.error.cause).toBe(reason);
    }
    const other = await pool.submit(3);
    const report = await pool.abort(revokedProxy());
    expect(report.canceled).toBe(1);
    expect((await other.result).ok).toBe(false);
    const p = pipeline([1]).stage('s', async (x: number) => x, { concurrency: 1 });
    expect(() => p.abort(revokedProxy())).not.toThrow();
  });

  it.each(['timeout', 'job signal'] as const)(
    'a job canceled by %s has its signal aborted before its slot runs the next job',
    async (how) => {
      fakeTime();
      const events: string[] = [];
      let live = 0;
      let peakLive = 0;
      const ac = new AbortController();
      const pool = new Pool<number, number>(
        (n, { signal }) => {
          live++;
          peakLive = Math.max(peakLive, live);
          events.push(`start ${n}`);
          return new Promise<number>((resolve) => {
            signal.addEventListener('abort', () => {
              live--;
              events.push(`abort ${n}`);
            });
            if (n === 2) {
              live--;
              resolve(n);
            }
          });
        },
        { concurrency: 1, timeout: how === 'timeout' ? 100 : undefined },
      );
      const t1 = await pool.submit(1, { signal: ac.signal });
      const t2 = await pool.submit(2);
      if (how === 'timeout') await vi.advanceTimersByTimeAsync(100);
      else ac.abort();
      await t1.result;
      expect(await t2.result).toMatchObject({ ok: true });
      expect(events.slice(0, 2)).toEqual(['start 1', 'abort 1']);
      expect(peakLive).toBe(1);
    },
  );
});

describe('Pool: abort from inside a cancellation', () => {
  it('abort() called by the abort listener of a job its own signal canceled does not report that job as canceled by it', async () => {
    const ac = new AbortController();
    let report: Promise<{ canceled: number; canceledJobs: number[] }> | undefined;
    const pool = new Pool<number, number>(
      (n, { signal }) =>
        new Promise<number>((_, reject) => {
          signal.addEventListener('abort', () => {
            if (n === 1) report = pool.abort('from a listener');
            reject(signal.reason);
          });
        }),
      { concurrency: 2 },
    );
    const t1 = await pool.submit(1, { signal: ac.signal });
    const t2 = await pool.submit(2);
    ac.abort('job 1 only');
    await Promise.all([t1.result, t2.result]);
    expect(await report).toMatchObject({ canceled: 1, canceledJobs: [2] });
    expect(pool.stats()).toMatchObject({ canceled: 2, running: 0 });
  });
});

describe('runPool: canceled jobs', () => {
  it('a timed-out job has its signal aborted before its slot runs the next job', async () => {
    fakeTime();
    const events: string[] = [];
    const it = runPool(
      [1, 2],
      (n, { signal }) => {
        events.push(`start ${n}`);
        signal.addEventListener('abort', () => events.push(`abort ${n}`));
        return n === 1 ? new Promise<number>(() => {}) : n;
      },
      { concurrency: 1, timeout: 100 },
    );
    const results: Result<number, number>[] = [];
    const consuming = (async () => {
      for await (const r of it) results.push(r);
    })();
    await vi.advanceTimersByTimeAsync(100);
    await consuming;
    expect(events).toEqual(['start 1', 'abort 1', 'start 2']);
    expect(results.map((r) => r.ok)).toEqual([false, true]);
  });
});

describe('a worker returning a thenable of its own', () => {
  /**
   * A thenable that calls back at once, inside `then` (as some "sync promise" libraries do),
   * typed as the Promise the worker type asks for: at run time the pool adopts any thenable.
   */
  const syncThenable = <T>(value: T): Promise<T> =>
    ({
      // biome-ignore lint/suspicious/noThenProperty: a user thenable, adopted by the pool.
      then(ok: (v: T) => void) {
        ok(value);
      },
    }) as unknown as Promise<T>;
  const JOBS = 10_000;

  it('that calls back at once, in runPool: a deep buffer of them all succeed', async () => {
    const gate = deferred<number>();
    let ok = 0;
    const consuming = (async () => {
      for await (const r of runPool(
        Array.from({ length: JOBS }, (_, n) => n),
        (n) => (n === 0 ? gate.promise : syncThenable(n)),
        { concurrency: 1, buffer: JOBS },
      )) {
        if (r.ok) ok++;
      }
    })();
    await flush();
    gate.resolve(0);
    await flush();
    expect(ok).toBe(JOBS);
    await consuming;
  });

  /**
   * A native promise with a `then` of its own that calls back at once: `await` ignores such an
   * own `then` (it uses the built-in one), so the pool must too — calling it let the job settle
   * inside the worker's start, and the next start inside that, until the stack overflowed.
   */
  const ownThen = <T>(value: T): Promise<T> => {
    const p = Promise.resolve(value);
    Object.defineProperty(p, 'then', {
      value: (ok: (v: T) => void) => {
        ok(value);
      },
    });
    return p;
  };

  it.each([
    ['a thenable that calls back at once', (n: number) => syncThenable(n)],
    ['a native promise with a then of its own that calls back at once', (n: number) => ownThen(n)],
  ])('%s: a deep queue all settle on a microtask and succeed (Pool)', async (_, outcome) => {
    const gate = deferred<number>();
    const pool = new Pool<number, number>((n) => (n === 0 ? gate.promise : outcome(n)), {
      concurrency: 1,
      queueSize: Infinity,
    });
    const tasks = Array.from({ length: JOBS }, (_, n) => pool.trySubmit(n));
    gate.resolve(0);
    // Every settlement and start is a microtask: one macrotask turn lets them all run.
    await flush();
    expect(pool.stats()).toMatchObject({ succeeded: JOBS, failed: 0, running: 0, queued: 0 });
    const results = await Promise.all(tasks.map((t) => t?.result));
    expect(results.every((r, n) => r?.ok && r.value === n)).toBe(true);
  });

  for (const engine of ['lean', 'full'] as const) {
    it(`a native promise with a then of its own that calls back at once: a deep buffer all succeed (runPool, ${engine} engine)`, async () => {
      const gate = deferred<number>();
      let ok = 0;
      let ended = false;
      const consuming = (async () => {
        for await (const r of runPool(
          Array.from({ length: JOBS }, (_, n) => n),
          (n) => (n === 0 ? gate.promise : ownThen(n)),
          // Hooks that want every job force the full engine (each job a JobRun).
          { concurrency: 1, buffer: JOBS, ...(engine === 'full' ? { [HOOKS]: {} } : {}) },
        )) {
          if (r.ok && r.value === r.index) ok++;
        }
        ended = true;
      })();
      await flush();
      gate.resolve(0);
      await flush();
      expect(ok).toBe(JOBS);
      await consuming;
      expect(ended).toBe(true);
    });
  }

  it('fulfilled with another thenable settles with the inner value, as await adopts it', async () => {
    const nested = () => syncThenable(syncThenable('inner'));
    const pool = new Pool<number, unknown>(nested as never, { concurrency: 1 });
    const result = await (await pool.submit(1)).result;
    expect(result.ok && result.value).toBe('inner');
    for await (const r of runPool([1], nested as never, { concurrency: 1 })) {
      expect(r.ok && r.value).toBe('inner');
    }
  });
});
