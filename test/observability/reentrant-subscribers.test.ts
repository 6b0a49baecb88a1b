/**
 * Subscribers that call back into the pool. `diagnostics_channel` calls a subscriber
 * synchronously, in the middle of the pool's own step (accepting, starting, retrying or settling
 * a job): one that aborts the pool (or the runPool's signal) there must not let that job run
 * after the abort, wait for ever, or lose its result.
 */
import diagnostics from 'node:diagnostics_channel';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AbortError,
  Pool,
  type Result,
  runPool,
  SLUICE_JOB,
  SLUICE_JOB_ACCEPTED,
  SLUICE_JOB_RETRIED,
  SLUICE_JOB_SETTLED,
} from '../../src/index.js';
import { deferred, flush } from '../helpers.js';

interface Named {
  name: string;
  index: number;
}

const unsubscribers: (() => void)[] = [];

/** Subscribes `fn` to `channel` for the messages of the pool named `name`, until the test ends. */
function on(channel: string, name: string, fn: (m: Named) => void): void {
  const handler = (message: unknown): void => {
    if ((message as Named).name === name) fn(message as Named);
  };
  diagnostics.subscribe(channel, handler);
  unsubscribers.push(() => diagnostics.unsubscribe(channel, handler));
}

/** Subscribes `fn` to the `start` of the `sluice:job` tracing channel, for the pool `name`. */
function onStart(name: string, fn: (ctx: Named) => void): void {
  const noop = (): void => undefined;
  const handlers = {
    start: (ctx: unknown) => {
      if ((ctx as Named).name === name) fn(ctx as Named);
    },
    end: noop,
    asyncStart: noop,
    asyncEnd: noop,
    error: noop,
  };
  const channel = diagnostics.tracingChannel(SLUICE_JOB);
  channel.subscribe(handlers);
  unsubscribers.push(() => channel.unsubscribe(handlers));
}

afterEach(() => {
  for (const stop of unsubscribers.splice(0)) stop();
  vi.useRealTimers();
});

/** What each result says: `ok:job` or `<code>:job`. */
function outcomes<J>(results: Result<J, unknown>[]): string[] {
  return results.map((r) =>
    r.ok ? `ok:${String(r.job)}` : `${(r.error as { code?: string }).code}:${String(r.job)}`,
  );
}

/**
 * Reads the whole iteration; 'hung' when it has not ended once every callback, microtask and
 * immediate queued by then has run (the jobs here finish within microtasks and timers the test
 * advances).
 */
async function collectOrHang<J, R>(
  it: AsyncIterable<Result<J, R>>,
  advance: () => Promise<void> = flush,
): Promise<string[] | 'hung'> {
  const results: Result<J, R>[] = [];
  let done = false;
  const reading = (async () => {
    for await (const r of it) results.push(r);
    done = true;
  })();
  for (let i = 0; i < 5 && !done; i++) await advance();
  if (!done) return 'hung';
  await reading;
  return outcomes(results);
}

