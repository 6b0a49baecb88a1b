/**
 * Attack on ThreadPool with real threads (few, short cases): submits of jobs that return,
 * throw, throw non-Errors, kill their thread (process.exit, an asynchronous throw), block
 * ignoring their signal or wait for it, and bursts of tiny jobs that travel (and report) in
 * batches, interleaved with resizes, caller-signal cancels, job timeouts (5-40 ms),
 * drain(timeout) and abort. Jobs count their own runs and the most running at once in shared
 * memory. No job times out before it ran (never ran → AbortError only), only a job that kills
 * its thread gets WorkerCrashedError (a finished job's batched result is never lost with its
 * thread), and stats count what was seen.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, it, vi } from 'vitest';
// Built code (dist/, kept fresh by test/build-setup.ts): every case starts threads, and a thread
// started from TypeScript pays for tsx's loader each time (about 0.4 s here) — 44 cases in 30 s
// from src/, 156 from dist/ (one machine, under load).
import { AbortError, TimeoutError, WorkerCrashedError } from '../../dist/errors.js';
import type { Result } from '../../dist/result.js';
import { BatchSize, MAX_BATCH } from '../../dist/threads/batch-size.js';
import { ThreadPool } from '../../dist/threads/pool.js';
import type { ThreadJob, ThreadKind } from './fixtures/thread-jobs.js';
import {
  abortListeners,
  flush,
  fuzzAssert,
  fuzzParams,
  realSetTimeout,
  testTimeout,
  UnhandledCounter,
  Violations,
  watchdog,
} from './harness.js';

const MODULE = new URL('./fixtures/thread-jobs.js', import.meta.url);
const MAX_JOBS = 96;
/** Kinds that end their thread: the only ones that may settle as WorkerCrashedError. */
const KILLERS: ReadonlySet<ThreadKind> = new Set<ThreadKind>(['exit', 'timer-throw']);

type Command =
  | { t: 'submit'; kind: ThreadKind; signal: boolean; via: 'submit' | 'trySubmit' }
  | { t: 'burst'; kinds: ThreadKind[] }
  | { t: 'resize'; n: number }
  | { t: 'cancel'; pick: number }
  | { t: 'release'; pick: number }
  | { t: 'drain'; timeout: number }
  | { t: 'abort' }
  | { t: 'tick' };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('submit' as const),
      kind: fc.constantFrom<ThreadKind>(
        'value',
        'value',
        'throw',
        'throw-value',
        'exit',
        'timer-throw',
        'block',
        'block',
        'block',
        'wait-abort',
      ),
      signal: fc.boolean(),
      via: fc.constantFrom<'submit' | 'trySubmit'>('submit', 'trySubmit'),
    }),
  },
  {
    // Many tiny jobs at once (trySubmit): with a deep queue they travel in batches.
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('burst' as const),
      kinds: fc.array(
        fc.constantFrom<ThreadKind>(
          'value',
          'value',
          'value',
          'value',
          'throw',
          'throw-value',
          'exit',
          'timer-throw',
        ),
        { minLength: 1, maxLength: 40 },
      ),
    }),
  },
  {
    // Sizes 1 and 2 only: the peak check allows the largest size ever set.
    weight: 3,
    arbitrary: fc.record({ t: fc.constant('resize' as const), n: fc.integer({ min: 1, max: 2 }) }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('cancel' as const), pick: fc.nat(7) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('release' as const), pick: fc.nat(7) }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 50 }).map((timeout): Command => ({ t: 'drain', timeout })),
  },
  { weight: 1, arbitrary: fc.constant<Command>({ t: 'abort' }) },
  { weight: 2, arbitrary: fc.constant<Command>({ t: 'tick' }) },
);

interface Rec {
  id: number;
  kind: ThreadKind;
  ac: AbortController | undefined;
  accepted: boolean | undefined;
  result: Result<ThreadJob, unknown> | undefined;
  results: number;
}

class ThreadPoolModel {
  readonly v = new Violations();
  readonly log: string[] = [];
  readonly sab = new SharedArrayBuffer(4 * (2 + 2 * MAX_JOBS));
  readonly cells = new Int32Array(this.sab);
  readonly poolSignal = new AbortController();
  readonly pool: ThreadPool<ThreadJob, unknown>;
  readonly recs: Rec[] = [];
  readonly ends: Promise<unknown>[] = [];
  maxSize: number;
  size: number;
  stopped = false;

