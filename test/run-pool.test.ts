import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AbortError, JobFailedError, type Result, runPool, TimeoutError } from '../src/index.js';
import { HOOKS } from '../src/scheduler/hooks.js';
import { deferred, flush, nonObjectIteratorSources, thrownBy } from './helpers.js';

async function collect<J, R>(it: AsyncIterable<Result<J, R>>): Promise<Result<J, R>[]> {
  const out: Result<J, R>[] = [];
  for await (const r of it) out.push(r);
  return out;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('runPool: concurrency', () => {
  it('never runs more than `concurrency` workers at once (peak recorded)', async () => {
    let running = 0;
    let peak = 0;
    const results = await collect(
      runPool(
        Array.from({ length: 200 }, (_, i) => i),
        async (i) => {
          running++;
          peak = Math.max(peak, running);
          await sleep(i % 3);
          running--;
          return i;
        },
        { concurrency: 7 },
      ),
    );
    expect(results).toHaveLength(200);
    expect(peak).toBe(7);
  });

  it('workerId is a slot number below concurrency, unique among running jobs', async () => {
    const busy = new Set<number>();
    const results = await collect(
      runPool(
        Array.from({ length: 50 }, (_, i) => i),
        async (_i, { workerId }) => {
          expect(workerId).toBeGreaterThanOrEqual(0);
          expect(workerId).toBeLessThan(4);
          expect(busy.has(workerId)).toBe(false);
          busy.add(workerId);
          await flush();
          busy.delete(workerId);
        },
        { concurrency: 4 },
      ),
    );
    expect(results.every((r) => r.ok)).toBe(true);
  });
});

describe('runPool: lazy pulling and break', () => {
  it('pulls at most consumed + concurrency + buffer from a 1,000,000-item lazy source', async () => {
    let pulled = 0;
    function* source() {
      for (let i = 0; i < 1_000_000; i++) {
        pulled++;
        yield i;
      }
    }
    let consumed = 0;
    let worst = 0;
    for await (const r of runPool(source(), async (x) => x, { concurrency: 4, buffer: 8 })) {
      expect(r.ok).toBe(true);
      consumed++;
      worst = Math.max(worst, pulled - consumed);
      await sleep(10);
      worst = Math.max(worst, pulled - consumed);
      if (consumed === 10) break;
    }
    expect(worst).toBeLessThanOrEqual(4 + 8);
    expect(pulled).toBeLessThanOrEqual(consumed + 4 + 8);
    const atBreak = pulled;
    await sleep(20);
    expect(pulled).toBe(atBreak);
  });

  it('breaking out stops pulling, closes the source and aborts in-flight workers', async () => {
    let pulled = 0;
    let closed = false;
    function* source() {
      try {
        for (let i = 0; ; i++) {
          pulled++;
          yield i;
        }
      } finally {
        closed = true;
      }
    }
    const aborted: number[] = [];
    const started: number[] = [];
    for await (const r of runPool(
      source(),
      (i, { signal }) => {
        started.push(i);
        if (i === 0) return 'fast';
        // The others hang until aborted.
        return new Promise<string>((_, reject) =>
          signal.addEventListener('abort', () => {
            aborted.push(i);
            reject(signal.reason);
          }),
        );
      },
      { concurrency: 3, buffer: 0 },
    )) {
      expect(r).toMatchObject({ ok: true, value: 'fast' });
      break;
    }
    expect(closed).toBe(true);
    await flush();
    expect(aborted.sort()).toEqual(started.filter((i) => i !== 0).sort());
    expect(aborted.length).toBeGreaterThan(0);
    const atBreak = pulled;
    await flush();
    expect(pulled).toBe(atBreak);
  });

  it('an async source is pulled one item at a time and lazily', async () => {
    let pulled = 0;
    async function* source() {
      for (let i = 0; i < 100; i++) {
        pulled++;
        await flush();
        yield i;
      }
    }
    const it = runPool(source(), async (x) => x * 2, { concurrency: 2, buffer: 1 });
    const first = await it.next();
    expect(first.done).toBe(false);
    await flush();
    await flush();
    expect(pulled).toBeLessThanOrEqual(1 + 2 + 1);
    const rest = await collect(it);
    expect(rest.length + 1).toBe(100);
  });
});

describe('runPool: errors are values', () => {
  it('throw, reject, sync throw and non-Error values each arrive as { ok: false } and later jobs run', async () => {
    const weird = { reason: 'not an error' };
    const results = await collect(
      runPool(
        [0, 1, 2, 3, 4, 5],
        (i): number | Promise<number> => {
          if (i === 0) throw new Error('sync throw');
          if (i === 1) return Promise.reject(new TypeError('rejected'));
          if (i === 2)
            return (async () => {
              throw new RangeError('async throw');
            })();
          if (i === 3) throw weird;
          if (i === 4) return Promise.reject('a string');
          return i * 10;
        },
        { concurrency: 2, ordered: true },
      ),
    );
    expect(results.map((r) => r.ok)).toEqual([false, false, false, false, false, true]);
    const errors = results.map((r) => (r.ok ? undefined : r.error));
    expect(errors[0]).toBeInstanceOf(Error);
    expect(errors[0]?.message).toBe('sync throw');
    expect(errors[1]).toBeInstanceOf(TypeError);
    expect(errors[2]).toBeInstanceOf(RangeError);
    expect(errors[3]).toBeInstanceOf(JobFailedError);
    expect(errors[3]?.cause).toBe(weird);
    expect(errors[4]).toBeInstanceOf(JobFailedError);
    expect(errors[4]?.cause).toBe('a string');
    expect(results[3]).toMatchObject({ ok: false, job: 3, index: 3 });
    expect(results[5]).toMatchObject({ ok: true, job: 5, index: 5, value: 50 });
  });

  it('a source that throws: pulled jobs still yield, then iteration throws the source error', async () => {
    function* source() {
      yield 1;
      yield 2;
      throw new Error('source broke');
    }
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const r of runPool(source(), async (x) => x, { concurrency: 4 })) {
          if (r.ok) seen.push(r.value);
        }
      })(),
    ).rejects.toThrow('source broke');
    expect(seen.sort()).toEqual([1, 2]);
  });

  it.each([
    ['lean engine', {}],
    ['gated engine', { retry: { attempts: 1 } }],
  ])(
    "an async source's promise whose constructor cannot be read is the source failing, as in for await (%s)",
    async (_, gates) => {
      const hostile = Promise.resolve({ done: false, value: 2 });
      Object.defineProperty(hostile, 'constructor', {
        get() {
          throw new Error('no constructor');
        },
      });
      let pulls = 0;
      const source: AsyncIterable<number> = {
        [Symbol.asyncIterator]: () => ({
          // The first step is read inside next(); the second when job 1 settles (a reaction).
          next: () => (++pulls === 1 ? Promise.resolve({ done: false, value: 1 }) : hostile),
        }),
      };
      const seen: number[] = [];
      const run = (async () => {
        for await (const r of runPool(source, async (x: number) => x, {
          concurrency: 1,
          ...gates,
        })) {
          if (r.ok) seen.push(r.value);
        }
      })();
      // Without the fix the throw escapes a promise reaction and the iteration waits for ever.
      const hung = new Promise((resolve) => setTimeout(resolve, 5_000, 'hung'));
      await expect(Promise.race([run, hung])).rejects.toThrow('no constructor');
      expect(seen).toEqual([1]);
    },
  );
});

