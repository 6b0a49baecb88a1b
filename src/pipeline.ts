import { AbortError } from './errors.js';
import { type AdaptiveConcurrency, adaptiveOf } from './gates/adaptive.js';
import type { GateOptions } from './gates/gate-options.js';
import { onAbort } from './internal/abort-fanout.js';
import type { JobContext, WorkerFunction } from './internal/job-run.js';
import {
  argument,
  drainDeadline,
  invalidArgument,
  invalidState,
  iterableArgument,
  nonNegativeInt,
  optionalBoolean,
  optionalDuration,
  optionalSignal,
  optionsObject,
  positiveInt,
} from './internal/options.js';
import { type EngineGates, notAnObject, openIterator, PullEngine } from './internal/pull-engine.js';
import { announcePool } from './observability/gate-channels.js';
import { publishingHooks } from './observability/publisher.js';
import {
  type StuckJob,
  Watchdog,
  type WatchdogOptions,
  watchdogOptions,
  type ZombieJob,
} from './observability/watchdog.js';
import type { PipelineResult, Result } from './result.js';
import { engineGates } from './run-pool.js';
import { type Percentiles, StatsRecorder } from './stats.js';

/** Anything with `run(job, { signal })`, such as a `ThreadPool` or a `Pool`, can be a stage. */
export interface StageRunner<T, U> {
  run(job: T, opts?: { signal?: AbortSignal }): Promise<U>;
  stats?(): { concurrency: number };
}

/**
 * Options of one stage: its pool's own, and the gates (`retry`, `rate`, `key`, `perKey`,
 * `priority`) with the same meaning as on `runPool`, applied to the stage's input value. A
 * retried stage job counts once in the stage's `done`; `retried` in its stats counts the retries.
 */
export interface StageOptions<T = unknown> extends GateOptions<T> {
  /** Jobs this stage runs at once. Required for a worker function; for a `StageRunner` it
   * defaults to the runner's own `stats().concurrency` (a ThreadPool's thread count). An
   * {@link adaptive} limit moves with the stage's run times and overload failures, as on
   * `Pool` (`buffer` then defaults to its max; `stats()` shows its current value). */
  concurrency?: number | AdaptiveConcurrency;
  /** Finished results this stage holds for the next one. Default: the stage's concurrency. */
  buffer?: number;
  /** Per-job limit in ms from the job's start in this stage. Default: none. */
  timeout?: number;
  /** Yield in the order this stage received its jobs (default false: completion order). */
  ordered?: boolean;
  /** The input's priority in this stage (higher starts first); see `RunPoolOptions.priority`. */
  priority?: (value: T) => number;
  /**
   * Opt-in stuck-job watchdog for this stage, as on `Pool` (README "Watchdog"): events name the
   * stage, and its `stats()` entry lists `stuck` and `zombies` (jobs as the stage's input values).
   */
  watchdog?: WatchdogOptions;
}

/** A stage's counters, from {@link Pipeline.stats}. */
export interface StageStats {
  name: string;
  concurrency: number;
  /** Jobs running in this stage now. */
  running: number;
  /** Jobs finished by the stage before and waiting for this one (its input buffer). */
  queued: number;
  /** Jobs this stage settled (any outcome; failures that skipped it are not counted). */
  done: number;
  succeeded: number;
  /** Jobs that failed in this stage (thrown, timed out, crashed or canceled). */
  failed: number;
  /** Of `failed`, those canceled (a signal, `abort()`, a drain deadline). */
  canceled: number;
  /** Busy slot-time over available slot-time (0..1); the bottleneck stage is the one near 1. */
  utilization: number;
  runTime: Percentiles;
  /** Failed attempts this stage ran again (its `retry` option). */
  retried: number;
  /** With the stage's `watchdog` option: its jobs running past `stuckAfter` now. */
  stuck?: StuckJob[];
  /** With the stage's `watchdog` option: its zombies past `zombieAfter` now. */
  zombies?: ZombieJob[];
}

