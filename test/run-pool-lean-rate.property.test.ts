/**
 * runPool with a lone `rate` on the lean engine (scheduler/lean-engine.ts) against the full
 * engine's rate-only path (internal/pull-engine.ts), forced by hooks that want every job and do
 * nothing (the internal HOOKS option), on a fake clock. Same random jobs, sources, consumers and
 * limiters through both — the in-process limiter (exact, and with unread runs and merged starts),
 * and a scripted `RateLimiter` (waits, throws, bad waits, async and hostile answers, a limiter
 * that aborts the signal or ends the iteration): the same results in the same order, the same
 * starts at the same times, no window over its limit, no timer or abort listener left.
 */
import diagnostics from 'node:diagnostics_channel';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LocalRateLimiter } from '../src/gates/sliding-window.js';
import { type RateLimiter, type Result, runPool } from '../src/index.js';
import { HOOKS } from '../src/scheduler/hooks.js';
import { type OutcomeKind, scriptedOutcome, turns } from './fixtures/scripted-outcome.js';
import { fakeClock } from './fuzz/gate-model.js';
import { abortListeners, flush, fuzzAssert, fuzzParams, testTimeout } from './fuzz/harness.js';

type Kind = OutcomeKind | 'hang' | 'timer';
interface Spec {
  kind: Kind;
  /** Microtask turns before an async outcome; ms for a timer. */
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
    'timer',
    'timer',
  ),
  delay: fc.nat(6),
});

/** One answer of a scripted limiter's reserve(). */
type Answer =
  | { t: 'wait'; ms: number }
  | { t: 'throw' }
  | { t: 'bad'; value: number | string }
  | { t: 'async'; ms: number }
  | { t: 'async-reject' }
  | { t: 'hostile' }
  | { t: 'abort'; ms: number }
  | { t: 'return'; ms: number };

const answer: fc.Arbitrary<Answer> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ t: fc.constant('wait' as const), ms: fc.nat(12) }) },
  { weight: 1, arbitrary: fc.constant<Answer>({ t: 'throw' }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('bad' as const),
      value: fc.constantFrom<number | string>(-1, Number.NaN, 'soon'),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('async' as const), ms: fc.nat(12) }) },
  { weight: 1, arbitrary: fc.constant<Answer>({ t: 'async-reject' }) },
  { weight: 1, arbitrary: fc.constant<Answer>({ t: 'hostile' }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('abort' as const), ms: fc.nat(12) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('return' as const), ms: fc.nat(12) }) },
);

type RateSpec =
  | { kind: 'window'; limit: number; interval: number }
  | { kind: 'unread'; limit: number; interval: number; unread: number; grain: number }
  | { kind: 'scripted'; answers: Answer[] };

const rateSpec: fc.Arbitrary<RateSpec> = fc.oneof(
  fc.record({
    kind: fc.constant('window' as const),
    limit: fc.integer({ min: 1, max: 4 }),
    interval: fc.integer({ min: 1, max: 40 }),
  }),
  fc.record({
    kind: fc.constant('unread' as const),
    limit: fc.integer({ min: 2, max: 6 }),
    interval: fc.integer({ min: 1, max: 40 }),
    unread: fc.integer({ min: 1, max: 3 }),
    grain: fc.nat(6),
  }),
  fc.record({
    kind: fc.constant('scripted' as const),
    answers: fc.array(answer, { minLength: 1, maxLength: 8 }),
  }),
);

interface Scenario {
  specs: Spec[];
  rate: RateSpec;
  concurrency: number;
  buffer: number;
  ordered: boolean;
  asyncSource: boolean;
  /** next() calls made at once by the consumer. */
  batch: number;
  /** Break (return()) after this many results; undefined: read to the end. */
  breakAfter: number | undefined;
  /** Abort the signal after this many results; undefined: never. */
  abortAfter: number | undefined;
  /** Someone listens to the job events: the lean engine runs each job as a JobRun. */
  listen: boolean;
}

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    specs: fc.array(spec, { maxLength: 25 }),
    rate: rateSpec,
    concurrency: fc.integer({ min: 1, max: 4 }),
    buffer: fc.integer({ min: 0, max: 3 }),
    ordered: fc.boolean(),
    asyncSource: fc.boolean(),
    batch: fc.integer({ min: 1, max: 3 }),
    breakAfter: fc.option(fc.nat(25), { nil: undefined }),
    abortAfter: fc.option(fc.nat(25), { nil: undefined }),
    listen: fc.boolean(),
  })
  .map((s) =>
    // A hanging job is ended by the abort it triggers itself (see drive): only in runs that abort.
    s.abortAfter === undefined
      ? { ...s, specs: s.specs.map((x) => (x.kind === 'hang' ? { ...x, kind: 'resolve' } : x)) }
      : s,
  );