describe('runPool: ordering', () => {
  const durations = [200, 500, 100, 300, 600, 60];

  async function runTimed(ordered: boolean) {
    vi.useFakeTimers();
    const t0 = Date.now();
    const startedAt: number[] = [];
    const it = runPool(
      durations.map((d, i) => ({ d, i })),
      async ({ d, i }) => {
        startedAt[i] = Date.now() - t0;
        await new Promise((resolve) => setTimeout(resolve, d));
        return i;
      },
      { concurrency: 3, ordered },
    );
    const order: number[] = [];
    const done = (async () => {
      for await (const r of it) if (r.ok) order.push(r.value);
    })();
    await vi.advanceTimersByTimeAsync(2_000);
    await done;
    return { startedAt, order };
  }

  it('ordered: yields in input order without holding back starts (job 4 starts at 100 ms)', async () => {
    const { startedAt, order } = await runTimed(true);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(startedAt[3]).toBe(100);
    expect(startedAt).toEqual([0, 0, 0, 100, 200, 400]);
  });

  it('unordered (default): yields in completion order', async () => {
    const { order } = await runTimed(false);
    // Completion times: 0→200, 1→500, 2→100, 3→400, 4→800, 5→460.
    expect(order).toEqual([2, 0, 3, 5, 1, 4]);
  });
});