/** What `Pipeline.drain()` resolves with. */
export interface PipelineDrainReport {
  /** Jobs canceled (each yielded an `AbortError` result) from the `drain()` call to the end. */
  canceled: number;
}

/** Options of {@link pipeline}. */
export interface PipelineOptions {
  /** Aborting it aborts the whole pipeline, like {@link Pipeline.abort}. */
  signal?: AbortSignal;
}

/** What flows between stages: the source job, its source index, and the current value. */
interface Envelope {
  job: unknown;
  index: number;
  value: unknown;
  failure: { error: Error; stage: string } | undefined;
  /** From the latest stage with a `retry` option that ran the job: its attempts and errors. */
  retries: { attempts: number; errors: Error[] } | undefined;
}

interface StageDef {
  name: string;
  worker: WorkerFunction<unknown, unknown>;
  concurrency: number;
  adaptive: AdaptiveConcurrency | undefined;
  buffer: number;
  timeout: number | undefined;
  ordered: boolean;
  gates: EngineGates<Envelope> | undefined;
  watchdog: ReturnType<typeof watchdogOptions>;
}

interface LiveStage {
  def: StageDef;
  engine: PullEngine<Envelope, unknown>;
  stats: StatsRecorder;
  /** Its reader on `sluice:pool:created`, kept so a collector's WeakRef lives as long as it. */
  snapshot?: unknown;
  watchdog: Watchdog | undefined;
}

function isRunner(value: unknown): value is StageRunner<unknown, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as StageRunner<unknown, unknown>).run === 'function'
  );
}

/**
 * A chain of stages, each with its own pool and a bounded buffer before the next, so when one
 * stage slows down the buffers before it fill and the source stops being pulled (backpressure
 * reaches the producer). A job that fails in a stage skips the later ones and arrives as
 * `{ ok: false, stage, error }`; the other jobs continue. Iterate it once.
 *
 * Lifecycle: `drain()` stops pulling the source and lets every stage finish what it holds, in
 * order; `abort()` (or the `signal`) cancels everything; either way every job pulled from the
 * source yields exactly one result. Breaking out of the loop stops pulling and cancels running
 * jobs. A `StageRunner` (e.g. a ThreadPool) passed to `stage()` stays yours: the pipeline
 * cancels its jobs but does not close it — `drain()` it (or `await using`) when done.
 *
 * @example
 * ```ts
 * const results = pipeline(paths)
 *   .stage('extract', extractPool, { buffer: 4 })              // a ThreadPool
 *   .stage('embed', embed, { concurrency: 16 })
 *   .stage('insert', insert, { concurrency: 1 });
 * for await (const r of results) if (!r.ok) console.error(r.stage, r.job, r.error);
 * console.table(results.stats());
 * ```
 */
export class Pipeline<J, T> implements AsyncIterable<PipelineResult<J, T>> {
  readonly #source: Iterable<J> | AsyncIterable<J>;
  readonly #signal: AbortSignal | undefined;
  readonly #defs: StageDef[];
  #live: LiveStage[] | undefined;
  #aborted: Error | undefined;
  #draining = false;
  #done: { promise: Promise<void>; resolve: () => void };

  /** Use {@link pipeline} to create one. */
  constructor(
    source: Iterable<J> | AsyncIterable<J>,
    opts: PipelineOptions,
    defs: StageDef[] = [],
  ) {
    this.#source = source;
    this.#signal = optionalSignal('signal', opts.signal);
    this.#defs = defs;
    let resolve!: () => void;
    this.#done = { promise: new Promise<void>((r) => (resolve = r)), resolve };
  }