describe('Pool: a subscriber that aborts the pool', () => {
  it('on sluice:job:accepted with a free slot: the job never runs and is in the abort report', async () => {
    const ran: number[] = [];
    const pool = new Pool(async (n: number) => ran.push(n), { concurrency: 1, name: 'acc-free' });
    let report: Promise<unknown> | undefined;
    on(SLUICE_JOB_ACCEPTED, 'acc-free', () => {
      report ??= pool.abort('from a subscriber');
    });
    const task = await pool.submit(1);
    const result = await task.result;
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toBeInstanceOf(AbortError);
    expect(ran).toEqual([]);
    expect(await report).toMatchObject({ canceled: 1, canceledJobs: [1] });
    expect(pool.stats()).toMatchObject({ running: 0, queued: 0, canceled: 1, succeeded: 0 });
  });

  it('on sluice:job:accepted while every slot is busy: the queued job never runs', async () => {
    const ran: number[] = [];
    let release!: () => void;
    const pool = new Pool(
      (n: number) => {
        ran.push(n);
        return n === 0 ? new Promise<void>((r) => (release = r)) : undefined;
      },
      { concurrency: 1, name: 'acc-busy' },
    );
    await pool.submit(0);
    let report: Promise<unknown> | undefined;
    on(SLUICE_JOB_ACCEPTED, 'acc-busy', () => {
      report ??= pool.abort('from a subscriber');
    });
    const task = await pool.submit(1);
    release();
    const result = await task.result;
    expect(result.ok).toBe(false);
    expect(ran).toEqual([0]);
    expect(await report).toMatchObject({ canceled: 2, canceledJobs: [0, 1] });
  });

  it('on sluice:job:accepted of a prioritised job: canceled and in the abort report', async () => {
    const ran: number[] = [];
    const pool = new Pool(async (n: number) => ran.push(n), { concurrency: 1, name: 'acc-prio' });
    let report: Promise<unknown> | undefined;
    on(SLUICE_JOB_ACCEPTED, 'acc-prio', () => {
      report ??= pool.abort('from a subscriber');
    });
    const result = await (await pool.submit(1, { priority: 5 })).result;
    expect(result.ok).toBe(false);
    expect(ran).toEqual([]);
    expect(await report).toMatchObject({ canceled: 1, canceledJobs: [1] });
  });

  it('on sluice:job:retried: the job settles as canceled instead of waiting to retry for ever', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const pool = new Pool<number, unknown>(
      () => {
        throw new Error('fails');
      },
      { concurrency: 1, name: 'retried-abort', retry: { attempts: 3, backoff: () => 10 } },
    );
    let report: Promise<unknown> | undefined;
    on(SLUICE_JOB_RETRIED, 'retried-abort', () => {
      report ??= pool.abort('from a subscriber');
    });
    const task = await pool.submit(1);
    let settled: Result<number, unknown> | undefined;
    void task.result.then((r) => {
      settled = r;
    });
    await vi.advanceTimersByTimeAsync(100);
    expect(settled?.ok).toBe(false);
    if (settled?.ok === false) expect(settled.error).toBeInstanceOf(AbortError);
    expect(pool.stats()).toMatchObject({ queued: 0, waiting: { retry: 0 }, canceled: 1 });
    expect(await report).toMatchObject({ canceled: 1, canceledJobs: [1] });
  });

  it('on the sluice:job start: the worker is never called', async () => {
    const ran: number[] = [];
    const pool = new Pool(async (n: number) => ran.push(n), {
      concurrency: 1,
      name: 'start-abort',
    });
    onStart('start-abort', () => void pool.abort('from a subscriber'));
    const result = await (await pool.submit(1)).result;
    expect(result.ok).toBe(false);
    expect(ran).toEqual([]);
  });

  it('on sluice:job:settled of the jobs abort() cancels: a nested abort() is a no-op, not one level deeper per job', async () => {
    // Each nested abort() canceled the next job itself, from inside the previous job's
    // settlement: one level deeper per job (20,000 running jobs overflowed the stack).
    const jobs = 100;
    const pool = new Pool<number, never>(() => new Promise<never>(() => undefined), {
      concurrency: jobs,
      name: 'settled-abort',
    });
    let outer: Promise<unknown> | undefined;
    let depth = 0;
    let deepest = 0;
    on(SLUICE_JOB_SETTLED, 'settled-abort', () => {
      // The usual guard, which cannot work before the outer abort() returned.
      if (outer !== undefined) return;
      depth++;
      deepest = Math.max(deepest, depth);
      void pool.abort('from a subscriber');
      depth--;
    });
    const tasks = Array.from({ length: jobs }, (_, i) => pool.trySubmit(i));
    outer = pool.abort('outer');
    expect(deepest).toBe(1);
    expect(await outer).toMatchObject({ canceled: jobs });
    const results = await Promise.all(tasks.map((t) => t?.result));
    expect(results.every((r) => r?.ok === false)).toBe(true);
    expect(pool.stats()).toMatchObject({ running: 0, canceled: jobs });
  });

  it("on sluice:job:settled of the jobs abort() cancels: a nested abort() returns the first call's promise and report", async () => {
    const jobs = 3;
    const pool = new Pool<number, never>(() => new Promise<never>(() => undefined), {
      concurrency: jobs,
      name: 'settled-abort-promise',
    });
    const nested: Promise<unknown>[] = [];
    let armed = false;
    on(SLUICE_JOB_SETTLED, 'settled-abort-promise', () => {
      if (armed) nested.push(pool.abort('from a subscriber'));
    });
    for (let i = 0; i < jobs; i++) pool.trySubmit(i);
    armed = true;
    const outer = pool.abort('outer');
    expect(nested).toHaveLength(jobs);
    for (const p of nested) expect(p).toBe(outer);
    expect(await outer).toMatchObject({ canceled: jobs });
  });

  it('a subscriber on sluice:job:retried alone hears every retry', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let calls = 0;
    const pool = new Pool(
      () => {
        if (++calls < 3) throw new Error('fails');
        return 'done';
      },
      { concurrency: 1, name: 'retried-only', retry: { attempts: 3, backoff: () => 1 } },
    );
    const heard: number[] = [];
    on(SLUICE_JOB_RETRIED, 'retried-only', (m) =>
      heard.push((m as Named & { attempt: number }).attempt),
    );
    const task = await pool.submit(1);
    await vi.advanceTimersByTimeAsync(10);
    expect((await task.result).ok).toBe(true);
    expect(heard).toEqual([1, 2]);
  });
});

