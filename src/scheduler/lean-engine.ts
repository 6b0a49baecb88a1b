/**
 * runPool's lean engine: the pull loop for a runPool with no gate, timeout, adaptive limit,
 * watchdog or hooks of its own — runPool's common case, chosen once at construction (see
 * run-pool.ts). It keeps the same contract as the full engine (internal/pull-engine.ts) in that
 * configuration, observable for observable: results and their order (`ordered`), `index` and
 * `workerId`, a lazy `ctx.signal`, sync throws settled on a microtask, the
 * `concurrency + buffer` pull bound, waiting `next()` calls, `return()`/`throw()` aborting the
 * running jobs, source errors, async sources, the `signal` option, `sluice:pool:state` and the
 * job events (a job accepted while someone listens, or while some pool detects self-deadlocks,
 * runs as a {@link JobRun} with its hooks, as there).
 *
 * Why a second engine: in a fresh process most of a 10,000-job burst is TurboFan compiling the
 * engine (BENCHMARKS.md, "Goal 2 at 10,000 jobs"). Here the state lives in closure variables (no
 * property access for it before TurboFan) and the per-job path is three functions — `next`,
 * `pump` (pull and start) and `settle` — so little code is compiled, and little of it twice.
 * Internal.
 *
 * @module
 */
import { AbortError, abortErrorFrom, toError } from '../errors.js';
import { onAbort } from '../internal/abort-fanout.js';
import {
  isThenable,
  type JobContext,
  type JobOwner,
  JobRun,
  SETTLE,
  startWorker,
  type WorkerFunction,
} from '../internal/job-run.js';
import { notAnObject } from '../internal/pull-engine.js';
import { type PoolKind, type PoolState, publishPoolState } from '../observability/channels.js';
import { makeResult, type Result } from '../result.js';
import type { CoreHooks } from './hooks.js';
import { deadlockStorageActive, outsideJobs } from './self-deadlock.js';

/** What {@link leanEngine} needs: runPool's options once validated, without the full engine's. */
export interface LeanEngineOptions<J> {
  concurrency: number;
  buffer: number;
  ordered: boolean;
  signal: AbortSignal | undefined;
  /** The events publisher's hooks (no hooks of the pool's own: those take the full engine). */
  hooks: CoreHooks<J>;
  events: { name: string; kind: PoolKind };
}

/** Reads and aborts a {@link LeanContext}'s controller (set by its static block). */
let abortContext: (ctx: LeanContext, error: Error) => void;

/**
 * A lean job's context, as the worker gets it: `index` and `workerId` as own data properties (a
 * spread or JSON of the context keeps them, as on the full engine's), `signal` created on first
 * read. The worker may overwrite the properties: the engine keeps its own copies.
 */
export class LeanContext implements JobContext {
  readonly index: number;
  readonly workerId: number;
  #controller: AbortController | undefined = undefined;

  static {
    abortContext = (ctx, error) => {
      ctx.#controller ??= new AbortController();
      ctx.#controller.abort(error);
    };
  }

  constructor(index: number, workerId: number) {
    this.index = index;
    this.workerId = workerId;
  }

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }
}

interface Consumer<J, R> {
  resolve: (result: IteratorResult<Result<J, R>, undefined>) => void;
  reject: (error: unknown) => void;
}

const DONE: IteratorResult<never, undefined> = Object.freeze({ done: true, value: undefined });

/**
 * The results of `worker` over `jobs` as an async iterator, runPool's contract (see runPool's
 * documentation) for the lean configuration. `hooks.accepted` is called for each pulled job; a
 * job it wants (someone listens) or pulled while self-deadlock detection is active anywhere runs
 * as the full engine runs it.
 */
