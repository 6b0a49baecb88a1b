/**
 * runPool with a lone `rate` gate: no gates' queue, the one pulled job waits parked for its
 * permit. The contract is the gated one (test/gates); these pin what is specific to this path,
 * and what the worker's context exposes.
 */
import diagnostics from 'node:diagnostics_channel';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AbortError,
  type RateLimiter,
  RateLimiterError,
  type Result,
  runPool,
  SLUICE_JOB_RATE_LIMITED,
} from '../src/index.js';
import { HOOKS } from '../src/scheduler/hooks.js';
import { LeanContext } from '../src/scheduler/lean-engine.js';
import { deferred, flush } from './helpers.js';

async function collect<J, R>(it: AsyncIterable<Result<J, R>>): Promise<Result<J, R>[]> {
  const out: Result<J, R>[] = [];
  for await (const r of it) out.push(r);
  return out;
}

describe('runPool: the worker context', () => {
  it('shows signal, index and workerId, and nothing that could settle the job', async () => {
    const results = await collect(
      runPool(
        [10, 11, 12],
        (job, ctx) => {
          for (const name of ['cancel', 'start', 'settle', 'job', 'complete', 'execute']) {
            expect(name in ctx).toBe(false);
          }
          expect(ctx.signal.aborted).toBe(false);
          return { job, index: ctx.index, workerId: ctx.workerId };
        },
        { concurrency: 2 },
      ),
    );
    expect(results).toHaveLength(3);
    for (const r of results) {
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.value.index).toBe(r.index);
        expect(r.value.job).toBe(r.job);
        expect(r.value.workerId).toBeGreaterThanOrEqual(0);
        expect(r.value.workerId).toBeLessThan(2);
      }
    }
  });

  it("a worker writing to its context changes neither its result's index nor the slots", async () => {
    const busy = new Set<number>();
    const results = await collect(
      runPool(
        Array.from({ length: 20 }, (_, i) => i),
        async (_job, ctx) => {
          const { workerId, index } = ctx;
          expect(busy.has(workerId)).toBe(false);
          busy.add(workerId);
          try {
            (ctx as { index: number }).index = 999;
          } catch {}
          try {
            (ctx as { workerId: number }).workerId = 0;
          } catch {}
          await flush();
          busy.delete(workerId);
          return index;
        },
        { concurrency: 3 },
      ),
    );
    expect(results.map((r) => r.index).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 20 }, (_, i) => i),
    );
    for (const r of results) expect(r.ok && r.value).toBe(r.index);
  });

  it('break aborts the signal a running worker holds, and its late outcome is dropped', async () => {
    const gate = deferred<void>();
    let signal: AbortSignal | undefined;
    for await (const r of runPool(
      [1, 2],
      async (job, ctx) => {
        if (job === 2) {
          signal = ctx.signal;
          await gate.promise;
        }
        return job;
      },
      { concurrency: 2 },
    )) {
      expect(r.ok && r.value).toBe(1);
      break;
    }
    expect(signal?.aborted).toBe(true);
    gate.resolve();
    await flush();
  });
});