  constructor(
    threads: number,
    readonly timeout: number | undefined,
    queueSize: number,
  ) {
    this.size = threads;
    this.maxSize = threads;
    this.pool = new ThreadPool<ThreadJob, unknown>(MODULE, {
      threads,
      queueSize,
      signal: this.poolSignal.signal,
      timeout,
      // A timed-out blocking job ignores its signal; the model releases it when its TimeoutError
      // arrives, well within the grace (a terminated thread would leave its count in the cells).
      abortGrace: 5_000,
    });
  }

  #record(kind: ThreadKind, signal: boolean): Rec {
    const rec: Rec = {
      id: this.recs.length,
      kind,
      ac: signal ? new AbortController() : undefined,
      accepted: undefined,
      result: undefined,
      results: 0,
    };
    this.recs.push(rec);
    return rec;
  }

  #follow(rec: Rec, task: { result: Promise<Result<ThreadJob, unknown>> }): void {
    rec.accepted = true;
    void task.result.then((r) => {
      rec.result = r;
      rec.results++;
      this.log.push(`  result(${rec.id}) ${r.ok ? 'ok' : r.error.name}`);
      if (!r.ok && r.error instanceof TimeoutError && rec.kind === 'block') this.release(rec);
    });
  }

  release(rec: Rec): void {
    Atomics.store(this.cells, 3 + 2 * rec.id, 1);
    Atomics.notify(this.cells, 3 + 2 * rec.id);
  }

  async exec(c: Command): Promise<void> {
    this.log.push(JSON.stringify(c));
    switch (c.t) {
      case 'submit': {
        if (this.recs.length >= MAX_JOBS || this.stopped) break;
        const rec = this.#record(c.kind, c.signal);
        const job: ThreadJob = { id: rec.id, kind: c.kind, sab: this.sab };
        const opts = rec.ac ? { signal: rec.ac.signal } : undefined;
        const onTask = (task: { result: Promise<Result<ThreadJob, unknown>> }): void => {
          this.#follow(rec, task);
        };
        if (c.via === 'trySubmit') {
          const task = this.pool.trySubmit(job, opts);
          if (task) onTask(task);
          else rec.accepted = false;
        } else {
          // A full queue: wait a little for room (real threads), or give up by aborting.
          const waiting = this.pool.submit(job, opts).then(onTask, () => {
            rec.accepted = false;
          });
          await watchdog(waiting, 'submit', 200).catch(() => {
            this.log.push(`  submit(${rec.id}) still waiting`);
          });
        }
        break;
      }
      case 'burst':
        for (const kind of c.kinds) {
          if (this.recs.length >= MAX_JOBS || this.stopped) break;
          const rec = this.#record(kind, false);
          const task = this.pool.trySubmit({ id: rec.id, kind, sab: this.sab });
          if (task) this.#follow(rec, task);
          else rec.accepted = false;
        }
        break;
      case 'resize':
        if (this.stopped) break;
        this.size = c.n;
        this.maxSize = Math.max(this.maxSize, c.n);
        this.pool.resize(c.n);
        break;
      case 'cancel': {
        const open = this.recs.filter((r) => r.ac && !r.ac.signal.aborted);
        const rec = open[c.pick % Math.max(1, open.length)];
        if (!rec) break;
        rec.ac?.abort('caller');
        // A blocking job ignores its signal; let it end soon instead of waiting out the grace.
        if (rec.kind === 'block') this.release(rec);
        break;
      }
      case 'release': {
        const open = this.recs.filter((r) => r.kind === 'block' || r.kind === 'wait-abort');
        const rec = open[c.pick % Math.max(1, open.length)];
        if (rec) this.release(rec);
        break;
      }
      case 'drain':
        this.stopped = true;
        this.ends.push(this.pool.drain({ timeout: c.timeout }));
        break;
      case 'abort':
        this.stopped = true;
        this.ends.push(this.pool.abort('fuzz'));
        break;
      case 'tick':
        // Threads move in real time: let the jobs handed over so far start.
        await this.started(30);
        break;
    }
  }

  /** Threads move in real time: a short real pause lets handed-over jobs start. */
  async started(ms: number): Promise<void> {
    await new Promise((resolve) => realSetTimeout(resolve, ms));
    await flush();
  }

  async finish(): Promise<void> {
    this.log.push('-- finish: release every job, drain');
    for (const rec of this.recs) this.release(rec);
    await watchdog(Promise.all([this.pool.drain(), ...this.ends]), 'drain()', 15_000);
    for (let i = 0; i < 5; i++) await flush();
    const v = this.v;
    let settled = 0;
    let timedOut = 0;
    for (const rec of this.recs) {
      const runs = Atomics.load(this.cells, 2 + 2 * rec.id);
      v.check(runs <= 1, () => `job ${rec.id} ran ${runs} times`);
      if (!rec.accepted) {
        v.check(runs === 0, () => `job ${rec.id} was not accepted but ran`);
        continue;
      }
      settled++;
      v.check(rec.results === 1, () => `job ${rec.id} accepted, ${rec.results} results`);
      const r = rec.result;
      if (!r) continue;
      if (r.ok)
        v.check(
          r.value === rec.id * 10 && runs === 1,
          () => `job ${rec.id}: ok ${String(r.value)}, ran ${runs}`,
        );
      else {
        v.check(r.error instanceof Error, () => `job ${rec.id}: error is not an Error`);
        // Nothing here kills a thread from outside, so a job that finished always reports its
        // own outcome, even when its thread dies before the rest of its batch reported.
        v.check(
          !(r.error instanceof WorkerCrashedError) || KILLERS.has(rec.kind),
          () => `job ${rec.id} (${rec.kind}) failed with ${r.error.message}`,
        );
        if (rec.kind === 'throw' && runs === 1 && !(r.error instanceof TimeoutError))
          v.check(
            r.error instanceof AbortError || r.error.message === `job ${rec.id}`,
            () => `job ${rec.id} (throw) failed with ${r.error.name}: ${r.error.message}`,
          );
        if (r.error instanceof TimeoutError) {
          timedOut++;
          v.check(this.timeout !== undefined, () => `job ${rec.id} timed out without a timeout`);
        }
        if (runs === 0)
          v.check(
            r.error instanceof AbortError,
            () => `job ${rec.id} never ran but failed with ${r.error.name}`,
          );
      }
      if (rec.ac)
        v.check(
          abortListeners(rec.ac.signal) === 0,
          () => `job ${rec.id}: listeners left on its signal`,
        );
    }
    const peak = Atomics.load(this.cells, 1);
    v.check(
      peak <= this.maxSize,
      () => `${peak} jobs ran at once with at most ${this.maxSize} threads`,
    );
    const s = this.pool.stats();
    const total = s.succeeded + s.failed + s.timedOut + s.canceled + s.crashed;
    v.check(
      total === settled && s.submitted === settled,
      () => `stats: ${total} settled, ${s.submitted} submitted, observed ${settled}`,
    );
    v.check(s.timedOut === timedOut, () => `stats: ${s.timedOut} timed out, observed ${timedOut}`);
    v.check(
      s.running === 0 && s.queued === 0,
      () => `after drain: running ${s.running}, queued ${s.queued}`,
    );
    v.check(
      abortListeners(this.poolSignal.signal) === 0,
      () => 'the pool signal keeps its listener after drain',
    );
  }
}