describe('runPool: a subscriber that aborts its signal', () => {
  it.each([false, true])(
    'on sluice:job:accepted (gated: %s): that job never runs, settles as canceled, the iteration ends',
    async (gated) => {
      const controller = new AbortController();
      const ran: number[] = [];
      on(SLUICE_JOB_ACCEPTED, 'rp-acc', (m) => {
        if (m.index === 1) controller.abort('from a subscriber');
      });
      const it = runPool(
        [0, 1, 2, 3],
        async (n: number) => {
          ran.push(n);
          return n;
        },
        {
          concurrency: 2,
          signal: controller.signal,
          name: 'rp-acc',
          ...(gated ? { priority: (n: number) => n } : {}),
        },
      );
      const out = await collectOrHang(it);
      expect(out).not.toBe('hung');
      expect(ran).not.toContain(1);
      expect(out).toContain('ERR_ABORTED:1');
      expect(out).toHaveLength(2);
    },
  );

  it('on sluice:job:retried: the job settles as canceled, the iteration ends', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const controller = new AbortController();
    on(SLUICE_JOB_SETTLED, 'rp-retried', () => undefined); // events are published while any job channel listens
    on(SLUICE_JOB_RETRIED, 'rp-retried', () => controller.abort('from a subscriber'));
    const it = runPool(
      [0],
      () => {
        throw new Error('fails');
      },
      {
        concurrency: 1,
        signal: controller.signal,
        name: 'rp-retried',
        retry: { attempts: 3, backoff: () => 10 },
      },
    );
    const out = await collectOrHang(it, async () => {
      await vi.advanceTimersByTimeAsync(20);
    });
    expect(out).toEqual(['ERR_ABORTED:0']);
  });

  it.each([false, true])(
    'on sluice:job:settled of the last job (gated: %s): its result is still yielded',
    async (gated) => {
      const controller = new AbortController();
      on(SLUICE_JOB_SETTLED, 'rp-settled', (m) => {
        if (m.index === 1) controller.abort('from a subscriber');
      });
      const it = runPool([0, 1], async (n: number) => n, {
        concurrency: 1,
        signal: controller.signal,
        name: 'rp-settled',
        ...(gated ? { priority: () => 0 } : {}),
      });
      expect(await collectOrHang(it)).toEqual(['ok:0', 'ok:1']);
    },
  );

  it('on sluice:job:settled of the jobs an abort cancels, return(): one level deep, not one per job', async () => {
    const jobs = 100;
    const controller = new AbortController();
    let depth = 0;
    let deepest = 0;
    const it = runPool(
      Array.from({ length: jobs }, (_, i) => i),
      () => new Promise<never>(() => undefined),
      { concurrency: jobs, signal: controller.signal, name: 'rp-settled-return' },
    );
    on(SLUICE_JOB_SETTLED, 'rp-settled-return', () => {
      depth++;
      deepest = Math.max(deepest, depth);
      void it.return?.();
      depth--;
    });
    const first = it.next();
    await flush();
    controller.abort('outer');
    expect((await first).done).toBe(true);
    expect(deepest).toBe(1);
  });

  it('on the sluice:job start: the worker is never called', async () => {
    const controller = new AbortController();
    const ran: number[] = [];
    onStart('rp-start', () => controller.abort('from a subscriber'));
    const it = runPool(
      [0],
      async (n: number) => {
        ran.push(n);
        return n;
      },
      { concurrency: 1, signal: controller.signal, name: 'rp-start' },
    );
    expect(await collectOrHang(it)).toEqual(['ERR_ABORTED:0']);
    expect(ran).toEqual([]);
  });
});

