/**
 * runPool's lean engine (scheduler/lean-engine.ts, no gate, timeout, adaptive limit, watchdog or
 * hooks) against the full engine (internal/pull-engine.ts), forced by hooks that want every job
 * and do nothing (the internal HOOKS option: every job then runs as a JobRun, as an observed job
 * does). Same random jobs, sources and consumers through both: the same results in the same
 * order, nothing lost or duplicated, the limits kept; and what only the lean engine's own code
 * could get wrong (a worker overwriting its context, a signal first read after a cancel).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AbortError, type Result, runPool } from '../src/index.js';
import { HOOKS } from '../src/scheduler/hooks.js';
import { type OutcomeKind, scriptedOutcome, turns } from './fixtures/scripted-outcome.js';
import { deferred, flush } from './helpers.js';

type Kind = OutcomeKind | 'hang';
interface Spec {
  kind: Kind;
  /** Microtask turns before an async outcome. */
  delay: number;
}

const spec: fc.Arbitrary<Spec> = fc.record({
  kind: fc.constantFrom<Kind>(
    'value',
    'throw',
    'resolve',
    'reject',
    'thenable',
    'sync-thenable',
    'own-then',
    'non-error',
    'hang',
  ),
  delay: fc.nat(6),
});

interface Scenario {
  specs: Spec[];
  concurrency: number;
  buffer: number;
  ordered: boolean;
  asyncSource: boolean;
  /** next() calls made at once by the consumer. */
  batch: number;
  /** Break (return()) after this many results; undefined: read to the end (no hang then). */
  breakAfter: number | undefined;
  /** Abort the signal after this many results (or once a hanging job waited); undefined: never. */
  abortAfter: number | undefined;
}

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    specs: fc.array(spec, { maxLength: 30 }),
    concurrency: fc.integer({ min: 1, max: 5 }),
    buffer: fc.integer({ min: 0, max: 3 }),
    ordered: fc.boolean(),
    asyncSource: fc.boolean(),
    batch: fc.integer({ min: 1, max: 3 }),
    breakAfter: fc.option(fc.nat(30), { nil: undefined }),
    abortAfter: fc.option(fc.nat(30), { nil: undefined }),
  })
  .map((s) =>
    // A hanging job is ended by the abort (which it triggers itself, see drive): only in runs
    // that abort.
    s.abortAfter === undefined
      ? { ...s, specs: s.specs.map((x) => (x.kind === 'hang' ? { ...x, kind: 'resolve' } : x)) }
      : s,
  );

interface Trace {
  /** Every result (or the end, or an error) in the order the consumer saw it. */
  seen: unknown[];
  /** Jobs pulled from the source, in order. */
  pulls: number;
  maxAhead: number;
  maxRunning: number;
  badWorker: string | undefined;
  /** Workers whose signal was aborted, with the reason's class. */
  aborted: string[];
  sourceClosed: boolean;
}

async function drive(s: Scenario, full: boolean): Promise<Trace> {
  const trace: Trace = {
    seen: [],
    pulls: 0,
    maxAhead: 0,
    maxRunning: 0,
    badWorker: undefined,
    aborted: [],
    sourceClosed: false,
  };
  let consumed = 0;
  let running = 0;
  const busy = new Set<number>();
  const ac = new AbortController();
  const onPull = (i: number) => {
    trace.pulls++;
    trace.maxAhead = Math.max(trace.maxAhead, trace.pulls - consumed);
    return i;
  };
  function* syncJobs() {
    try {
      for (let i = 0; i < s.specs.length; i++) yield onPull(i);
    } finally {
      trace.sourceClosed = true;
    }
  }
  async function* asyncJobs() {
    try {
      for (let i = 0; i < s.specs.length; i++) {
        await undefined;
        yield onPull(i);
      }
    } finally {
      trace.sourceClosed = true;
    }
  }
  const worker = (i: number, ctx: { index: number; workerId: number; signal: AbortSignal }) => {
    const x = s.specs[i] as Spec;
    if (ctx.index !== i) trace.badWorker = `index ${ctx.index} for job ${i}`;
    if (ctx.workerId < 0 || ctx.workerId >= s.concurrency || busy.has(ctx.workerId)) {
      trace.badWorker = `workerId ${ctx.workerId} for job ${i}`;
    }
    const { workerId } = ctx;
    busy.add(workerId);
    running++;
    trace.maxRunning = Math.max(trace.maxRunning, running);
    const done = () => {
      running--;
      busy.delete(workerId);
    };
    // Only read once the job is over or canceled: the signal is lazy.
    const watch = () => {
      if (ctx.signal.aborted) {
        trace.aborted.push(`${i}:${(ctx.signal.reason as Error).constructor.name}`);
      }
    };
    if (x.kind !== 'hang') return scriptedOutcome(x.kind, i, x.delay, done);
    // Ends only when canceled — by the abort it triggers after a few turns, if nothing else
    // did — its slot freed by the cancel, before the worker returns.
    void turns(x.delay + 8).then(() => ac.abort(new Error('stop')));
    return new Promise((_, reject) => {
      ctx.signal.addEventListener('abort', () => {
        done();
        watch();
        reject(ctx.signal.reason);
      });
    });
  };
  const opts = {
    concurrency: s.concurrency,
    buffer: s.buffer,
    ordered: s.ordered,
    signal: ac.signal,
    ...(full ? { [HOOKS]: {} } : {}),
  };
  const it = runPool(s.asyncSource ? asyncJobs() : syncJobs(), worker, opts);
  const record = (r: IteratorResult<Result<number, unknown>>) => {
    if (r.done) {
      trace.seen.push('done');
      return;
    }
    consumed++;
    const v = r.value;
    trace.seen.push(
      v.ok
        ? { index: v.index, job: v.job, value: v.value }
        : {
            index: v.index,
            job: v.job,
            error: `${v.error.constructor.name}:${v.error.message}`,
          },
    );
  };
  let ended = false;
  while (!ended) {
    const batch = Array.from({ length: s.batch }, () => it.next());
    for (const p of batch) {
      try {
        const r = await p;
        record(r);
        if (r.done) ended = true;
      } catch (error) {
        trace.seen.push(`threw ${String(error)}`);
        ended = true;
      }
    }
    if (!ended && s.abortAfter !== undefined && consumed >= s.abortAfter && !ac.signal.aborted) {
      ac.abort(new Error('stop'));
      trace.seen.push('aborted');
    }
    if (!ended && s.breakAfter !== undefined && consumed >= s.breakAfter) {
      await it.return?.();
      trace.seen.push('returned');
      ended = true;
    }
  }
  // Late outcomes of canceled workers must change nothing.
  await flush();
  return trace;
}

