import { TimeoutError, toError } from '../errors.js';
import type { AroundWorker } from '../scheduler/hooks.js';

/**
 * What a worker function receives with each job.
 *
 * `signal` aborts when the job is canceled (its own signal, the pool's `abort()`, a drain
 * deadline) or times out; its `reason` is the `AbortError`/`TimeoutError` the job settles with.
 */
export interface JobContext {
  /**
   * Aborted on pool abort, job abort or job timeout — before the job's slot is given to the
   * next job, so at most `concurrency` workers are ever running with a live signal. Created on
   * first access (it is not free).
   * Its `reason` is the error the job settles with: an `AbortError` (whose `cause` is the
   * caller's reason), a `TimeoutError` — or, when the caller's own abort reason already is a
   * sluice error (e.g. a `TimeoutError` from an outer pool), that error unchanged.
   */
  readonly signal: AbortSignal;
  /** The job's position in submission (or source) order, from 0. */
  readonly index: number;
  /** The slot running the job: an integer in 0..concurrency-1, unique among running jobs. */
  readonly workerId: number;
}

/** A worker function: takes a job, returns its value (or a promise of it). */
export type WorkerFunction<J, R> = (job: J, ctx: JobContext) => R | Promise<R>;

/**
 * The key of {@link JobOwner}'s settle method. Not exported from the package, so the method is
 * not public API even on a public class (Pool).
 */
export const SETTLE: unique symbol = Symbol('sluice.settle');

/** The key of {@link JobOwner}'s optional linger method (not exported from the package). */
export const LINGER: unique symbol = Symbol('sluice.linger');

/**
 * Whoever runs jobs (a PullEngine with JobRuns, a Pool) and hears of each settlement. A prototype method
 * rather than a per-owner closure: optimised code that inlines a closure holds it weakly, so a
 * full GC after the owner dies would throw that code away (see BENCHMARKS.md, "Core").
 */
export interface JobOwner<J, R> {
  [SETTLE](run: RunCore<J, R>, error: Error | undefined, value: R | undefined): void;
  /**
   * Optional: a started job was canceled while its worker runs on (`error`: what it settled
   * with), then (`error` undefined) that worker returned at last. Only on the cancel path: the
   * watchdog's zombies (observability/watchdog.ts).
   */
  [LINGER]?(run: RunCore<J, R>, error: Error | undefined): void;
}

/**
 * The built-in `then`, taken once. `await` never looks up a native promise's `then`: it attaches
 * its reactions directly. So do the pools: `promiseThen.call(Promise.resolve(out), …)` — a native
 * promise with a `then` of its own (one that calls back at once, say) would otherwise settle the
 * job re-entrantly, inside its start, and the owner start the next job inside that, until a deep
 * queue of them overflowed the stack.
 */
export const promiseThen: typeof Promise.prototype.then = Promise.prototype.then;

/** True for a value `await` would adopt (anything with a callable `then`). */
export function isThenable<R>(value: unknown): value is PromiseLike<R> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * What the worker actually receives: only `signal`, `index` and `workerId` — never the job's run
 * itself, whose `cancel()`, `start()` and owner would let a worker settle or forge its own job's
 * outcome.
 */
class WorkerContext implements JobContext {
  readonly #run: RunCore<unknown, unknown>;
  readonly index: number;
  readonly workerId: number;

  constructor(run: RunCore<unknown, unknown>) {
    this.#run = run;
    this.index = run.index;
    this.workerId = run.workerId;
  }

  get signal(): AbortSignal {
    return this.#run.signal;
  }
}

/**
 * One job from acceptance to settlement: runs the worker, owns the job's timeout and its
 * (lazily created) AbortController, and reports exactly one outcome to its owner. Internal;
 * users never see it: the worker gets a separate {@link WorkerContext}.
 *
 * The behaviour only: no constructor and no field of its own, so that a subclass's `super()`
 * costs nothing. V8 (Node 20) never inlines a base class's constructor into a derived one's:
 * `super(...)` to a constructor that does anything goes through the generic construct stub,
 * ~380 instructions per object (callgrind), more than the rest of the object's creation; a
 * default base constructor (no fields, no `#private` members) is skipped outright. Each concrete run ({@link JobRun}, Pool's job)
 * declares every field below in its own constructor, so its objects have one shape from birth.
 */