describe('runPool: a lone rate gate', () => {
  it('a job pulled while the rate waits is parked: nothing more is pulled, and an abort settles it as AbortError without running', async () => {
    const ac = new AbortController();
    let pulled = 0;
    function* source() {
      for (let i = 0; i < 10; i++) {
        pulled++;
        yield i;
      }
    }
    const ran: number[] = [];
    const results: Result<number, number>[] = [];
    for await (const r of runPool(
      source(),
      async (i) => {
        ran.push(i);
        return i;
      },
      { concurrency: 4, rate: { limit: 1, interval: 60_000 }, signal: ac.signal },
    )) {
      results.push(r);
      if (results.length === 1) {
        await flush();
        // Job 0 started; job 1 waits for the next window, parked: no more pulls meanwhile.
        expect(pulled).toBe(2);
        ac.abort('stop');
      }
    }
    expect(ran).toEqual([0]);
    expect(results).toHaveLength(2);
    const parked = results[1] as Result<number, number>;
    expect(parked.index).toBe(1);
    expect(parked.ok === false && parked.error).toBeInstanceOf(AbortError);
    expect(pulled).toBe(2);
  });

  it('a limiter that throws fails only the job that asked; the next job asks again and runs', async () => {
    const answers: Array<number | Error> = [0, new Error('limiter down'), 0];
    const limiter: RateLimiter = {
      reserve() {
        const answer = answers.shift() ?? 0;
        if (answer instanceof Error) throw answer;
        return answer;
      },
    };
    const results = await collect(
      runPool([1, 2, 3], async (x) => x, { concurrency: 1, rate: limiter, ordered: true }),
    );
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    const failed = results[1] as Result<number, number>;
    expect(failed.ok === false && failed.error).toBeInstanceOf(RateLimiterError);
    expect(failed.ok === false && failed.error).toMatchObject({ code: 'ERR_RATE_LIMITER' });
    expect(failed.ok === false && (failed.error.cause as Error).message).toBe('limiter down');
  });

  it('an async limiter: each start waits for its permit, results in order when ordered', async () => {
    let asked = 0;
    const limiter: RateLimiter = {
      reserve() {
        asked++;
        return Promise.resolve(asked % 2 === 0 ? 5 : 0);
      },
    };
    const results = await collect(
      runPool([0, 1, 2, 3, 4], async (x) => x * 10, {
        concurrency: 2,
        rate: limiter,
        ordered: true,
      }),
    );
    expect(results.map((r) => r.ok && r.value)).toEqual([0, 10, 20, 30, 40]);
    expect(asked).toBe(5);
  });

  it('runs on the lean engine: a job whose permit is granted at once gets a lean context', async () => {
    const contexts: unknown[] = [];
    await collect(
      runPool(
        [1, 2, 3],
        (x, ctx) => {
          contexts.push(ctx);
          return x;
        },
        { concurrency: 2, rate: { limit: 1e9, interval: 1000 } },
      ),
    );
    expect(contexts).toHaveLength(3);
    for (const ctx of contexts) expect(ctx).toBeInstanceOf(LeanContext);
  });

  // Both engines: the lean one (a lone rate) and the full one (forced by hooks of its own).
  for (const engine of ['lean', 'full'] as const) {
    it(`a limiter that aborts the signal while asked, answering a wait, settles that job as AbortError at once (${engine} engine)`, async () => {
      const ac = new AbortController();
      let asked = 0;
      const limiter: RateLimiter = {
        reserve() {
          asked++;
          if (asked === 2) {
            ac.abort('stop');
            // The gate is stopped by now: no wake-up would ever come for a parked job.
            return 60_000;
          }
          return 0;
        },
      };
      const ran: number[] = [];
      const results = await collect(
        runPool(
          [1, 2, 3],
          async (x) => {
            ran.push(x);
            return x;
          },
          {
            concurrency: 1,
            rate: limiter,
            signal: ac.signal,
            ...(engine === 'full' ? { [HOOKS]: {} } : {}),
          },
        ),
      );
      expect(ran).toEqual([1]);
      expect(results.map((r) => r.index)).toEqual([0, 1]);
      const stopped = results[1] as Result<number, number>;
      expect(stopped.ok === false && stopped.error).toBeInstanceOf(AbortError);
    });
  }
});

describe('runPool with a lone rate: a next() called while the limiter is asked', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  for (const engine of ['lean', 'full'] as const) {
    it(`pulls nothing more until that job starts: every job yields once (${engine} engine)`, async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
      let results!: AsyncIterableIterator<Result<number, number>>;
      let fromLimiter: Promise<IteratorResult<Result<number, number>>> | undefined;
      let calls = 0;
      const limiter: RateLimiter = {
        reserve: () => {
          // The first ask pulls from inside the limiter (as a rate-limited subscriber could).
          if (++calls === 1) fromLimiter = results.next();
          return calls === 1 ? 20 : 0;
        },
      };
      results = runPool([0, 1, 2, 3], async (n: number) => n, {
        concurrency: 2,
        rate: limiter,
        ...(engine === 'full' ? { [HOOKS]: {} } : {}),
      });
      const jobs: number[] = [];
      const reading = (async () => {
        for await (const r of results) jobs.push(r.job);
      })();
      await vi.advanceTimersByTimeAsync(20);
      await reading;
      const extra = await (fromLimiter as Promise<IteratorResult<Result<number, number>>>);
      if (!extra.done) jobs.push(extra.value.job);
      expect(jobs.sort()).toEqual([0, 1, 2, 3]);
      expect(vi.getTimerCount()).toBe(0);
    });
  }
});

describe('runPool with a lone rate: a rate-limited subscriber that aborts', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  for (const engine of ['lean', 'full'] as const) {
    it(`leaves no timer: the gate stopped while it published its wait (${engine} engine)`, async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
      const ac = new AbortController();
      const onWait = () => ac.abort('from a subscriber');
      diagnostics.subscribe(SLUICE_JOB_RATE_LIMITED, onWait);
      try {
        const results = await collect(
          runPool([0, 1, 2], async (n: number) => n, {
            concurrency: 1,
            rate: { limit: 1, interval: 60_000 },
            signal: ac.signal,
            ...(engine === 'full' ? { [HOOKS]: {} } : {}),
          }),
        );
        expect(results.map((r) => r.ok)).toEqual([true, false]);
        expect(vi.getTimerCount()).toBe(0);
      } finally {
        diagnostics.unsubscribe(SLUICE_JOB_RATE_LIMITED, onWait);
      }
    });
  }
});