describe('runPool: timeout', () => {
  it('is measured from the job start, aborts the worker signal, yields TimeoutError and frees the slot', async () => {
    vi.useFakeTimers();
    const t0 = Date.now();
    const startedAt: number[] = [];
    let abortReason: unknown;
    const it = runPool(
      [0, 1],
      (i, { signal }) => {
        startedAt[i] = Date.now() - t0;
        if (i === 0) {
          return new Promise<number>(() => {
            signal.addEventListener('abort', () => {
              abortReason = signal.reason;
            });
          });
        }
        return i;
      },
      { concurrency: 1, timeout: 50 },
    );
    const results: Result<number, number>[] = [];
    const done = (async () => {
      for await (const r of it) results.push(r);
    })();
    await vi.advanceTimersByTimeAsync(49);
    expect(results).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    await done;
    expect(results[0]).toMatchObject({ ok: false, index: 0 });
    const error = results[0]?.ok === false ? results[0].error : undefined;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ code: 'ERR_TIMEOUT', timeout: 50 });
    expect(abortReason).toBe(error);
    expect(startedAt[1]).toBe(50);
    expect(results[1]).toMatchObject({ ok: true, value: 1 });
  });
});

describe('runPool: aborting the signal', () => {
  it('stops pulling, aborts in-flight workers, yields one result per pulled job, then ends', async () => {
    const ac = new AbortController();
    let pulled = 0;
    function* source() {
      for (let i = 0; i < 1000; i++) {
        pulled++;
        yield i;
      }
    }
    const gate = deferred<void>();
    const workerSignals: AbortSignal[] = [];
    const results: Result<number, number>[] = [];
    for await (const r of runPool(
      source(),
      async (i, { signal }) => {
        workerSignals.push(signal);
        if (i < 2) return i;
        await gate.promise;
        return i;
      },
      { concurrency: 3, signal: ac.signal },
    )) {
      results.push(r);
      if (results.length === 2) ac.abort('shutdown');
    }
    const pulledAtEnd = pulled;
    expect(results).toHaveLength(pulledAtEnd);
    expect(new Set(results.map((r) => r.index)).size).toBe(pulledAtEnd);
    const canceled = results.filter((r) => !r.ok);
    expect(canceled.length).toBeGreaterThan(0);
    for (const r of canceled) {
      expect(r.ok === false && r.error).toBeInstanceOf(AbortError);
      expect(r.ok === false && r.error.cause).toBe('shutdown');
    }
    expect(workerSignals.filter((s) => s.aborted)).toHaveLength(canceled.length);
    gate.resolve();
    await flush();
    expect(pulled).toBe(pulledAtEnd);
  });

  it('an already-aborted signal pulls nothing', async () => {
    let pulled = 0;
    function* source() {
      pulled++;
      yield 1;
    }
    const results = await collect(
      runPool(source(), async (x) => x, { concurrency: 2, signal: AbortSignal.abort() }),
    );
    expect(results).toEqual([]);
    expect(pulled).toBe(0);
  });
});