export abstract class RunCore<J, R> {
  abstract readonly job: J;
  abstract readonly index: number;
  /** The slot running the job; -1 until it starts. */
  abstract workerId: number;
  /** performance.now() at start, when the owner keeps stats. */
  abstract startedAt: number;
  /** Its lifecycle hooks want this job's events (see scheduler/hooks.ts `accepted`). */
  abstract observed: boolean;
  /** The job's AbortController, created on first need. Only this module touches it. */
  abstract controller: AbortController | undefined;
  /** The job's timeout timer. Only this module touches it. */
  abstract timer: NodeJS.Timeout | undefined;
  /** Settled (by its outcome or by `cancel()`). Read through {@link settled}. */
  abstract isSettled: boolean;
  /** Settled by `cancel()`. Read through {@link canceled}. */
  abstract isCanceled: boolean;
  abstract readonly owner: JobOwner<J, R>;

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  get settled(): boolean {
    return this.isSettled;
  }

  /** True when `cancel()` settled the job (its signal, a timeout, abort, a drain deadline). */
  get canceled(): boolean {
    return this.isCanceled;
  }

  /**
   * Starts the job through an executor (ThreadPool's threads) instead of a worker function:
   * the executor reports its outcome through {@link complete}, exactly once.
   */
  execute(
    run: (self: this) => void,
    workerId: number,
    timeout: number | undefined,
    around?: AroundWorker,
  ): void {
    this.workerId = workerId;
    // Closures only in helpers: one written here would make V8 allocate its context (holding
    // `this`) on every call, timeout or not (~50 bytes per ThreadPool job).
    if (timeout !== undefined) armTimeout(this, timeout);
    try {
      if (around === undefined) run(this);
      // A subscriber of the attempt's start may cancel it (abort the pool): nothing is sent then.
      else around(runUnlessSettled, run, this);
    } catch (error) {
      failSoon(this, error);
    }
  }

  /**
   * The job's outcome (its worker's, or an executor's); ignored once the job settled (canceled,
   * timed out).
   */
  complete(error: Error | undefined, value: R | undefined): void {
    if (this.markSettled()) this.owner[SETTLE](this, error, value);
    // A canceled job's worker returning at last (every called worker ends up here once).
    else if (this.isCanceled && this.workerId >= 0) this.owner[LINGER]?.(this, undefined);
  }

  /**
   * Calls the worker (through `around` when given: see scheduler/hooks.ts). A sync return or
   * throw settles on a microtask, never re-entrantly.
   */
  start(
    worker: WorkerFunction<J, R>,
    workerId: number,
    timeout: number | undefined,
    around?: AroundWorker,
  ): void {
    this.workerId = workerId;
    if (timeout !== undefined) {
      this.timer = setTimeout(() => this.cancel(new TimeoutError(timeout)), timeout);
    }
    let out: R | PromiseLike<R>;
    try {
      const ctx = new WorkerContext(this as RunCore<unknown, unknown>);
      // A subscriber of the attempt's start (user code, called by `around` just before the
      // worker) may cancel the job — abort the pool or its signal: the worker is then not called.
      out =
        around === undefined
          ? worker(this.job, ctx)
          : (around(callUnlessSettled, this, worker, ctx) as R | PromiseLike<R>);
      if (isThenable<R>(out)) {
        // Adopted as `await` adopts it: `Promise.resolve` returns a native promise as it is, and
        // calls any other thenable's `then` on a microtask, adopting a thenable it fulfils with
        // in turn. Calling a user thenable's `then` here would let one that calls back at once
        // settle the job re-entrantly — and the owner start the next job inside this call, so a
        // deep queue of such jobs recursed until the stack overflowed mid-dispatch (a job left
        // running for ever, the rest never started). A `then` (or getter) that throws fails the job.
        promiseThen.call(
          Promise.resolve(out),
          (value) => this.complete(undefined, value),
          (error: unknown) => this.complete(toError(error), undefined),
        );
        return;
      }
    } catch (error) {
      queueMicrotask(() => this.complete(toError(error), undefined));
      return;
    }
    queueMicrotask(() => this.complete(undefined, out as R));
  }