  /**
   * Adds a stage. `worker` is a worker function `(value, ctx) => result` or a
   * {@link StageRunner} such as a ThreadPool. Returns a new pipeline; call before iterating.
   * @throws TypeError/RangeError naming the option when an option is invalid (`code`
   *   `ERR_INVALID_OPTION`), TypeError `ERR_INVALID_ARGUMENT` for an empty or taken name or a bad
   *   worker, TypeError `ERR_INVALID_STATE` once the pipeline is being iterated.
   */
  stage<U>(
    name: string,
    worker: WorkerFunction<T, U> | StageRunner<T, U>,
    opts: StageOptions<T> = {},
  ): Pipeline<J, U> {
    if (this.#live) invalidState('stage() must be called before the pipeline is iterated');
    if (typeof name !== 'string' || name === '') {
      invalidArgument('name', name, 'a non-empty string');
    }
    if (this.#defs.some((d) => d.name === name)) {
      invalidArgument('name', name, 'a name no other stage of this pipeline has');
    }
    const def = this.#define(
      name,
      worker as WorkerFunction<unknown, unknown> | StageRunner<unknown, unknown>,
      optionsObject<StageOptions>(argument('opts'), opts) ?? {},
    );
    return new Pipeline<J, U>(this.#source, { signal: this.#signal }, [...this.#defs, def]);
  }

  [Symbol.asyncIterator](): AsyncIterator<PipelineResult<J, T>> {
    if (this.#live) invalidState('a pipeline can be iterated only once');
    this.#live = this.#build();
    const last = this.#live.at(-1);
    if (!last) invalidState('a pipeline needs at least one stage');
    // drain() or abort() before iterating: start stopped (every stage still ends cleanly).
    if (this.#aborted) this.#live[0]?.engine.stopPulling(this.#aborted);
    else if (this.#draining) this.#live[0]?.engine.stopPulling();
    return this.#output(last);
  }

  /** Per-stage counters, in stage order. See {@link StageStats} (and the README) for finding the bottleneck. */
  stats(): StageStats[] {
    return (this.#live ?? []).map((stage, i, all) => {
      const concurrency = stage.def.adaptive?.limit ?? stage.def.concurrency;
      const s = stage.stats.snapshot(concurrency, stage.engine.running, 0);
      const queued = i === 0 ? 0 : (all[i - 1] as LiveStage).engine.buffered;
      const failed = s.failed + s.timedOut + s.canceled + s.crashed;
      const entry: StageStats = {
        name: stage.def.name,
        concurrency,
        running: stage.engine.running,
        queued,
        done: s.succeeded + failed,
        succeeded: s.succeeded,
        failed,
        canceled: s.canceled,
        utilization: s.utilization,
        retried: s.retried,
        runTime: s.runTime,
      };
      if (stage.watchdog !== undefined) Object.assign(entry, stage.watchdog.snapshot());
      return entry;
    });
  }

  /**
   * Stops pulling the source; every stage finishes what it holds (a value that a pull already
   * pending brings runs too: nothing taken from the source is lost). Keep consuming the results:
   * the promise resolves once the last one has been taken (called before iterating, it resolves
   * at once and the pipeline yields nothing). With `timeout` (ms), what is still running or
   * buffered then is canceled as by `abort()` (each such job yields an `AbortError` result), as
   * a Pool's drain deadline does; calling again returns the first call's promise (its report
   * counts from that call) and adds a deadline, the earliest wins.
   * @returns a promise that resolves when the iteration has ended, with `canceled`: the jobs the
   *   deadline (or an `abort()` meanwhile) canceled, counted over the stages from the first call — so
   *   `shutdownOn(['SIGTERM'], () => results.drain({ timeout }))` exits non-zero when work was
   *   dropped, as for a Pool.
   * @throws RangeError/TypeError (rejection, `ERR_INVALID_OPTION`) when `timeout` is not a
   *   number of ms in 0..2147483647 (`ERR_INVALID_ARGUMENT` when `opts` is not an object); the
   *   pipeline is then left as it was.
   * @example
   * ```ts
   * process.once('SIGTERM', () => void results.drain({ timeout: 10_000 }));
   * ```
   */
  drain(opts?: { timeout?: number }): Promise<PipelineDrainReport> {
    let timeout: number | undefined;
    try {
      timeout = drainDeadline(opts);
    } catch (error) {
      return Promise.reject(error); // misuse of a promise-returning method rejects (README)
    }
    this.#draining = true;
    // Not iterated yet: nothing was pulled, so nothing is left to finish (a later iteration
    // yields nothing); waiting for an iteration nobody may start would never end.
    if (this.#live === undefined) {
      this.#drained ??= Promise.resolve({ canceled: 0 });
      return this.#drained;
    }
    if (this.#drained === undefined) {
      this.#live[0]?.engine.stopPulling();
      const before = this.#canceled();
      this.#drained = this.#done.promise.then(() => ({ canceled: this.#canceled() - before }));
    }
    if (timeout !== undefined) {
      const error = new AbortError(undefined, `drain timed out after ${timeout} ms`);
      // Not unref'd (as a Pool's): with only hung jobs left, nothing else may keep the process
      // alive until the deadline cancels them and the loop gets their results.
      const timer = setTimeout(() => this.abort(error), timeout);
      const clear = () => clearTimeout(timer);
      this.#done.promise.then(clear, clear);
    }
    return this.#drained;
  }
  /** The first `drain()`'s promise: later calls return it, as a Pool's (their deadlines count). */
  #drained: Promise<PipelineDrainReport> | undefined;

  /** Jobs canceled so far, over the stages (a canceled job skips the later ones: counted once). */
  #canceled(): number {
    let canceled = 0;
    for (const stage of this.stats()) canceled += stage.canceled;
    return canceled;
  }

  /**
   * Cancels everything now: running jobs abort, later stages run nothing new; every pulled job
   * still yields one result (canceled ones as `AbortError`). Idempotent.
   * @param reason - kept as the `AbortError`'s `cause` (an `AbortError` is used as is).
   */
  abort(reason?: unknown): void {
    if (this.#aborted) return;
    this.#aborted = reason instanceof AbortError ? reason : new AbortError(reason);
    const live = this.#live ?? [];
    live[0]?.engine.stopPulling(this.#aborted);
    for (const stage of live) stage.engine.cancelRunning(this.#aborted);
  }

  #define(
    name: string,
    worker: WorkerFunction<unknown, unknown> | StageRunner<unknown, unknown>,
    opts: StageOptions,
  ): StageDef {
    let fn: WorkerFunction<unknown, unknown>;
    let concurrency = opts.concurrency;
    if (isRunner(worker)) {
      fn = (value, ctx) => worker.run(value, { signal: ctx.signal });
      concurrency ??= worker.stats?.()?.concurrency;
    } else if (typeof worker === 'function') {
      fn = worker;
    } else {
      invalidArgument(`${name}.worker`, worker, 'a function or an object with run()');
    }
    const adaptive = adaptiveOf(concurrency);
    adaptive?.attach(name, 'stage');
    const c = adaptive?.limit ?? positiveInt(`${name}.concurrency`, concurrency);
    return {
      name,
      worker: fn,
      concurrency: c,
      adaptive,
      buffer: nonNegativeInt(`${name}.buffer`, opts.buffer ?? adaptive?.max ?? c),
      timeout: optionalDuration(`${name}.timeout`, opts.timeout),
      ordered: optionalBoolean(`${name}.ordered`, opts.ordered) ?? false,
      gates: stageGates(opts, name),
      watchdog: watchdogOptions(opts.watchdog, `${name}.`),
    };
  }

  #build(): LiveStage[] {
    const live: LiveStage[] = [];
    let upstream: Iterable<Envelope> | AsyncIterable<Envelope> = envelopes(this.#source);
    for (const def of this.#defs) {
      const stats = new StatsRecorder(def.concurrency);
      const watchdog = def.watchdog && new Watchdog(def.watchdog, def.name, 'stage');
      const view = (env: Envelope): unknown => env.value;
      const engine = new PullEngine<Envelope, unknown>(upstream, this.#stageWorker(def), {
        concurrency: def.concurrency,
        adaptive: def.adaptive,
        buffer: def.buffer,
        ordered: def.ordered,
        timeout: def.timeout,
        signal: undefined,
        stats,
        bypass: (env: Envelope) => env.failure !== undefined,
        gates: def.gates,
        hooks: publishingHooks<Envelope>(
          def.name,
          'stage',
          watchdog?.hooks<Envelope>(undefined, view),
          view,
        ),
        events: { name: def.name, kind: 'stage' },
        watchdog,
        view,
      });
      const before = live.at(-1)?.engine;
      const snapshot = announcePool(def.name, 'stage', () => ({
        state: engine.state,
        stats: stats.snapshot(
          def.adaptive?.limit ?? def.concurrency,
          engine.running,
          before?.buffered ?? 0,
        ),
      }));
      live.push({ def, engine, stats, snapshot, watchdog });
      upstream = forward(engine, def.name);
    }
    return live;
  }

  #stageWorker(def: StageDef): WorkerFunction<Envelope, unknown> {
    // Called as a plain function, as runPool calls its worker (`def.worker(…)` would hand it
    // the stage's definition as its `this`).
    const worker = def.worker;
    return (env: Envelope, ctx: JobContext) => {
      if (this.#aborted) throw this.#aborted;
      return worker(env.value, ctx);
    };
  }

  /**
   * The results iterator. Written by hand, not as an async generator: `return()` on a
   * generator that has not started (no `next()` yet) ends it without running its `finally`,
   * which left the signal listener, the stages and the source open and `drain()` pending.
   * The signal is watched from the first `next()` until the end, so an iterator that is
   * created and dropped retains nothing.
   */
  #output(
    last: LiveStage,
  ): AsyncIterator<PipelineResult<J, T>> & AsyncIterable<PipelineResult<J, T>> {
    let state: 'new' | 'iterating' | 'ended' = 'new';
    let unsubscribe: (() => void) | undefined;
    const end = async (): Promise<IteratorResult<PipelineResult<J, T>>> => {
      if (state === 'ended') return { done: true, value: undefined };
      state = 'ended';
      unsubscribe?.();
      try {
        // Stop pulling and cancel what runs, in every stage (a no-op once they all ended).
        if (!this.#aborted) for (const stage of this.#live ?? []) await stage.engine.return();
      } finally {
        this.#done.resolve();
      }
      return { done: true, value: undefined };
    };
    const begin = (): void => {
      state = 'iterating';
      const signal = this.#signal;
      if (signal?.aborted) this.abort(signal.reason);
      else if (signal) unsubscribe = onAbort(signal, () => this.abort(signal.reason));
    };
    const iterator = {
      next: async (): Promise<IteratorResult<PipelineResult<J, T>>> => {
        if (state === 'ended') return { done: true, value: undefined };
        if (state === 'new') begin();
        let step: IteratorResult<Result<Envelope, unknown>, undefined>;
        try {
          step = await last.engine.next();
        } catch (error) {
          await end();
          throw error;
        }
        if (step.done) return end();
        return { done: false, value: toResult<J, T>(step.value, last.def.name) };
      },
      return: () => end(),
      throw: async (error?: unknown): Promise<IteratorResult<PipelineResult<J, T>>> => {
        await end();
        throw error;
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }
}

/**
 * Wraps source jobs into envelopes, keeping a sync source sync (cheaper to pull). Written by
 * hand rather than as generators so that `return()` reaches the source at once, even while a
 * `next()` is pending (a generator would queue it behind that `next()`).
 */
function envelopes<J>(
  source: Iterable<J> | AsyncIterable<J>,
): Iterable<Envelope> | AsyncIterable<Envelope> {
  let index = 0;
  // The step is read as for-of / for await read it: a non-object step is the source failing.
  const wrap = (step: IteratorResult<J>): IteratorResult<Envelope> => {
    if (typeof step !== 'object' || step === null) throw notAnObject(step);
    if (step.done) return { done: true, value: undefined };
    const value = step.value;
    return {
      done: false,
      value: { job: value, index: index++, value, failure: undefined, retries: undefined },
    };
  };
  const opened = openIterator(source);
  if (opened.isAsync) {
    const it = opened.iterator as AsyncIterator<J>;
    // The wrapped step of the latest pull, once the source has answered it: wrapping takes
    // ticks of ours, and the engine abandons a pull still pending when return() settles.
    let answered: Promise<unknown> | undefined;
    const iterator: AsyncIterator<Envelope> = {
      // Promise.resolve, as for await's Await(): a plain { value, done } from next() is
      // accepted; a synchronous throw reaches the engine, which reports it as the source's.
      next: () => {
        answered = undefined;
        const step = Promise.resolve(it.next());
        const wrapped = step.then(wrap);
        step.then(
          () => {
            answered = wrapped;
          },
          () => undefined,
        );
        return wrapped;
      },
    };
    // Only if the source has one: the engine waits for a pending pull of a source that cannot
    // be told to stop, and would take a return() of ours for the source's acknowledgement.
    if (typeof it.return === 'function') {
      iterator.return = async () => {
        try {
          await it.return?.();
        } finally {
          // A pull the source answered before its return() settled is not one that outlived
          // it: hand its value over before acknowledging, so the engine never drops it. (One
          // turn first: a return() that throws synchronously gets here before the callbacks of
          // a step the source had already resolved.)
          await undefined;
          await answered?.catch(() => undefined);
        }
        return { done: true, value: undefined };
      };
    }
    return { [Symbol.asyncIterator]: () => iterator };
  }
  const it = opened.iterator as Iterator<J>;
  const iterator: Iterator<Envelope> = {
    next: () => wrap(it.next()),
    return: () => {
      it.return?.();
      return { done: true, value: undefined };
    },
  };
  return { [Symbol.iterator]: () => iterator };
}

/** Turns a stage's results into the next stage's envelopes. */
async function* forward(
  engine: PullEngine<Envelope, unknown>,
  stage: string,
): AsyncGenerator<Envelope> {
  for await (const r of engine) yield toEnvelope(r, stage);
}

/** The last stage's result as the pipeline's. */
function toResult<J, T>(r: Result<Envelope, unknown>, stage: string): PipelineResult<J, T> {
  const out = toEnvelope(r, stage);
  const result: PipelineResult<J, T> = out.failure
    ? {
        ok: false,
        job: out.job as J,
        index: out.index,
        error: out.failure.error,
        stage: out.failure.stage,
      }
    : { ok: true, job: out.job as J, index: out.index, value: out.value as T };
  return out.retries ? Object.assign(result, out.retries) : result;
}

function toEnvelope(r: Result<Envelope, unknown>, stage: string): Envelope {
  const env = r.job;
  if (env.failure) return env; // failed earlier: bypassed this stage untouched
  const retries =
    r.attempts === undefined ? env.retries : { attempts: r.attempts, errors: r.errors ?? [] };
  if (r.ok) return { job: env.job, index: env.index, value: r.value, failure: undefined, retries };
  return {
    job: env.job,
    index: env.index,
    value: undefined,
    failure: { error: r.error, stage },
    retries,
  };
}

/**
 * Starts a pipeline over `source`. Add stages with `.stage(name, worker, opts)`, then iterate
 * the results with `for await`.
 *
 * @example
 * ```ts
 * for await (const r of pipeline(urls).stage('fetch', get, { concurrency: 8 }).stage('parse', parse, { concurrency: 2 })) {
 *   if (r.ok) console.log(r.value); else console.error(`${r.stage} failed for ${r.job}:`, r.error);
 * }
 * ```
 */
export function pipeline<J>(
  source: Iterable<J> | AsyncIterable<J>,
  opts: PipelineOptions = {},
): Pipeline<J, J> {
  iterableArgument('source', source);
  optionsObject(argument('opts'), opts);
  return new Pipeline<J, J>(source, opts ?? {});
}

/** A stage's gates, reading its key and priority off the envelope's current value. */
function stageGates(opts: StageOptions, name: string): EngineGates<Envelope> | undefined {
  const { key, priority } = opts;
  const gates = engineGates<unknown>(opts, `${name}.`);
  if (gates === undefined) return undefined;
  return {
    ...gates,
    key: typeof key === 'function' ? (env: Envelope) => key(env.value) : undefined,
    priority: typeof priority === 'function' ? (env: Envelope) => priority(env.value) : undefined,
  } as EngineGates<Envelope>;
}
