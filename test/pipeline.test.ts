import { spawn } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AbortError, Pool, pipeline, type Result } from '../src/index.js';
import { deferred, flush, nonObjectIteratorSources, thrownBy } from './helpers.js';

afterEach(() => {
  vi.useRealTimers();
});

function counted(n: number) {
  const state = { pulled: 0, closed: false };
  function* source() {
    try {
      for (let i = 0; i < n; i++) {
        state.pulled++;
        yield i;
      }
    } finally {
      state.closed = true;
    }
  }
  return { state, source: source() };
}

/** A stage worker that ends only when its signal aborts, failing with the reason. */
const hangUntilAborted = (_x: number, { signal }: { signal: AbortSignal }) =>
  new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));

describe('pipeline: backpressure', () => {
  it('with a slow last stage the source is pulled at most sum(concurrency + buffer) ahead of the output', async () => {
    const { state, source } = counted(10_000);
    const p = pipeline(source)
      .stage('a', async (x: number) => x + 1, { concurrency: 2, buffer: 3 })
      .stage('b', async (x: number) => x * 2, { concurrency: 4, buffer: 1 })
      .stage(
        'slow',
        async (x: number) => {
          await new Promise((resolve) => setTimeout(resolve, 2));
          return x;
        },
        { concurrency: 1, buffer: 2 },
      );
    const bound = 2 + 3 + (4 + 1) + (1 + 2);
    let out = 0;
    let worst = 0;
    for await (const r of p) {
      expect(r.ok).toBe(true);
      out++;
      await flush();
      worst = Math.max(worst, state.pulled - out);
      if (out === 50) break;
    }
    expect(worst).toBeLessThanOrEqual(bound);
    expect(state.pulled).toBeLessThanOrEqual(out + bound);
    expect(state.closed).toBe(true);
  });
});

describe('pipeline: failures', () => {
  it('a job failing in a stage skips later stages and arrives as { ok: false, stage, error }', async () => {
    const later: number[] = [];
    const results: Result<number, number>[] = [];
    for await (const r of pipeline([1, 2, 3, 4, 5])
      .stage(
        'parse',
        (x: number) => {
          if (x === 3) throw new Error('bad three');
          return x * 10;
        },
        { concurrency: 2 },
      )
      .stage(
        'store',
        async (x: number) => {
          later.push(x);
          return x + 1;
        },
        { concurrency: 2 },
      )) {
      results.push(r);
    }
    results.sort((a, b) => a.index - b.index);
    expect(results.map((r) => r.ok)).toEqual([true, true, false, true, true]);
    expect(results[2]).toMatchObject({ ok: false, job: 3, index: 2, stage: 'parse' });
    expect(results[2]?.ok === false && results[2].error.message).toBe('bad three');
    expect(results[0]).toMatchObject({ ok: true, job: 1, index: 0, value: 11 });
    expect(later.sort((a, b) => a - b)).toEqual([10, 20, 40, 50]);
  });

  it('ordered stages keep source order end to end', async () => {
    const results: number[] = [];
    for await (const r of pipeline([5, 1, 4, 2, 3])
      .stage('wait', (x: number) => new Promise<number>((res) => setTimeout(() => res(x), x)), {
        concurrency: 3,
        ordered: true,
      })
      .stage('id', (x: number) => x, { concurrency: 2, ordered: true })) {
      if (r.ok) results.push(r.value);
    }
    expect(results).toEqual([5, 1, 4, 2, 3]);
  });

  it('a Pool (any object with run) can be a stage', async () => {
    const pool = new Pool(async (x: number) => x * 3, { concurrency: 2 });
    const values: number[] = [];
    for await (const r of pipeline([1, 2, 3]).stage('triple', pool)) if (r.ok) values.push(r.value);
    expect(values.sort()).toEqual([3, 6, 9]);
    await pool.drain();
  });
});