describe('runPool: bad options', () => {
  it.each([
    [0, RangeError],
    [-1, RangeError],
    [1.5, RangeError],
    [Number.NaN, RangeError],
    ['4', TypeError],
    [undefined, TypeError],
  ])('concurrency %s throws %s naming the option and value', (value, Type) => {
    const call = () => runPool([1], (x) => x, { concurrency: value as number });
    expect(call).toThrow(Type);
    expect(call).toThrow(new RegExp(`"concurrency".*${String(value).replace('.', '\\.')}`));
  });

  it('negative timeout and buffer are rejected with the option name', () => {
    expect(() => runPool([1], (x) => x, { concurrency: 1, timeout: -5 })).toThrow(/"timeout".*-5/);
    expect(() => runPool([1], (x) => x, { concurrency: 1, buffer: -1 })).toThrow(/"buffer".*-1/);
    expect(() => runPool(42 as unknown as number[], (x) => x, { concurrency: 1 })).toThrow(
      TypeError,
    );
  });
});

/** A hand-written async iterator: `steps[i]` is what the i-th `next()` does. */
function handWritten<T>(steps: (() => unknown)[], onReturn?: () => unknown): AsyncIterable<T> {
  let i = 0;
  return {
    [Symbol.asyncIterator]: () => ({
      next: () => (steps[i++] ?? (() => Promise.resolve({ done: true, value: undefined })))(),
      ...(onReturn ? { return: onReturn } : {}),
    }),
  } as AsyncIterable<T>;
}

/** Collects unhandled rejections while `body` runs (and one macrotask after). */
async function noUnhandled(body: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const onUnhandled = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    await body();
    await flush();
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  return seen;
}

describe('runPool: hand-written async sources', () => {
  it.each([
    ['lean', { concurrency: 2 }],
    ['lone rate', { concurrency: 2, rate: { limit: 100, interval: 1000 } }],
    ['full', { concurrency: 2, timeout: 1000 }],
  ] as const)(
    'an iterator factory answering a non-object fails as for await fails, on the %s engine',
    async (_engine, opts) => {
      for (const [source, forAwait] of await nonObjectIteratorSources()) {
        const ours = await thrownBy(() => runPool(source, (x: number) => x, opts));
        expect(ours).toBeInstanceOf(TypeError);
        expect((ours as TypeError).message).toBe((forAwait as TypeError).message);
      }
    },
  );

  it('a value that a source without return() yields after abort, from a pull already pending, settles as canceled', async () => {
    const ac = new AbortController();
    const late = deferred<IteratorResult<number>>();
    const source = handWritten<number>([
      () => Promise.resolve({ done: false, value: 0 }),
      () => late.promise,
    ]);
    const results: Result<number, number>[] = [];
    const consuming = (async () => {
      for await (const r of runPool(source, async (x: number) => x, {
        concurrency: 1,
        signal: ac.signal,
      })) {
        results.push(r);
      }
    })();
    await flush(); // 0 is through; the pull of 1 is pending
    ac.abort('stop');
    await flush();
    late.resolve({ done: false, value: 1 });
    await consuming;
    expect(results.map((r) => [r.job, r.ok])).toEqual([
      [0, true],
      [1, false],
    ]);
    const r1 = results[1];
    expect(r1?.ok === false && r1.error).toBeInstanceOf(AbortError);
  });

  it('a next() that throws synchronously: earlier results, then that error, nothing unhandled', async () => {
    const boom = new Error('next() threw');
    const source = handWritten<number>([
      () => Promise.resolve({ done: false, value: 1 }),
      () => Promise.resolve({ done: false, value: 2 }),
      () => {
        throw boom;
      },
    ]);
    const seen: number[] = [];
    const unhandled = await noUnhandled(async () => {
      await expect(
        (async () => {
          for await (const r of runPool(source, async (x: number) => x, { concurrency: 2 })) {
            if (r.ok) seen.push(r.value);
          }
        })(),
      ).rejects.toBe(boom);
    });
    expect(seen.sort()).toEqual([1, 2]);
    expect(unhandled).toEqual([]);
  });

  it('a next() that returns a plain { value, done } object (no promise) is accepted, as for await accepts it', async () => {
    const source = handWritten<number>([
      () => ({ done: false, value: 1 }),
      () => ({ done: false, value: 2 }),
      () => ({ done: true, value: undefined }),
    ]);
    const results = await collect(runPool(source, async (x: number) => x * 10, { concurrency: 2 }));
    expect(results.map((r) => r.ok && r.value).sort()).toEqual([10, 20]);
  });

  it('a next() that resolves to a non-object fails the iteration with a TypeError, as for await does', async () => {
    const source = handWritten<number>([
      () => Promise.resolve({ done: false, value: 1 }),
      () => Promise.resolve(undefined),
    ]);
    const seen: number[] = [];
    const unhandled = await noUnhandled(async () => {
      await expect(
        (async () => {
          for await (const r of runPool(source, async (x: number) => x, { concurrency: 1 })) {
            if (r.ok) seen.push(r.value);
          }
        })(),
      ).rejects.toBeInstanceOf(TypeError);
    });
    expect(seen).toEqual([1]);
    expect(unhandled).toEqual([]);
  });

  it('a value yielded after abort by a pull already pending settles as a canceled result, never dropped', async () => {
    const ac = new AbortController();
    const gate = deferred<void>();
    async function* source() {
      yield 0;
      await gate.promise;
      yield 1;
      yield 2; // never pulled: the source is closed once 1 arrived
    }
    const results: Result<number, number>[] = [];
    const consuming = (async () => {
      for await (const r of runPool(
        source(),
        (_x: number, { signal }) =>
          new Promise<number>((_, reject) =>
            signal.addEventListener('abort', () => reject(signal.reason)),
          ),
        { concurrency: 2, signal: ac.signal },
      )) {
        results.push(r);
      }
    })();
    await flush(); // job 0 runs; the pull of 1 waits on the gate
    ac.abort('stop');
    await flush();
    gate.resolve();
    await consuming;
    expect(results.map((r) => r.job).sort()).toEqual([0, 1]);
    for (const r of results) {
      expect(r.ok === false && r.error).toBeInstanceOf(AbortError);
      expect(r.ok === false && r.error.cause).toBe('stop');
    }
  });
});

