// Regression tests, one per bug found in review; each is named after the bug it pins.
import { describe, expect, it } from 'vitest';
import {
  AbortError,
  Channel,
  Pool,
  pipeline,
  type Result,
  runPool,
  shutdownOn,
} from '../src/index.js';
import { deferred, flush } from './helpers.js';

/** An async source whose next() never settles once `after` values were given. */
function hangingSource(after: number) {
  let given = 0;
  const state = { returned: false };
  const iterable: AsyncIterable<number> = {
    [Symbol.asyncIterator]: () => ({
      next: () =>
        given < after
          ? Promise.resolve({ done: false, value: given++ })
          : new Promise<IteratorResult<number>>(() => {}),
      return: () => {
        state.returned = true;
        return Promise.resolve({ done: true, value: undefined });
      },
    }),
  };
  return { iterable, state };
}

describe('regressions', () => {
  it('runPool over a waiting async source ends after abort (was: hung on the pending pull)', async () => {
    const ac = new AbortController();
    const { iterable } = hangingSource(2);
    const results: Result<number, number>[] = [];
    const done = (async () => {
      for await (const r of runPool(iterable, async (x) => x, {
        concurrency: 2,
        signal: ac.signal,
      })) {
        results.push(r);
      }
    })();
    await flush();
    ac.abort();
    await done;
    expect(results.map((r) => r.ok)).toEqual([true, true]);
  });

  it('runPool over an idle open Channel ends after abort (was: hung)', async () => {
    const ch = new Channel<number>(1);
    const ac = new AbortController();
    const done = (async () => {
      for await (const _ of runPool(ch, async (x) => x, { concurrency: 2, signal: ac.signal }));
    })();
    await flush();
    ac.abort();
    await expect(done).resolves.toBeUndefined();
  });

  it('break out of runPool over a waiting async generator returns (was: hung in return())', async () => {
    const gate = deferred<void>();
    async function* source() {
      yield 1;
      await gate.promise; // never opened
      yield 2;
    }
    for await (const r of runPool(source(), async (x) => x, { concurrency: 1, buffer: 0 })) {
      expect(r.ok).toBe(true);
      break;
    }
  });

  it('pipeline over a waiting source ends after drain(), abort() and break (was: hung)', async () => {
    for (const how of ['drain', 'abort', 'break'] as const) {
      const { iterable, state } = hangingSource(3);
      const p = pipeline(iterable).stage('x', async (x: number) => x * 2, { concurrency: 2 });
      const seen: number[] = [];
      const done = (async () => {
        for await (const r of p) {
          if (r.ok) seen.push(r.value);
          if (how === 'break' && seen.length === 3) break;
        }
      })();
      await flush();
      if (how === 'drain') void p.drain();
      if (how === 'abort') p.abort();
      await done;
      expect(seen).toEqual([0, 2, 4]);
      if (how !== 'abort') expect(state.returned).toBe(true);
    }
  });

  it('a queued job whose signal aborts in the same turn as a running one never starts (was: started, then canceled)', async () => {
    const ac = new AbortController();
    const calls: number[] = [];
    const pool = new Pool<number, void>(
      (n, { signal }) => {
        calls.push(n);
        return new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason)),
        );
      },
      { concurrency: 1 },
    );
    const a = await pool.submit(1, { signal: ac.signal });
    const b = await pool.submit(2, { signal: ac.signal });
    ac.abort();
    await Promise.all([a.result, b.result]);
    expect(calls).toEqual([1]);
  });

  it('a worker returning a thenable whose then() throws fails its job (was: slot leaked, submit rejected)', async () => {
    const bad = () => ({
      // biome-ignore lint/suspicious/noThenProperty: the point is a broken thenable.
      then() {
        throw new Error('broken thenable');
      },
    });
    const pool = new Pool<number, unknown>(bad as never, { concurrency: 1 });
    const task = await pool.submit(1);
    const r = await task.result;
    expect(r.ok === false && r.error.message).toBe('broken thenable');
    expect(pool.stats().running).toBe(0);
    const it = runPool([1], bad as never, { concurrency: 1 });
    const first = await it.next();
    expect(first.done === false && first.value.ok).toBe(false);
  });

  it('drain() then abort(): the drain report counts the canceled jobs as canceled, not completed', async () => {
    const pool = new Pool<number, void>(() => new Promise(() => {}), {
      concurrency: 2,
      queueSize: 2,
    });
    for (let i = 0; i < 4; i++) await pool.submit(i);
    const draining = pool.drain();
    const aborted = await pool.abort();
    expect(aborted).toMatchObject({ completed: 0, canceled: 4 });
    expect(await draining).toMatchObject({ completed: 0, canceled: 4 });
  });

  it('a second drain({ timeout }) applies its deadline (was: ignored after a plain drain())', async () => {
    const pool = new Pool<number, void>(() => new Promise(() => {}), { concurrency: 1 });
    await pool.submit(1);
    const first = pool.drain();
    const second = pool.drain({ timeout: 20 });
    expect(second).toBe(first);
    expect(await second).toMatchObject({ completed: 0, canceled: 1, canceledJobs: [1] });
  });

  it('two next() calls without awaiting both resolve, in order (was: the first was lost)', async () => {
    const it = runPool([1, 2], async (x) => x, { concurrency: 2, ordered: true });
    const [a, b] = await Promise.all([it.next(), it.next()]);
    expect(a).toMatchObject({ done: false, value: { value: 1 } });
    expect(b).toMatchObject({ done: false, value: { value: 2 } });
    expect((await it.next()).done).toBe(true);
  });

  it('next() after return() is done (was: yielded a canceled result)', async () => {
    const { iterable } = hangingSource(0);
    const it = runPool(iterable, async (x) => x, { concurrency: 1 });
    const pending = it.next();
    await it.return?.();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });

  it('a pre-aborted signal still closes the source (was: return() never called)', async () => {
    let closed = false;
    function* source() {
      try {
        yield 1;
      } finally {
        closed = true;
      }
    }
    const gen = source();
    const results: unknown[] = [];
    for await (const r of runPool(gen, (x) => x, { concurrency: 1, signal: AbortSignal.abort() })) {
      results.push(r);
    }
    expect(results).toEqual([]);
    // A generator that never started has nothing to clean up, but it is closed: next() is done.
    expect(gen.next().done).toBe(true);
    expect(closed).toBe(false);
  });

  it('pipeline.drain() before iterating is remembered (was: forgotten)', async () => {
    const p = pipeline([1, 2, 3]).stage('x', (x: number) => x, { concurrency: 1 });
    const drained = p.drain();
    const results: unknown[] = [];
    for await (const r of p) results.push(r);
    await drained;
    expect(results).toEqual([]);
  });

  it('shutdownOn rejects bad debounce, forceGrace and signal names (was: accepted NaN)', () => {
    expect(() => shutdownOn(['SIGTERM'], () => {}, { debounce: Number.NaN })).toThrow(/"debounce"/);
    expect(() => shutdownOn(['SIGTERM'], () => {}, { forceGrace: -5 })).toThrow(/"forceGrace".*-5/);
    expect(() => shutdownOn(['SIGNOPE' as NodeJS.Signals], () => {})).toThrow(/SIGNOPE/);
  });

  it('AbortError is what a canceled queued job reports', async () => {
    const pool = new Pool<number, void>(() => new Promise(() => {}), { concurrency: 1 });
    await pool.submit(0);
    const ac = new AbortController();
    const t = await pool.submit(1, { signal: ac.signal });
    ac.abort('why');
    const r = await t.result;
    expect(r.ok === false && r.error).toBeInstanceOf(AbortError);
    await pool.abort();
  });
});

describe('regressions (new-user trial)', () => {
  it('a huge concurrency allocates nothing up front (was: 2 GB for 1e8, a fatal error for 1e9)', async () => {
    const pool = new Pool(async (x: number) => x * 2, { concurrency: 1e9 });
    expect(await pool.run(21)).toBe(42);
    const results: unknown[] = [];
    for await (const r of runPool([1, 2, 3], async (x) => x, { concurrency: 1e9 })) results.push(r);
    expect(results).toHaveLength(3);
    pool.resize(5e8);
    expect(await pool.run(1)).toBe(2);
  });

  it('bad options carry the stable code ERR_INVALID_OPTION', () => {
    expect(() => new Pool(async () => 1, { concurrency: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION' }),
    );
  });

  it('duplicate stage names are refused (was: accepted, making stats() ambiguous)', () => {
    expect(() =>
      pipeline([1])
        .stage('a', (x: number) => x, { concurrency: 1 })
        .stage('a', (x: number) => x, { concurrency: 1 }),
    ).toThrow(/"name": expected a name no other stage of this pipeline has, got "a"/);
  });
});