describe('a subscriber that submits or pulls from inside an acceptance', () => {
  it('Pool: submits from sluice:job:accepted find the place of the job being accepted taken (queueSize holds)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const pool = new Pool(
      async (job: string) => {
        await gate;
        return job;
      },
      { concurrency: 1, queueSize: 3, name: 'nested-submit' },
    );
    await pool.submit('running');
    let calls = 0;
    // Each acceptance submits one more job, from inside the acceptance: without the count of
    // the job being admitted, each nested call saw the same free place (and recursed for ever).
    on(SLUICE_JOB_ACCEPTED, 'nested-submit', () => {
      if (++calls < 100) pool.trySubmit(`nested ${calls}`);
    });
    pool.trySubmit('outer');
    expect(pool.stats()).toMatchObject({ running: 1, queued: 3, submitted: 4 });
    release();
    await pool.drain();
  });

  it('Pool: a key function that submits finds the place of the job it keys taken', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    const pool: Pool<string, string> = new Pool(
      async (job: string) => {
        await gate;
        return job;
      },
      {
        concurrency: 1,
        queueSize: 2,
        key: (job) => {
          if (job !== 'running' && ++calls < 100) pool.trySubmit(`nested ${calls}`);
          return job;
        },
        perKey: { concurrency: Number.POSITIVE_INFINITY },
      },
    );
    await pool.submit('running');
    pool.trySubmit('outer');
    const { running, queued } = pool.stats();
    expect(running + queued).toBeLessThanOrEqual(3); // concurrency + queueSize
    release();
    await pool.drain();
  });

  it('runPool: a next() from sluice:job:accepted pulls the next job under the next index', async () => {
    const it = runPool([0, 1, 2, 3], async (n: number) => n, {
      concurrency: 1,
      buffer: 1,
      ordered: true,
      name: 'nested-next',
    });
    const announced: string[] = [];
    let nested: Promise<IteratorResult<Result<number, number>, undefined>> | undefined;
    on(SLUICE_JOB_ACCEPTED, 'nested-next', (m) => {
      announced.push(`${String((m as Named & { job: number }).job)}@${m.index}`);
      if (m.index === 0) nested = it.next();
    });
    const first = await it.next();
    const second = await nested;
    const rest: string[] = [];
    for await (const r of it) rest.push(`${r.job}@${r.index}`);
    expect(announced).toEqual(['0@0', '1@1', '2@2', '3@3']);
    expect(first.value).toMatchObject({ job: 0, index: 0 });
    expect(second?.value).toMatchObject({ job: 1, index: 1 });
    expect(rest).toEqual(['2@2', '3@3']);
  });

  /** The engines a runPool can take: lean, the full one (forced by a timeout), rate-only, gated. */
  const engines = {
    lean: {},
    full: { timeout: 60_000 },
    rate: { rate: { limit: 100, interval: 60_000 } },
    gated: { priority: () => 0 },
  } as const;

  it.each(Object.keys(engines))(
    'runPool (%s): a next() from sluice:job:accepted does not start a job in the slot of the job being accepted (concurrency holds)',
    async (engine) => {
      const name = `nested-next-bound-${engine}`;
      const release = deferred<void>();
      let running = 0;
      let peak = 0;
      const it = runPool(
        [0, 1, 2, 3],
        async (n: number) => {
          running++;
          peak = Math.max(peak, running);
          await release.promise;
          running--;
          return n;
        },
        { concurrency: 1, buffer: 1, name, ...engines[engine as keyof typeof engines] },
      );
      let nested: Promise<unknown> | undefined;
      on(SLUICE_JOB_ACCEPTED, name, (m) => {
        if (m.index === 0) nested = it.next();
      });
      const first = it.next();
      await flush();
      const peakBeforeRelease = peak;
      release.resolve();
      await first;
      await nested;
      for await (const _ of it);
      expect(peakBeforeRelease).toBe(1);
      expect(peak).toBe(1);
    },
  );

  it.each(Object.keys(engines))(
    "runPool (%s): a subscriber of the only job's acceptance that aborts the signal: that job's result is yielded before the end",
    async (engine) => {
      const name = `accepted-abort-only-${engine}`;
      const controller = new AbortController();
      on(SLUICE_JOB_ACCEPTED, name, () => controller.abort('from a subscriber'));
      const it = runPool([0, 1], async (n: number) => n, {
        concurrency: 1,
        signal: controller.signal,
        name,
        ...engines[engine as keyof typeof engines],
      });
      expect(await collectOrHang(it)).toEqual(['ERR_ABORTED:0']);
    },
  );
});