interface Trace {
  /** Every result (or the end, an error, a stop) in the order the consumer saw it. */
  seen: unknown[];
  /** Each worker start: `index@ms` from the run's start, on the fake clock. */
  starts: string[];
  startTimes: number[];
  pulls: number;
  reserves: number;
  maxRunning: number;
  badWorker: string | undefined;
  aborted: string[];
  sourceClosed: boolean;
  timersLeft: number;
  listenersLeft: number;
  /** `sluice:job:rate-limited` waits (ms, or `async`) and, when listening, job events. */
  events: string[];
}

/** A scripted RateLimiter: its answers in turn, over and over. */
function scriptedLimiter(
  answers: Answer[],
  trace: Trace,
  ac: AbortController,
  stop: () => void,
): RateLimiter {
  return {
    reserve() {
      const a = answers[trace.reserves++ % answers.length] as Answer;
      switch (a.t) {
        case 'wait':
          return a.ms;
        case 'throw':
          throw new Error('limiter down');
        case 'bad':
          return a.value as number;
        case 'async':
          return turns(2).then(() => a.ms);
        case 'async-reject':
          return turns(1).then(() => {
            throw new Error('limiter rejected');
          });
        case 'hostile': {
          const p = Promise.resolve(0);
          Object.defineProperty(p, 'constructor', {
            get() {
              throw new Error('hostile constructor');
            },
          });
          return p;
        }
        case 'abort':
          ac.abort(new Error('stop'));
          return a.ms;
        case 'return':
          stop();
          return a.ms;
      }
    },
  };
}

/** Awaits `promises` on the fake clock: its timers fire one by one while they are pending. */
async function settleAll<T>(
  promises: Promise<T>[],
): Promise<({ value: T } | { error: unknown })[] | undefined> {
  const out: ({ value: T } | { error: unknown })[] = [];
  let pending = promises.length;
  promises.forEach((p, i) => {
    p.then(
      (value) => {
        out[i] = { value };
        pending--;
      },
      (error: unknown) => {
        out[i] = { error };
        pending--;
      },
    );
  });
  for (let spins = 0; ; spins++) {
    await flush();
    if (pending === 0) return out;
    // Nothing left to fire and still waiting: a hang.
    if (vi.getTimerCount() === 0 || spins > 2000) return undefined;
    vi.advanceTimersToNextTimer();
  }
}