describe('runPool: a stop right after a pull the source answered', () => {
  it('an abort right after the source answered a pull still yields its value, even when return() throws synchronously', async () => {
    const ac = new AbortController();
    let pulls = 0;
    const source = {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          if (pulls === 2) return new Promise<IteratorResult<number>>(() => undefined);
          // The source answers the pull for 1 at once; the abort comes a microtask later.
          if (pulls === 1) queueMicrotask(() => ac.abort('stop'));
          return Promise.resolve({ done: false, value: pulls++ });
        },
        return: () => {
          throw new Error('return() failed');
        },
      }),
    } as AsyncIterable<number>;
    const results: Result<number, number>[] = [];
    for await (const r of runPool(source, (x: number) => x, { concurrency: 2, signal: ac.signal }))
      results.push(r);
    expect(pulls).toBe(2);
    expect(results.map((r) => r.job).sort()).toEqual([0, 1]);
  });
});

describe('runPool: a sync source whose next() re-enters the results iterator', () => {
  /**
   * A hand-written sync source whose second next() calls `reenter` (once) before answering (as for
   * await would never let it: the pull is in progress). Each case runs on both engines: the
   * lean one and the full one (hooks that want every job).
   */
  async function drive(
    reenter: (it: AsyncIterableIterator<Result<number, number>>) => void,
    full: boolean,
    signal?: AbortSignal,
  ) {
    const events: string[] = [];
    let it: AsyncIterableIterator<Result<number, number>> | undefined;
    let i = 0;
    let reentered = false;
    const source: Iterable<number> = {
      [Symbol.iterator]: () => ({
        next: () => {
          if (i === 1 && !reentered) {
            reentered = true;
            reenter(it as AsyncIterableIterator<Result<number, number>>);
          }
          return i < 4 ? { value: i++, done: false } : { value: undefined, done: true };
        },
        return: () => {
          events.push('source closed');
          return { value: undefined, done: true };
        },
      }),
    };
    const gates = [deferred<void>(), deferred<void>(), deferred<void>(), deferred<void>()];
    const contexts: { n: number; workerId: number; signal: AbortSignal }[] = [];
    it = runPool(
      source,
      async (n, ctx) => {
        contexts.push({ n, workerId: ctx.workerId, signal: ctx.signal });
        events.push(`start ${n}`);
        await gates[n]?.promise;
        return n;
      },
      { concurrency: 2, buffer: 0, signal, ...(full ? { [HOOKS]: {} } : {}) },
    );
    return { it, events, contexts, gates };
  }

  for (const engine of ['lean', 'full'] as const) {
    const full = engine === 'full';

    it(`return() from inside the pull: the value it brings never runs (${engine} engine)`, async () => {
      const d = await drive((it) => void it.return?.(), full);
      expect(await d.it.next()).toEqual({ done: true, value: undefined });
      await flush();
      // Job 0 started before the return and was aborted by it; job 1, pulled during it, never runs.
      expect(d.events).toEqual(['start 0', 'source closed']);
      expect(d.contexts.every((c) => c.signal.aborted)).toBe(true);
      for (const g of d.gates) g.resolve();
      await flush();
    });

    it(`an abort from inside the pull: the value it brings settles as canceled without running (${engine} engine)`, async () => {
      const ac = new AbortController();
      const d = await drive(() => ac.abort(new Error('stop')), full, ac.signal);
      const results: Result<number, number>[] = [];
      const consuming = (async () => {
        for await (const r of d.it) results.push(r);
      })();
      await flush();
      expect(d.events).toEqual(['start 0', 'source closed']);
      for (const g of d.gates) g.resolve();
      await consuming;
      expect(results.map((r) => [r.index, r.ok ? 'ok' : r.error.name])).toEqual([
        [0, 'AbortError'],
        [1, 'AbortError'],
      ]);
    });

    it(`next() calls from inside the pull start no job beyond concurrency (${engine} engine)`, async () => {
      const pending: Promise<unknown>[] = [];
      const d = await drive((it) => {
        pending.push(it.next(), it.next());
      }, full);
      const first = d.it.next();
      await flush();
      let running = d.contexts.length;
      expect(running).toBe(2);
      expect(d.contexts.map((c) => c.workerId).sort()).toEqual([0, 1]);
      // Each job released in turn: never more than 2 running, workerIds within 0..1.
      for (const g of d.gates) {
        g.resolve();
        await flush();
        running = d.contexts.length;
        expect(d.contexts.every((c) => c.workerId === 0 || c.workerId === 1)).toBe(true);
      }
      expect(running).toBe(4);
      const all = await Promise.all([first, ...pending]);
      expect(all.filter((r) => !(r as IteratorResult<unknown>).done)).toHaveLength(3);
      expect(await d.it.next()).toMatchObject({ done: false });
      expect(await d.it.next()).toEqual({ done: true, value: undefined });
    });
  }
});

