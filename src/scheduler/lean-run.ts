/**
 * runPool's lean start/settle path: a job without timeout, stats, adaptive limit, bypass, gates,
 * watchdog, hooks that want its events or deadlock detection — runPool's common case. One object
 * is both the run and the worker's {@link JobContext}, and one short start and one settle serve
 * it, so a cold process compiles little per-job code (BENCHMARKS.md, "Scheduler", goal 2).
 * Internal.
 *
 * @module
 */
import { toError } from '../errors.js';
import { isThenable, type JobContext, type WorkerFunction } from '../internal/job-run.js';

/** The key of {@link LeanOwner}'s settle method (not exported from the package). */
export const SETTLE_LEAN: unique symbol = Symbol('sluice.settleLean');

/** Whoever runs lean jobs: hears of each settlement exactly once. */
export interface LeanOwner<J, R> {
  [SETTLE_LEAN](
    job: J,
    index: number,
    workerId: number,
    error: Error | undefined,
    value: R | undefined,
  ): void;
}

/** Calls the worker of `run` on slot `workerId` (set by LeanRun's static block). */
export let startLean: <J, R>(
  run: LeanRun<J, R>,
  worker: WorkerFunction<J, R>,
  workerId: number,
) => void;
/** Settles `run` with `error` by the owner's decision (abort, `return()`); the signal aborts first. */
export let cancelLean: <J, R>(run: LeanRun<J, R>, error: Error) => void;
// biome-ignore lint/suspicious/noExplicitAny: set once by LeanRun's static block
let settle: (run: LeanRun<any, any>, error: Error | undefined, value: unknown) => void;

/**
 * A job on the lean path. Everything that could settle or forge the job is private: the worker,
 * which receives the run itself as its context, sees `signal`, `index` and `workerId` only; the
 * owner reaches the rest through {@link startLean} and {@link cancelLean}.
 */
export class LeanRun<J, R> implements JobContext {
  // Own data properties, as on the JobRun path's context (a spread or JSON of the context keeps
  // them); the worker may overwrite them, so the owner reads the private copies.
  readonly index: number;
  workerId = -1;
  readonly #job: J;
  readonly #index: number;
  #workerId = -1;
  readonly #owner: LeanOwner<J, R>;
  #controller: AbortController | undefined = undefined;
  #settled = false;

  static {
    // Module functions rather than methods: nothing on the instance or the class lets a worker
    // reach them, and each is one small function, compiled once.
    startLean = (run, worker, workerId) => {
      run.#workerId = workerId;
      run.workerId = workerId;
      let out: unknown;
      try {
        out = worker(run.#job, run);
        if (isThenable(out)) {
          // Adopted as `await` adopts it, never re-entrantly (see RunCore.start in job-run.ts):
          // a thenable that calls back at once settles on a microtask; a throwing `then` (or
          // getter) fails the job.
          Promise.resolve(out).then(
            (value) => settle(run, undefined, value),
            (error: unknown) => settle(run, toError(error), undefined),
          );
          return;
        }
      } catch (error) {
        // Never re-entrantly: a sync throw or return settles on a microtask, as on JobRun.
        queueMicrotask(() => settle(run, toError(error), undefined));
        return;
      }
      queueMicrotask(() => settle(run, undefined, out));
    };
    settle = (run, error, value) => {
      // A canceled job's worker returning at last: its outcome is discarded.
      if (run.#settled) return;
      run.#settled = true;
      run.#owner[SETTLE_LEAN](run.#job, run.#index, run.#workerId, error, value);
    };
    cancelLean = (run, error) => {
      if (run.#settled) return;
      run.#settled = true;
      // As JobRun.cancel: the signal aborts before the owner frees the slot for the next job.
      run.#controller ??= new AbortController();
      run.#controller.abort(error);
      run.#owner[SETTLE_LEAN](run.#job, run.#index, run.#workerId, error, undefined);
    };
  }

  constructor(job: J, index: number, owner: LeanOwner<J, R>) {
    this.#job = job;
    this.index = index;
    this.#index = index;
    this.#owner = owner;
  }

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }
}