describe('fuzz: ThreadPool', () => {
  const unhandled = new UnhandledCounter();
  beforeEach(() => unhandled.install());
  afterEach(() => unhandled.uninstall());

  it('every accepted job runs at most once and settles once, threads are never exceeded', {
    timeout: testTimeout(60_000),
  }, async () => {
    await fuzzAssert(
      'ThreadPool',
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2 }),
        fc.option(fc.integer({ min: 5, max: 40 }), { nil: undefined }),
        fc.constantFrom(2, 128),
        fc.boolean(),
        fc.array(command, { minLength: 1, maxLength: 12 }),
        async (threads, timeout, queueSize, eager, commands) => {
          const before = unhandled.reasons.length;
          // A case is too short for the batch sizer to measure jobs as tiny: when `eager`,
          // every waiting job (up to a full batch) travels at once, as tiny ones would.
          const sizer = eager
            ? vi
                .spyOn(BatchSize.prototype, 'next')
                .mockImplementation((waiting: number) => Math.min(waiting, MAX_BATCH))
            : undefined;
          const m = new ThreadPoolModel(threads, timeout, queueSize);
          m.log.push(
            `new ThreadPool({ threads: ${threads}, queueSize: ${queueSize}, timeout: ${timeout} })${eager ? ', batches as for tiny jobs' : ''}`,
          );
          try {
            // Commands race threads that are still loading otherwise: start from a ready pool.
            await watchdog(m.pool.ready, 'ready', 10_000);
            for (const c of commands) await m.exec(c);
            await m.finish();
          } catch (error) {
            m.v.list.push(String(error));
            await m.pool.abort('fuzz cleanup').catch(() => undefined);
          } finally {
            sizer?.mockRestore();
          }
          m.v.check(
            unhandled.reasons.length === before,
            () => `unhandled rejection: ${String(unhandled.reasons.at(-1))}`,
          );
          m.v.throwIfAny(m.log);
        },
      ),
      fuzzParams(0.2),
    );
  });
});