describe('Pool: a drain() from user code run for a job between its places', () => {
  it.each([false, true])(
    'from sluice:job:accepted (gated: %s): drain() resolves after that job, counted as completed',
    async (gated) => {
      const name = `drain-accepted-${gated}`;
      const release = deferred<void>();
      const events: string[] = [];
      const pool = new Pool(
        async (n: number) => {
          events.push(`start ${n}`);
          await release.promise;
          events.push(`end ${n}`);
          return n;
        },
        { concurrency: 1, name, ...(gated ? { key: () => 'k' } : {}) },
      );
      let draining: Promise<unknown> | undefined;
      on(SLUICE_JOB_ACCEPTED, name, () => {
        draining = pool.drain().then((report) => {
          events.push('drained');
          return report;
        });
      });
      const task = pool.trySubmit(1);
      await flush();
      release.resolve();
      const report = await draining;
      expect(events).toEqual(['start 1', 'end 1', 'drained']);
      expect(report).toMatchObject({ completed: 1, canceled: 0 });
      expect(await task?.result).toMatchObject({ ok: true, value: 1 });
    },
  );

  it('from retryIf: drain() waits for the retry, counted as completed', async () => {
    const events: string[] = [];
    let draining: Promise<unknown> | undefined;
    let attempts = 0;
    const pool: Pool<number, number> = new Pool(
      async (n: number) => {
        if (++attempts === 1) throw new Error('first attempt fails');
        events.push(`retried ${n}`);
        return n;
      },
      {
        concurrency: 1,
        retry: {
          attempts: 2,
          backoff: () => 0,
          retryIf: () => {
            draining = pool.drain().then((report) => {
              events.push('drained');
              return report;
            });
            return true;
          },
        },
      },
    );
    const task = await pool.submit(1);
    expect(await task.result).toMatchObject({ ok: true, value: 1 });
    const report = await draining;
    expect(events).toEqual(['retried 1', 'drained']);
    expect(report).toMatchObject({ completed: 1, canceled: 0 });
  });
});