describe('runPool: the lean engine behaves as the full engine', () => {
  it('same results in the same order, nothing lost or duplicated, limits kept, on random runs', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const lean = await drive(s, false);
        const full = await drive(s, true);
        for (const t of [lean, full]) {
          expect(t.badWorker).toBeUndefined();
          expect(t.maxRunning).toBeLessThanOrEqual(s.concurrency);
          // Ahead of what was taken: results handed to the `batch` pending next() calls count as
          // taken before this consumer's await resumes.
          expect(t.maxAhead).toBeLessThanOrEqual(s.concurrency + s.buffer + s.batch);
          const indices = t.seen.flatMap((r) =>
            typeof r === 'object' && r !== null ? [(r as { index: number }).index] : [],
          );
          // Nothing duplicated; read to the end (no break), nothing lost either.
          expect(new Set(indices).size).toBe(indices.length);
          if (s.breakAfter === undefined) {
            expect(indices.length).toBe(t.pulls);
            if (s.abortAfter === undefined) expect(t.pulls).toBe(s.specs.length);
          }
          if (s.ordered) expect(indices).toEqual([...indices].sort((a, b) => a - b));
          // A promise's own `then` is never called (it would have given -1).
          expect(t.seen.some((r) => (r as { value?: unknown } | null)?.value === -1)).toBe(false);
        }
        expect(lean.seen).toEqual(full.seen);
        expect(lean.pulls).toBe(full.pulls);
        expect(lean.aborted).toEqual(full.aborted);
        expect(lean.sourceClosed).toBe(full.sourceClosed);
      }),
      { numRuns: 400 },
    );
  });

  it('a worker that overwrites its context changes neither its result nor the slots', async () => {
    const seen: number[] = [];
    const results: Result<number, number>[] = [];
    for await (const r of runPool(
      [0, 1, 2, 3, 4, 5],
      async (n, ctx) => {
        seen.push(ctx.workerId);
        const writable = ctx as { index: number; workerId: number };
        writable.index = 99;
        writable.workerId = 7;
        await undefined;
        return n;
      },
      { concurrency: 2 },
    )) {
      results.push(r);
    }
    expect(results.map((r) => r.index).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(results.every((r) => r.ok && r.value === r.index)).toBe(true);
    expect(seen.every((id) => id === 0 || id === 1)).toBe(true);
  });

  it("a signal first read after break is already aborted; a finished job's stays live", async () => {
    const gate = deferred<void>();
    const contexts: { signal: AbortSignal }[] = [];
    for await (const r of runPool(
      [0, 1, 2],
      async (n, ctx) => {
        contexts.push(ctx);
        if (n > 0) await gate.promise;
        return n;
      },
      { concurrency: 3 },
    )) {
      expect(r.index).toBe(0);
      break;
    }
    expect(contexts).toHaveLength(3);
    expect(contexts[0]?.signal.aborted).toBe(false);
    for (const ctx of contexts.slice(1)) {
      expect(ctx.signal.aborted).toBe(true);
      expect(ctx.signal.reason).toBeInstanceOf(AbortError);
    }
    gate.resolve();
    await flush();
  });
});