export function leanEngine<J, R>(
  jobs: Iterable<J> | AsyncIterable<J>,
  worker: WorkerFunction<J, R>,
  opts: LeanEngineOptions<J>,
): AsyncIterableIterator<Result<J, R>> {
  const { concurrency, buffer, ordered, signal, hooks, events } = opts;
  const asyncIt = (jobs as AsyncIterable<J>)[Symbol.asyncIterator];
  const isAsync = typeof asyncIt === 'function';
  const source: Iterator<J> | AsyncIterator<J> = isAsync
    ? (jobs as AsyncIterable<J>)[Symbol.asyncIterator]()
    : (jobs as Iterable<J>)[Symbol.iterator]();

  // Slots: ids minted on first use (a huge concurrency costs nothing), recent ids reused first.
  const free: number[] = [];
  let minted = 0;
  let running = 0;
  /** What runs in each slot: a lean job's context, or a JobRun (an observed job). */
  const busy: (LeanContext | JobRun<J, R> | undefined)[] = [];
  /** Each busy lean slot's job and index (the context's properties are the worker's). */
  const busyJob: (J | undefined)[] = [];
  const busyIndex: number[] = [];

  // Finished results: a ring (unordered; its capacity a power of two, grown when full), or by
  // index (ordered).
  let ready: (Result<J, R> | undefined)[] = new Array(16);
  let readyMask = 15;
  let head = 0;
  let readyCount = 0;
  const byIndex = new Map<number, Result<J, R>>();
  /** Waiting `next()` calls, oldest first. */
  const consumers: Consumer<J, R>[] = [];

  let pulled = 0;
  let yielded = 0;
  let pulling = false;
  let sourceDone = false;
  let sourceError: { error: unknown } | undefined;
  let stopped = false;
  /** Set by an abort: a value a pending pull yields after it settles as this error. */
  let cancelWith: Error | undefined;
  /** The pull pending at a stop outlived the source's `return()`: what it yields is not ours. */
  let abandoned = false;
  let returned = false;
  let unsubscribe: (() => void) | undefined;
  let state: PoolState = 'open';

  const setState = (next: PoolState): void => {
    const previous = state;
    if (previous === next || previous === 'drained' || previous === 'aborted') return;
    state = next;
    publishPoolState(events.name, events.kind, previous, next);
  };

  const stop = (): void => {
    stopped = true;
    unsubscribe?.();
    unsubscribe = undefined;
  };

  const take = (): Result<J, R> | undefined => {
    let result: Result<J, R> | undefined;
    if (ordered) {
      result = byIndex.get(yielded);
      if (result !== undefined) byIndex.delete(yielded);
    } else if (readyCount > 0) {
      result = ready[head];
      ready[head] = undefined;
      head = (head + 1) & readyMask;
      readyCount--;
    }
    if (result !== undefined) yielded++;
    return result;
  };

  const buffered = (): number => readyCount + byIndex.size;

  const enqueue = (result: Result<J, R>): void => {
    if (readyCount === ready.length) {
      const grown: (Result<J, R> | undefined)[] = new Array(ready.length * 2);
      for (let i = 0; i < readyCount; i++) grown[i] = ready[(head + i) & readyMask];
      ready = grown;
      readyMask = grown.length - 1;
      head = 0;
    }
    ready[(head + readyCount) & readyMask] = result;
    readyCount++;
  };

  const finished = (): boolean =>
    !pulling && (stopped || sourceDone) && running === 0 && buffered() === 0;

  const end = (): Promise<IteratorResult<Result<J, R>, undefined>> => {
    setState('drained');
    stop();
    const failure = sourceError;
    if (failure !== undefined) {
      sourceError = undefined;
      return Promise.reject(failure.error);
    }
    return Promise.resolve(DONE);
  };

  const deliver = (): void => {
    while (consumers.length > 0) {
      const result = take();
      if (result !== undefined) {
        // Taken off the queue before resolving, so a re-entrant call cannot serve it twice.
        (consumers.shift() as Consumer<J, R>).resolve({ done: false, value: result });
        pump();
      } else if (finished()) {
        const consumer = consumers.shift() as Consumer<J, R>;
        end().then(consumer.resolve, consumer.reject);
      } else {
        return;
      }
    }
  };

  const push = (result: Result<J, R>): void => {
    if (ordered) byIndex.set(result.index, result);
    else enqueue(result);
    deliver();
  };

  const sourceFailed = (error: unknown): void => {
    sourceDone = true;
    sourceError = { error };
    deliver();
  };

  /** A lean job ended (or was canceled): free its slot, queue its result, pull the next. */
  const settle = (
    ctx: LeanContext,
    job: J,
    index: number,
    workerId: number,
    error: Error | undefined,
    value: R | undefined,
  ): void => {
    // Settled already (canceled): a late outcome is discarded.
    if (busy[workerId] !== ctx) return;
    busy[workerId] = undefined;
    busyJob[workerId] = undefined;
    running--;
    free.push(workerId);
    // After `return()` nobody will read results: drop them.
    if (returned) return;
    const result: Result<J, R> =
      error === undefined
        ? { ok: true, job, index, value: value as R }
        : { ok: false, job, index, error };
    if (ordered) byIndex.set(index, result);
    else enqueue(result);
    deliver();
    pump();
  };

  /** An observed job (a JobRun) ended: as {@link settle}, and its `settled` hook. */
  const owner: JobOwner<J, R> = {
    [SETTLE](run, error, value) {
      busy[run.workerId] = undefined;
      running--;
      free.push(run.workerId);
      if ((run as JobRun<J, R>).observed) hooks.settled?.(run.job, run.index, error);
      if (returned) return;
      push(makeResult(run.job, run.index, error, value));
      pump();
    },
  };

  /** Starts an observed job, or any job while self-deadlock detection is active, as a JobRun. */
  const startRun = (job: J, index: number, observed: boolean): void => {
    const run = new JobRun<J, R>(job, index, owner);
    run.observed = observed;
    const workerId = free.length > 0 ? (free.pop() as number) : minted++;
    busy[workerId] = run;
    running++;
    const around = observed ? hooks.started?.(job, index, 1) : undefined;
    if (deadlockStorageActive()) outsideJobs(startWorker, run, worker, workerId, undefined, around);
    else run.start(worker, workerId, undefined, around);
  };

  /** A job pulled after an abort: it settles as `error` without running. */
  const cancelUnstarted = (job: J, error: Error): void => {
    const index = pulled;
    const observed = hooks.accepted(job, index) === true;
    pulled++;
    if (observed) hooks.settled?.(job, index, error);
    if (!returned) push(makeResult<J, R>(job, index, error, undefined));
  };

  /**
   * Pulls and starts jobs while a slot is free and the consumer is within `concurrency + buffer`
   * — the pull and the lean start in one function, so the hot path compiles as one root.
   */
  const pump = (): void => {
    while (
      !sourceDone &&
      !stopped &&
      !pulling &&
      running < concurrency &&
      pulled < yielded + concurrency + buffer
    ) {
      if (isAsync) {
        pullAsync();
        return;
      }
      let job: J;
      // The step is read inside the try, as for-of reads it: a non-object or a throwing `done`
      // or `value` getter is the source failing.
      try {
        const step = (source as Iterator<J>).next();
        if (typeof step !== 'object' || step === null) throw notAnObject(step);
        if (step.done) {
          sourceDone = true;
          deliver();
          return;
        }
        job = step.value;
      } catch (error) {
        sourceFailed(error);
        return;
      }
      start(job);
    }
  };

  const pullAsync = (): void => {
    pulling = true;
    let step: unknown;
    try {
      // A next() that throws synchronously is the source failing, as in for await.
      step = (source as AsyncIterator<J>).next();
    } catch (error) {
      pulling = false;
      sourceFailed(error);
      return;
    }
    // Promise.resolve, like for await's Await(): a plain { value, done } is accepted, a
    // thenable adopted; a native promise is used as is (no extra tick).
    Promise.resolve(step).then(onStep, (error: unknown) => {
      if (abandoned) return;
      pulling = false;
      // After a stop the source was closed by us: its failure to answer is not news.
      if (stopped) deliver();
      else sourceFailed(error);
    });
  };

  /** An async pull settled with `step`. */
  const onStep = (step: unknown): void => {
    if (abandoned) return;
    pulling = false;
    // After return() nobody reads results: the source is being closed, the value is not wanted.
    if (returned) return;
    let job: J;
    try {
      if (typeof step !== 'object' || step === null) throw notAnObject(step);
      const { done } = step as IteratorResult<J>;
      if (done) {
        sourceDone = true;
        deliver();
        return;
      }
      job = (step as IteratorResult<J>).value;
    } catch (error) {
      if (stopped) deliver();
      else sourceFailed(error);
      return;
    }
    if (cancelWith !== undefined) {
      cancelUnstarted(job, cancelWith);
    } else {
      start(job);
    }
    pump();
    deliver();
  };

  /**
   * Starts a pulled job on a free slot: lean, or as a JobRun when its events are wanted or some
   * pool detects self-deadlocks (as the full engine decides, per job).
   */
  const start = (job: J): void => {
    const index = pulled;
    const observed = hooks.accepted(job, index);
    pulled++;
    if (observed || deadlockStorageActive()) {
      startRun(job, index, observed);
      return;
    }
    const workerId = free.length > 0 ? (free.pop() as number) : minted++;
    const ctx = new LeanContext(index, workerId);
    busy[workerId] = ctx;
    busyJob[workerId] = job;
    busyIndex[workerId] = index;
    running++;
    let out: R | PromiseLike<R>;
    try {
      out = worker(job, ctx);
      if (isThenable<R>(out)) {
        // Adopted as `await` adopts it, never re-entrantly (see RunCore.start in job-run.ts):
        // a thenable that calls back at once settles on a microtask; a throwing `then` (or
        // getter) fails the job.
        Promise.resolve(out).then(
          (value) => settle(ctx, job, index, workerId, undefined, value),
          (error: unknown) => settle(ctx, job, index, workerId, toError(error), undefined),
        );
        return;
      }
    } catch (error) {
      // Never re-entrantly: a sync throw or return settles on a microtask.
      queueMicrotask(() => settle(ctx, job, index, workerId, toError(error), undefined));
      return;
    }
    const value = out;
    queueMicrotask(() => settle(ctx, job, index, workerId, undefined, value));
  };

  const closeSource = async (): Promise<void> => {
    if (sourceDone) return;
    sourceDone = true;
    // Without return() the source cannot be told to stop: a pull pending now is waited for,
    // whatever it takes, since what it brings must settle as a result.
    if (typeof source.return !== 'function') return;
    try {
      await source.return();
    } catch {
      // The source's own cleanup failed while we were stopping; nothing is waiting for it.
    }
    // One turn, so that a return() that throws synchronously (no turn at all) does not abandon
    // a pull the source had already answered before its callbacks ran: that value is ours.
    await undefined;
    // The source acknowledged the stop and its pending pull is still open: it may never settle,
    // so it is abandoned rather than waited for (see PullEngine's #closeSource).
    if (pulling) {
      pulling = false;
      abandoned = true;
      deliver();
    }
  };

  /** Cancels every running job with `error`: each settles (and yields) as that failure. */
  const cancelRunning = (error: Error): void => {
    setState('aborted');
    // A snapshot in slot order: settling one job frees its slot as it goes.
    const ids: number[] = [];
    for (let id = 0; id < busy.length; id++) if (busy[id] !== undefined) ids.push(id);
    for (const workerId of ids) {
      const item = busy[workerId];
      if (item === undefined) continue;
      if (item instanceof JobRun) {
        item.cancel(error);
        continue;
      }
      // As JobRun.cancel: the signal aborts before the slot is freed for the next job.
      abortContext(item, error);
      settle(
        item,
        busyJob[workerId] as J,
        busyIndex[workerId] as number,
        workerId,
        error,
        undefined,
      );
    }
  };

  /** Stops pulling; a pull already pending is waited for (its value settles as `cancel`). */
  const stopPulling = (cancel?: Error): void => {
    setState(cancel === undefined ? 'closing' : 'aborted');
    cancelWith ??= cancel;
    if (stopped) return;
    stop();
    void closeSource();
    deliver();
  };

  const iterator: AsyncIterableIterator<Result<J, R>> = {
    [Symbol.asyncIterator]() {
      return this;
    },
    next(): Promise<IteratorResult<Result<J, R>, undefined>> {
      if (returned) return Promise.resolve(DONE);
      if (consumers.length === 0) {
        const result = take();
        if (result !== undefined) {
          pump();
          return Promise.resolve({ done: false, value: result });
        }
        if (finished()) return end();
      }
      return new Promise((resolve, reject) => {
        consumers.push({ resolve, reject });
        pump();
        deliver();
      });
    },
    /**
     * Breaking out of `for await`: stop pulling, abort running workers, drop their results, and
     * close the source (awaited unless a pull is pending: see PullEngine's `return()`).
     */
    async return(): Promise<IteratorResult<Result<J, R>, undefined>> {
      returned = true;
      setState('aborted');
      stop();
      cancelRunning(new AbortError(undefined, 'result iteration stopped'));
      ready.fill(undefined);
      readyCount = 0;
      byIndex.clear();
      for (let c = consumers.shift(); c; c = consumers.shift()) c.resolve(DONE);
      const closing = closeSource();
      if (!pulling) await closing;
      return DONE;
    },
    async throw(error?: unknown): Promise<IteratorResult<Result<J, R>, undefined>> {
      await iterator.return?.();
      throw error;
    },
  };

  if (signal?.aborted) stopPulling();
  else if (signal) {
    unsubscribe = onAbort(signal, () => {
      const error = abortErrorFrom(signal);
      stopPulling(error);
      cancelRunning(error);
    });
  }
  return iterator;
}

/**
 * A lean context kept for the life of the process, as PullEngine's `pinnedForOptimisedCode`:
 * the optimised code specialised on its map survives a full GC between two runPools.
 * Exported only so that the module keeps it; not part of the package's API.
 */
export const pinnedLeanContext: LeanContext = new LeanContext(0, 0);