describe('runPool: the worker is called as a plain function', () => {
  for (const engine of ['lean', 'full'] as const) {
    it(`its this is undefined, never the engine's state (${engine} engine)`, async () => {
      const receivers: unknown[] = [];
      for await (const r of runPool(
        [1, 2],
        function (this: unknown, n: number) {
          receivers.push(this);
          return n;
        },
        { concurrency: 2, ...(engine === 'full' ? { [HOOKS]: {} } : {}) },
      )) {
        expect(r.ok).toBe(true);
      }
      expect(receivers).toEqual([undefined, undefined]);
    });
  }
});

describe('runPool: an async source whose next() returns a promise with a then of its own', () => {
  for (const engine of ['lean', 'full'] as const) {
    it(`reads the promise as for await does, never through its own then (${engine} engine)`, async () => {
      let i = 0;
      const source: AsyncIterable<number> = {
        [Symbol.asyncIterator]: () => ({
          next: () => {
            const step = Promise.resolve(
              i < 3 ? { value: i++, done: false } : { value: undefined, done: true },
            );
            Object.defineProperty(step, 'then', {
              value: (ok: (v: unknown) => void) => ok({ value: -1, done: true }),
            });
            return step as Promise<IteratorResult<number>>;
          },
        }),
      };
      const seen: number[] = [];
      for await (const r of runPool(source, (n) => n, {
        concurrency: 2,
        ...(engine === 'full' ? { [HOOKS]: {} } : {}),
      })) {
        if (r.ok) seen.push(r.value);
      }
      expect(seen.sort()).toEqual([0, 1, 2]);
    });
  }
});