async function drive(s: Scenario, full: boolean): Promise<Trace> {
  const trace: Trace = {
    seen: [],
    starts: [],
    startTimes: [],
    pulls: 0,
    reserves: 0,
    maxRunning: 0,
    badWorker: undefined,
    aborted: [],
    sourceClosed: false,
    timersLeft: 0,
    listenersLeft: 0,
    events: [],
  };
  const t0 = performance.now();
  let running = 0;
  const busy = new Set<number>();
  const ac = new AbortController();
  function* syncJobs() {
    try {
      for (let i = 0; i < s.specs.length; i++) {
        trace.pulls++;
        yield i;
      }
    } finally {
      trace.sourceClosed = true;
    }
  }
  async function* asyncJobs() {
    try {
      for (let i = 0; i < s.specs.length; i++) {
        await undefined;
        trace.pulls++;
        yield i;
      }
    } finally {
      trace.sourceClosed = true;
    }
  }
  const worker = (i: number, ctx: { index: number; workerId: number; signal: AbortSignal }) => {
    const x = s.specs[i] as Spec;
    const at = performance.now() - t0;
    trace.starts.push(`${i}@${at}`);
    trace.startTimes.push(at);
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
    if (x.kind !== 'hang' && x.kind !== 'timer') return scriptedOutcome(x.kind, i, x.delay, done);
    if (x.kind === 'hang') void turns(x.delay + 8).then(() => ac.abort(new Error('stop')));
    // A timer job ends after `delay` ms, or when canceled (its timer cleared); a hanging one only
    // when canceled.
    return new Promise((resolve, reject) => {
      const timer =
        x.kind === 'timer'
          ? setTimeout(() => {
              done();
              resolve(i * 13);
            }, x.delay)
          : undefined;
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        done();
        trace.aborted.push(`${i}:${(ctx.signal.reason as Error).constructor.name}`);
        reject(ctx.signal.reason);
      });
    });
  };
  // Assigned before the limiter is first asked (at the first next()).
  let it!: AsyncIterableIterator<Result<number, unknown>>;
  const stop = () => {
    trace.seen.push('returned by the limiter');
    void it.return?.();
  };
  const r = s.rate;
  const rate =
    r.kind === 'window'
      ? { limit: r.limit, interval: r.interval }
      : r.kind === 'unread'
        ? new LocalRateLimiter(r.limit, r.interval, r.unread, r.grain)
        : scriptedLimiter(r.answers, trace, ac, stop);
  const onWait = (m: unknown) => {
    const { name, waitMs } = m as { name: string; waitMs: number | undefined };
    if (name === 'run-pool') trace.events.push(`wait ${waitMs ?? 'async'}`);
  };
  const onSettled = (m: unknown) => {
    const { name, index } = m as { name: string; index: number };
    if (name === 'run-pool') trace.events.push(`settled ${index}`);
  };
  diagnostics.subscribe('sluice:job:rate-limited', onWait);
  if (s.listen) diagnostics.subscribe('sluice:job:settled', onSettled);
  try {
    await consume();
  } finally {
    diagnostics.unsubscribe('sluice:job:rate-limited', onWait);
    if (s.listen) diagnostics.unsubscribe('sluice:job:settled', onSettled);
  }
  // Late outcomes of canceled workers must change nothing.
  await flush();
  trace.timersLeft = vi.getTimerCount();
  trace.listenersLeft = abortListeners(ac.signal);
  return trace;

  /** Reads the results in batches of `s.batch` next() calls, breaking or aborting as told. */
  async function consume(): Promise<void> {
    it = runPool(s.asyncSource ? asyncJobs() : syncJobs(), worker, {
      concurrency: s.concurrency,
      buffer: s.buffer,
      ordered: s.ordered,
      signal: ac.signal,
      rate,
      ...(full ? { [HOOKS]: {} } : {}),
    });
    let consumed = 0;
    let ended = false;
    while (!ended) {
      const batch = Array.from({ length: s.batch }, () => it.next());
      const outcomes = await settleAll(batch);
      if (outcomes === undefined) {
        trace.seen.push('stuck');
        await it.return?.();
        break;
      }
      for (const o of outcomes) {
        if ('error' in o) {
          trace.seen.push(`threw ${String(o.error)}`);
          ended = true;
          continue;
        }
        if (o.value.done) {
          trace.seen.push('done');
          ended = true;
          continue;
        }
        consumed++;
        const v = o.value.value;
        trace.seen.push(
          v.ok
            ? { index: v.index, job: v.job, value: v.value }
            : {
                index: v.index,
                job: v.job,
                error: `${v.error.constructor.name}:${v.error.message}`,
              },
        );
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
  }
}

/** The most starts in any window `[t, t + interval)`. */
function busiestWindow(times: number[], interval: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while ((sorted[i] as number) - (sorted[j] as number) >= interval) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

describe('runPool with a lone rate: the lean engine behaves as the full engine', () => {
  beforeEach(fakeClock);
  afterEach(() => {
    vi.useRealTimers();
  });

  it('same results in the same order, the same starts at the same times, windows kept, nothing left, on random runs', {
    timeout: testTimeout(120_000),
  }, async () => {
    await fuzzAssert(
      'runPool lean rate vs full',
      fc.asyncProperty(scenario, async (s) => {
        const lean = await drive(s, false);
        const full = await drive(s, true);
        for (const t of [lean, full]) {
          expect(t.seen).not.toContain('stuck');
          expect(t.badWorker).toBeUndefined();
          expect(t.maxRunning).toBeLessThanOrEqual(s.concurrency);
          expect(t.timersLeft).toBe(0);
          expect(t.listenersLeft).toBe(0);
          const indices = t.seen.flatMap((x) =>
            typeof x === 'object' && x !== null ? [(x as { index: number }).index] : [],
          );
          expect(new Set(indices).size).toBe(indices.length);
          // Read to the end: nothing lost either.
          if (s.breakAfter === undefined && !t.seen.includes('returned by the limiter')) {
            expect(indices.length).toBe(t.pulls);
          }
          if (s.ordered) expect(indices).toEqual([...indices].sort((a, b) => a - b));
          if (s.rate.kind !== 'scripted') {
            expect(busiestWindow(t.startTimes, s.rate.interval)).toBeLessThanOrEqual(s.rate.limit);
          }
        }
        expect(lean.seen).toEqual(full.seen);
        expect(lean.starts).toEqual(full.starts);
        expect(lean.pulls).toBe(full.pulls);
        expect(lean.reserves).toBe(full.reserves);
        expect(lean.aborted).toEqual(full.aborted);
        expect(lean.sourceClosed).toBe(full.sourceClosed);
        expect(lean.events).toEqual(full.events);
      }),
      fuzzParams(12),
    );
  });
});