describe('pipeline: drain and abort', () => {
  it('drain stops pulling the source and every stage finishes what it holds', async () => {
    const { state, source } = counted(1_000);
    const gate = deferred<void>();
    const p = pipeline(source)
      .stage(
        'first',
        async (x: number) => {
          await gate.promise;
          return x;
        },
        { concurrency: 2, buffer: 2 },
      )
      .stage('second', async (x: number) => x, { concurrency: 2 });
    const results: Result<number, number>[] = [];
    const consuming = (async () => {
      for await (const r of p) results.push(r);
    })();
    await flush();
    const drained = p.drain();
    gate.resolve();
    await consuming;
    expect(await drained).toEqual({ canceled: 0 }); // a clean drain: shutdownOn exits 0
    expect(state.closed).toBe(true);
    expect(results).toHaveLength(state.pulled);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(state.pulled).toBeLessThan(1_000);
  });

  it('abort cancels everything, and every pulled job still yields exactly one result', async () => {
    const { state, source } = counted(1_000);
    const p = pipeline(source)
      .stage('fast', async (x: number) => x, { concurrency: 2, buffer: 4 })
      .stage('hang', hangUntilAborted, {
        concurrency: 2,
        buffer: 2,
      });
    const results: Result<number, unknown>[] = [];
    const consuming = (async () => {
      for await (const r of p) results.push(r);
    })();
    await flush();
    await flush();
    p.abort('stop');
    await consuming;
    expect(results).toHaveLength(state.pulled);
    expect(new Set(results.map((r) => r.index)).size).toBe(state.pulled);
    expect(results.every((r) => !r.ok)).toBe(true);
    for (const r of results) {
      expect(r.ok === false && r.error).toBeInstanceOf(AbortError);
    }
    expect(p.stats().every((s) => s.running === 0)).toBe(true);
    // A stage's failures say which were canceled (the doc indexer reports them apart).
    const hang = p.stats()[1]!;
    expect(hang.canceled).toBeGreaterThan(0);
    expect(hang.canceled).toBe(hang.failed);
  });

  it('drain({ timeout }) cancels what is still running at the deadline; every pulled job yields one result', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { state, source } = counted(1_000);
      const p = pipeline(source).stage('hang', hangUntilAborted, { concurrency: 2, buffer: 2 });
      const results: Result<number, unknown>[] = [];
      const consuming = (async () => {
        for await (const r of p) results.push(r);
      })();
      await flush();
      let drained = false;
      const draining = p.drain({ timeout: 5_000 }).then((report) => {
        drained = true;
        return report;
      });
      await vi.advanceTimersByTimeAsync(4_999);
      expect(drained).toBe(false); // the hung jobs hold the drain until the deadline
      await vi.advanceTimersByTimeAsync(1);
      await consuming;
      // What the deadline dropped is counted, so shutdownOn exits non-zero.
      expect(await draining).toEqual({ canceled: state.pulled });
      expect(results).toHaveLength(state.pulled);
      expect(results.every((r) => !r.ok && r.error instanceof AbortError)).toBe(true);
      expect(results[0]!.ok === false && results[0]!.error.message).toBe(
        'drain timed out after 5000 ms',
      );
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("a second drain() returns the first one's promise and report; its deadline still bounds it", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { state, source } = counted(1_000);
      const p = pipeline(source).stage('hang', hangUntilAborted, { concurrency: 2, buffer: 2 });
      const consuming = (async () => {
        for await (const _ of p);
      })();
      await flush();
      const plain = p.drain(); // would wait for the hung jobs for ever
      const forced = p.drain({ timeout: 100 });
      expect(forced).toBe(plain);
      await vi.advanceTimersByTimeAsync(100);
      await consuming;
      expect(await plain).toEqual({ canceled: state.pulled });
      expect(state.pulled).toBeGreaterThan(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('drain() before any iteration resolves at once; the pipeline then pulls nothing and yields nothing', async () => {
    const { state, source } = counted(10);
    const p = pipeline(source).stage('x', async (n: number) => n, { concurrency: 1 });
    expect(await p.drain({ timeout: 60_000 })).toEqual({ canceled: 0 });
    const results: unknown[] = [];
    for await (const r of p) results.push(r);
    expect(results).toEqual([]);
    expect(state.pulled).toBe(0);
  });

  it('drain() refuses a bad timeout by rejecting, naming it, and leaves the pipeline as it was', async () => {
    const p = pipeline([1, 2]).stage('x', async (n: number) => n, { concurrency: 1 });
    await expect(p.drain({ timeout: -1 })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    await expect(p.drain('x' as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    const values: number[] = [];
    for await (const r of p) if (r.ok) values.push(r.value);
    expect(values).toEqual([1, 2]);
  });

  it('the pipeline signal aborts it', async () => {
    const ac = new AbortController();
    const p = pipeline([1, 2, 3]).stage(
      'hang',
      (_x: number, { signal }) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      { concurrency: 3 },
    );
    const results: Result<number, unknown>[] = [];
    const consuming = (async () => {
      for await (const r of p) results.push(r);
    })();
    await flush();
    ac.abort();
    const p2 = pipeline([1], { signal: ac.signal }).stage('x', (x: number) => x, {
      concurrency: 1,
    });
    const r2: unknown[] = [];
    for await (const r of p2) r2.push(r);
    expect(r2).toEqual([]);
    p.abort();
    await consuming;
    expect(results).toHaveLength(3);
  });

  it('break shuts the pipeline down: source closed, running jobs aborted, nothing left running', async () => {
    const { state, source } = counted(1_000);
    const aborted: number[] = [];
    const p = pipeline(source)
      .stage('id', async (x: number) => x, { concurrency: 2 })
      .stage(
        'maybe-hang',
        (x: number, { signal }) => {
          if (x === 0) return x;
          return new Promise<number>((_, reject) =>
            signal.addEventListener('abort', () => {
              aborted.push(x);
              reject(signal.reason);
            }),
          );
        },
        { concurrency: 3 },
      );
    for await (const r of p) {
      expect(r).toMatchObject({ ok: true, value: 0 });
      break;
    }
    await flush();
    expect(state.closed).toBe(true);
    expect(aborted.length).toBeGreaterThan(0);
    expect(p.stats().map((s) => s.running)).toEqual([0, 0]);
    const pulled = state.pulled;
    await flush();
    expect(state.pulled).toBe(pulled);
  });
});

describe('pipeline: abort reaching a later stage that has gates', () => {
  // The first stage's buffer still holds values when the pipeline aborts: a later stage keeps
  // taking them (each must yield its result), but its rate and key gates were stopped by the
  // abort, so none of them may wait for a permit or a turn that never comes.
  for (const [label, gates] of [
    ['rate', { rate: { limit: 1, interval: 3_600_000 } }],
    ['rate and key', { rate: { limit: 1, interval: 3_600_000 }, key: () => 'k' }],
    ['per-key rate', { key: () => 'k', perKey: { rate: { limit: 1, interval: 3_600_000 } } }],
  ] as const) {
    it(`abort: values still arriving at a stage with a ${label} gate settle as canceled and the iteration ends`, async () => {
      const { state, source } = counted(1_000);
      const p = pipeline(source)
        .stage('first', async (x: number) => x, { concurrency: 2, buffer: 4 })
        .stage('limited', async (x: number) => x, { concurrency: 1, buffer: 1, ...gates });
      const results: Result<number, number>[] = [];
      const it = p[Symbol.asyncIterator]();
      const first = await it.next(); // job 0 took the only permit of the hour
      if (!first.done) results.push(first.value);
      await flush();
      expect(p.stats()[0]!.queued + p.stats()[1]!.queued).toBeGreaterThan(0);
      p.abort('stop');
      for (let r = await it.next(); !r.done; r = await it.next()) results.push(r.value);
      expect(results).toHaveLength(state.pulled);
      expect(new Set(results.map((r) => r.index)).size).toBe(state.pulled);
      expect(results[0]).toMatchObject({ ok: true, value: 0 });
      for (const r of results.slice(1))
        expect(r.ok === false && r.error).toBeInstanceOf(AbortError);
    });
  }

  it("a stage's RateLimiter that aborts the pipeline while asked, answering a wait, settles that value as canceled and the iteration ends", async () => {
    let asked = 0;
    const p = pipeline([1, 2, 3, 4])
      .stage('first', async (x: number) => x, { concurrency: 2 })
      .stage('limited', async (x: number) => x, {
        concurrency: 1,
        rate: {
          reserve() {
            asked++;
            if (asked === 2) {
              p.abort('stop');
              // The gate is stopped by now: no wake-up would come for a value left waiting.
              return 60_000;
            }
            return 0;
          },
        },
      });
    const results: Result<number, number>[] = [];
    for await (const r of p) results.push(r);
    expect(results.map((r) => r.index).sort()).toEqual([0, 1, 2, 3]);
    expect(results.find((r) => r.index === 0)).toMatchObject({ ok: true, value: 1 });
    for (const r of results.filter((x) => x.index !== 0)) {
      expect(r.ok === false && r.error).toBeInstanceOf(AbortError);
    }
  });

  it("drain({ timeout }) ends at its deadline while values wait on a later stage's rate", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { state, source } = counted(1_000);
      const p = pipeline(source)
        .stage('first', async (x: number) => x, { concurrency: 2, buffer: 4 })
        .stage('limited', async (x: number) => x, {
          concurrency: 1,
          buffer: 1,
          rate: { limit: 1, interval: 3_600_000 },
        });
      const results: Result<number, number>[] = [];
      const consuming = (async () => {
        for await (const r of p) results.push(r);
      })();
      await vi.advanceTimersByTimeAsync(0);
      const draining = p.drain({ timeout: 1_000 });
      await vi.advanceTimersByTimeAsync(1_000);
      await consuming;
      expect(results).toHaveLength(state.pulled);
      expect(await draining).toEqual({ canceled: state.pulled - 1 });
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('pipeline: a StageRunner as a stage', () => {
  it("a runner whose stats() answers null (or no concurrency) needs the stage's concurrency: refused naming it", () => {
    for (const stats of [() => null, () => ({}), undefined]) {
      const runner = { run: async (x: number) => x, ...(stats ? { stats } : {}) };
      expect(() => pipeline([1]).stage('r', runner as never)).toThrow(
        expect.objectContaining({
          code: 'ERR_INVALID_OPTION',
          message: expect.stringMatching(/^Invalid option "r\.concurrency"/),
        }),
      );
    }
  });
});

describe('pipeline: stats', () => {
  it('reports per-stage counts and utilization; the slow stage has the highest utilization', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const p = pipeline(Array.from({ length: 40 }, (_, i) => i))
      .stage(
        'extract',
        async (x: number) => {
          await sleep(5);
          if (x === 7) throw new Error('corrupt');
          return x;
        },
        { concurrency: 2 },
      )
      .stage(
        'embed',
        async (x: number) => {
          await sleep(30);
          return x;
        },
        { concurrency: 2 },
      )
      .stage(
        'insert',
        async (x: number) => {
          await sleep(2);
          return x;
        },
        { concurrency: 1 },
      );
    const consuming = (async () => {
      for await (const _ of p);
    })();
    await vi.advanceTimersByTimeAsync(10_000);
    await consuming;
    const [extract, embed, insert] = p.stats();
    expect(extract).toMatchObject({
      name: 'extract',
      concurrency: 2,
      done: 40,
      failed: 1,
      succeeded: 39,
    });
    expect(embed).toMatchObject({ name: 'embed', done: 39, failed: 0, canceled: 0 });
    expect(insert).toMatchObject({ name: 'insert', done: 39, running: 0, queued: 0 });
    expect(embed!.utilization).toBeGreaterThan(extract!.utilization);
    expect(embed!.utilization).toBeGreaterThan(insert!.utilization);
    expect(embed!.utilization).toBeGreaterThan(0.9);
    expect(embed!.runTime.p50).toBeCloseTo(30, 0);
  });

  it('bad stage options throw naming the stage and option', () => {
    expect(() => pipeline([1]).stage('s', (x: number) => x, { concurrency: 0 })).toThrow(
      /"s\.concurrency".*0/,
    );
    expect(() => pipeline([1]).stage('s', (x: number) => x, {})).toThrow(/"s\.concurrency"/);
    expect(() =>
      pipeline([1]).stage('s', (x: number) => x, { concurrency: 1, buffer: -1 }),
    ).toThrow(/"s\.buffer"/);
    expect(() => pipeline(5 as unknown as number[])).toThrow(TypeError);
  });
});

/** A hand-written async iterator: `steps[i]` is what the i-th `next()` does. */
function handWritten<T>(steps: (() => unknown)[]): AsyncIterable<T> {
  let i = 0;
  return {
    [Symbol.asyncIterator]: () => ({
      next: () => (steps[i++] ?? (() => Promise.resolve({ done: true, value: undefined })))(),
    }),
  } as AsyncIterable<T>;
}

describe('pipeline: hand-written and waiting sources', () => {
  it('an iterator factory answering a non-object fails as for await fails', async () => {
    for (const [source, forAwait] of await nonObjectIteratorSources()) {
      const ours = await thrownBy(() =>
        pipeline(source).stage('a', (x: number) => x, { concurrency: 2 }),
      );
      expect(ours).toBeInstanceOf(TypeError);
      expect((ours as TypeError).message).toBe((forAwait as TypeError).message);
    }
  });

  it('a source whose next() throws synchronously: earlier results, then that error, nothing unhandled', async () => {
    const boom = new Error('next() threw');
    const source = handWritten<number>([
      () => Promise.resolve({ done: false, value: 1 }),
      () => {
        throw boom;
      },
    ]);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const seen: number[] = [];
    try {
      const p = pipeline(source).stage('double', async (x: number) => x * 2, { concurrency: 2 });
      await expect(
        (async () => {
          for await (const r of p) if (r.ok) seen.push(r.value);
        })(),
      ).rejects.toBe(boom);
      await flush();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(seen).toEqual([2]);
    expect(unhandled).toEqual([]);
  });

  it('a source whose next() returns a plain { value, done } object is accepted, as for await accepts it', async () => {
    const source = handWritten<number>([
      () => ({ done: false, value: 1 }),
      () => ({ done: false, value: 2 }),
      () => ({ done: true, value: undefined }),
    ]);
    const results: Result<number, number>[] = [];
    const p = pipeline(source).stage('double', async (x: number) => x * 2, { concurrency: 2 });
    for await (const r of p) results.push(r);
    expect(results.map((r) => r.ok && r.value).sort()).toEqual([2, 4]);
  });

  /** A source that yields 0, then waits on `gate` before yielding 1; records its closing. */
  function gatedSource(gate: Promise<void>) {
    const state = { closed: false };
    async function* source() {
      try {
        yield 0;
        await gate;
        yield 1;
        yield 2;
      } finally {
        state.closed = true;
      }
    }
    return { state, source: source() };
  }

  it('drain() while a pull is pending: the value the source yields afterwards still runs and yields', async () => {
    const gate = deferred<void>();
    const { state, source } = gatedSource(gate.promise);
    const p = pipeline(source).stage('id', async (x: number) => x, { concurrency: 2 });
    const results: Result<number, number>[] = [];
    const consuming = (async () => {
      for await (const r of p) results.push(r);
    })();
    await flush(); // 0 is through; the pull of 1 waits on the gate
    const drained = p.drain();
    await flush();
    gate.resolve();
    await consuming;
    await drained;
    expect(results.map((r) => [r.job, r.ok])).toEqual([
      [0, true],
      [1, true],
    ]);
    expect(state.closed).toBe(true);
  });

  it('abort() while a pull is pending: the value the source yields afterwards settles as canceled', async () => {
    const gate = deferred<void>();
    const { state, source } = gatedSource(gate.promise);
    const ran: number[] = [];
    const p = pipeline(source).stage(
      'id',
      async (x: number) => {
        ran.push(x);
        return x;
      },
      { concurrency: 2 },
    );
    const results: Result<number, number>[] = [];
    const consuming = (async () => {
      for await (const r of p) results.push(r);
    })();
    await flush();
    p.abort('stop');
    await flush();
    gate.resolve();
    await consuming;
    expect(results.map((r) => r.job)).toEqual([0, 1]);
    const late = results[1];
    expect(late?.ok === false && late.error).toBeInstanceOf(AbortError);
    expect(late?.ok === false && late.stage).toBe('id');
    expect(ran).toEqual([0]);
    expect(state.closed).toBe(true);
  });

  it('abort() while a pull of a source without return() is pending: what it yields afterwards settles as canceled', async () => {
    const late = deferred<IteratorResult<number>>();
    const source = handWritten<number>([
      () => Promise.resolve({ done: false, value: 0 }),
      () => late.promise,
    ]);
    const p = pipeline(source).stage('id', async (x: number) => x, { concurrency: 1 });
    const results: Result<number, number>[] = [];
    const consuming = (async () => {
      for await (const r of p) results.push(r);
    })();
    await flush();
    p.abort('stop');
    await flush();
    late.resolve({ done: false, value: 1 });
    await consuming;
    expect(results.map((r) => [r.job, r.ok])).toEqual([
      [0, true],
      [1, false],
    ]);
  });

  for (const closing of ['resolves', 'throws'] as const) {
    it(`abort() right after a pull the source already answered: its value still yields (return() ${closing})`, async () => {
      let pulls = 0;
      let closed = false;
      const source = {
        [Symbol.asyncIterator]: () => ({
          next: () => {
            if (pulls === 2) return new Promise<IteratorResult<number>>(() => undefined);
            // The source answers the pull for 1 at once; the abort comes a microtask later.
            if (pulls === 1) queueMicrotask(() => p.abort('stop'));
            return Promise.resolve({ done: false, value: pulls++ });
          },
          return: () => {
            closed = true;
            if (closing === 'throws') throw new Error('return() failed');
            return Promise.resolve({ done: true as const, value: undefined });
          },
        }),
      } as AsyncIterable<number>;
      const p = pipeline(source).stage('id', (x: number) => x, { concurrency: 2 });
      const it = p[Symbol.asyncIterator]();
      const results: Result<number, number>[] = [];
      for (let r = await it.next(); !r.done; r = await it.next()) results.push(r.value);
      expect(closed).toBe(true);
      expect(pulls).toBe(2);
      // Every value the source handed out yields exactly once.
      expect(results.map((r) => r.job).sort()).toEqual([0, 1]);
    });
  }

  it('return() before any next(): no listener left on the signal, nothing pulled, drain() resolves', async () => {
    const ac = new AbortController();
    const { state, source } = counted(10);
    const p = pipeline(source, { signal: ac.signal }).stage('id', async (x: number) => x, {
      concurrency: 2,
    });
    const it = p[Symbol.asyncIterator]();
    await it.return?.();
    await flush();
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    expect(state.pulled).toBe(0);
    let drained = false;
    void p.drain().then(() => {
      drained = true;
    });
    await flush();
    expect(drained).toBe(true);
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });
});

describe('pipeline: drain deadline in a process with nothing else to do', () => {
  it('drain({ timeout }) keeps the process alive until its deadline cancels hung jobs, and the loop ends normally', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/pipeline-drain-child.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    // An unref'd deadline let the process exit 13 (unsettled top-level await) with no results.
    expect({ code, err }).toEqual({ code: 0, err: '' });
    expect(JSON.parse(out)).toEqual({
      seen: ['AbortError', 'AbortError', 'AbortError'],
      canceled: 3,
    });
  }, 60_000);
});

describe('pipeline: a stage worker is called as a plain function', () => {
  it("its this is undefined, as runPool's, never the stage's definition", async () => {
    const receivers: unknown[] = [];
    for await (const r of pipeline([1, 2]).stage(
      'look',
      function (this: unknown, n: number) {
        receivers.push(this);
        return n;
      },
      { concurrency: 1 },
    )) {
      expect(r.ok).toBe(true);
    }
    expect(receivers).toEqual([undefined, undefined]);
  });
});