  /**
   * Settles the job now with `error` and aborts its signal. The slot is free at once: a worker
   * that ignores its signal runs on in the background, but its outcome is discarded.
   */
  cancel(error: Error): void {
    if (!this.markSettled()) return;
    this.isCanceled = true;
    // The signal aborts before the owner hears of the settlement and reuses the slot: the next
    // job's worker is never called while this one's signal still says "run" (which would make
    // concurrency + 1 live workers). Created here if the worker has not read `signal` yet, so a
    // later read sees it aborted.
    this.controller ??= new AbortController();
    this.controller.abort(error);
    this.owner[SETTLE](this, error, undefined);
    // Its worker was called and has not returned (it would have settled the job): it runs on.
    if (this.workerId >= 0) this.owner[LINGER]?.(this, error);
  }

  /**
   * False if the job had already settled; else marks it settled and stops its timer. Not a
   * `#private` method: a class with one installs a brand on every instance in its constructor,
   * so it is no longer a default constructor that `super()` skips.
   */
  markSettled(): boolean {
    if (this.isSettled) return false;
    this.isSettled = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    return true;
  }
}

/** Calls `worker` for `run` unless `run` settled meanwhile (canceled by a start subscriber). */
function callUnlessSettled<J, R>(
  run: RunCore<J, R>,
  worker: WorkerFunction<J, R>,
  ctx: JobContext,
): R | PromiseLike<R> | undefined {
  return run.isSettled ? undefined : worker(run.job, ctx);
}

/** Hands `run` to an executor unless it settled meanwhile (canceled by a start subscriber). */
function runUnlessSettled<R extends RunCore<unknown, unknown>>(
  execute: (run: R) => void,
  run: R,
): void {
  if (!run.isSettled) execute(run);
}

/** Cancels `run` with a TimeoutError `timeout` ms from now. */
function armTimeout(run: RunCore<unknown, unknown>, timeout: number): void {
  run.timer = setTimeout(() => run.cancel(new TimeoutError(timeout)), timeout);
}

/** Fails `run` with `error` on a microtask (never re-entrantly). */
function failSoon(run: RunCore<unknown, unknown>, error: unknown): void {
  queueMicrotask(() => run.complete(toError(error), undefined));
}

/**
 * A job of runPool's engine (internal/pull-engine.ts): lean on purpose (runPool makes one per
 * job); Pool's job is a RunCore of its own.
 */
export class JobRun<J, R> extends RunCore<J, R> {
  readonly job: J;
  readonly index: number;
  workerId = -1;
  startedAt = 0;
  /** performance.now() at acceptance, when the owner queues jobs; read by an executor. */
  queuedAt: number | undefined = undefined;
  observed = false;
  controller: AbortController | undefined = undefined;
  timer: NodeJS.Timeout | undefined = undefined;
  isSettled = false;
  isCanceled = false;
  readonly owner: JobOwner<J, R>;

  constructor(job: J, index: number, owner: JobOwner<J, R>) {
    super();
    this.job = job;
    this.index = index;
    this.owner = owner;
  }
}

/** Calls a job's worker: a module function, so a context (AsyncLocalStorage.run) needs no closure. */
export function startWorker<J, R>(
  run: RunCore<J, R>,
  worker: WorkerFunction<J, R>,
  workerId: number,
  timeout: number | undefined,
  around?: AroundWorker,
): void {
  run.start(worker, workerId, timeout, around);
}
