import {
  AbortError,
  abortErrorFrom,
  PoolClosedError,
  SelfDeadlockError,
  toError,
} from './errors.js';
import { type AdaptiveConcurrency, adaptiveOf, feedLimit } from './gates/adaptive.js';
import { type GateOptions, type Gates, gateOptions, keyOf } from './gates/gate-options.js';
import { PriorityQueue } from './gates/priority-queue.js';
import { KeyWake, RateGate } from './gates/rate-gate.js';
import { attemptsResult } from './gates/retry.js';
import type { Queued, RunQueue } from './gates/run-queue.js';
import { onAbort } from './internal/abort-fanout.js';
import {
  type JobContext,
  type JobOwner,
  LINGER,
  RunCore,
  SETTLE,
  startWorker,
  type WorkerFunction,
} from './internal/job-run.js';
import {
  argument,
  callSignal,
  drainDeadline,
  fn,
  invalidOption,
  nonEmptyString,
  nonNegativeInt,
  optionalBoolean,
  optionalDuration,
  optionalSignal,
  optionsObject,
  positiveInt,
} from './internal/options.js';
import { ParkedRuns } from './internal/parked-runs.js';
import { Slots } from './internal/slots.js';
import {
  claim,
  parkNode,
  serve,
  type Waiter,
  WaitList,
  type WaitNode,
} from './internal/wait-list.js';
import { type PoolKind, publishPoolState } from './observability/channels.js';
import {
  ANNOUNCED_STATS,
  announcePool,
  publishRateLimited,
} from './observability/gate-channels.js';
import { KIND, publishingHooks } from './observability/publisher.js';
import { Watchdog, type WatchdogOptions, watchdogOptions } from './observability/watchdog.js';
import { makeResult, type Result } from './result.js';
import { CLOSE_WITH, EXECUTOR, type Executor, RELEASE_QUEUED } from './scheduler/executor.js';
import { type CoreHooks, guardedHooks, HOOKS, type JobHooks } from './scheduler/hooks.js';
import {
  DeadlockGuard,
  deadlockStorageActive,
  outsideJobs,
  type Wait,
} from './scheduler/self-deadlock.js';
import { type GateSnapshot, outcomeOf, type PoolStats, StatsRecorder } from './stats.js';
import type { TransferListItem } from './threads/transfer.js';

/** Options of {@link Pool}: the pool's own, and the gates (`retry`, `rate`, `key`, `perKey`). */
export interface PoolOptions<J = unknown> extends GateOptions<J> {
  /**
   * Jobs running at once: a positive integer, or an {@link adaptive} limit that the pool moves
   * within its [min, max] from each job's run time and outcome (overload failures — timeouts,
   * HTTP 429/503 — shrink it; see `isOverload`). Required.
   */
  concurrency: number | AdaptiveConcurrency;
  /**
   * Accepted jobs waiting for a slot. Default `2 * concurrency` (`2 * max` when adaptive); 0 = accept only when a slot is
   * free; `Infinity` unbounds the queue (and removes backpressure).
   */
  queueSize?: number;
  /** Per-job limit in ms, measured from the job's start. Default: none. */
  timeout?: number;
  /** Aborting it aborts the pool, like {@link Pool.abort}. */
  signal?: AbortSignal;
  /**
   * Names the pool in its `diagnostics_channel` events (README "Events"): a non-empty string.
   * Default `'pool'` (`'thread-pool'` for a ThreadPool, `'consume'` for a consumer).
   */
  name?: string;
  /**
   * Opt-in stuck-job watchdog (README "Watchdog"): jobs running longer than `stuckAfter` ms, and
   * "zombies" — jobs whose signal aborted (timeout, cancel, abort) whose worker has not returned
   * `zombieAfter` ms later — are published once each on `sluice:job:stuck` / `sluice:job:zombie`
   * and listed live in `stats().stuck` / `stats().zombies`. One unref'd timer per pool while
   * jobs run. Default: off (no cost).
   */
  watchdog?: WatchdogOptions;
  /**
   * Fail, instead of hanging, a worker's `submit`/`run` on this same pool that could never be
   * served: every running job's worker already waits on this pool (README "Self-deadlock
   * detection"). The call rejects with `SelfDeadlockError` (`ERR_SELF_DEADLOCK`). Default false:
   * it uses AsyncLocalStorage, which on Node 20 slows every promise in the process.
   */
  detectDeadlock?: boolean;
}

/** Options of one submission. */
export interface SubmitOptions {
  /**
   * Cancels this job: removed at once if queued, its worker's signal aborted if running. It
   * settles as `AbortError`. The listener is removed when the job settles. Already aborted at
   * submission: accepted and canceled at once if there is room; if the queue is full, `submit`
   * rejects with `AbortError` and `trySubmit` returns `undefined` (nothing accepted).
   */
  signal?: AbortSignal;
  /**
   * Higher starts first; FIFO within one priority. A finite number. @default 0
   *
   * Strict priority: while higher-priority jobs keep arriving, lower ones wait (as in p-queue and
   * BullMQ). To keep a class of jobs from starving, give it a pool of its own (or a `key`, whose
   * round-robin is fair: with `key`, priority orders jobs within each key).
   */
  priority?: number;
}

/** An accepted job. `result` never rejects: failures arrive as `{ ok: false, error }`. */
export interface Task<J, R> {
  readonly job: J;
  readonly result: Promise<Result<J, R>>;
}

/** What `drain()`/`abort()` did. */
export interface DrainReport<J = unknown> {
  /**
   * Jobs that settled on their own (any outcome) between the call and the end: those queued or
   * running at the call. Jobs settled before it are not counted (a pool that was idle reports
   * 0); `stats()` has the totals.
   */
  completed: number;
  /** Jobs canceled by the call: queued ones, and running ones at the deadline (or at abort). */
  canceled: number;
  /** The canceled jobs, in submission order for queued ones. */
  canceledJobs: J[];
}

type State = 'open' | 'closing' | 'drained' | 'aborted';

/**
 * A submit waiting for room: one class, so every parked submit has the same shape. A parked
 * `run()` is one too (`forRun`): its promise is the run's own, settled with the job's outcome.
 */
class Submitter<J, R> implements Waiter<Task<J, R>> {
  // For a run(), it takes the job's value (R), not a Task: see Pool.run.
  resolve: (value: Task<J, R>) => void = noop;
  reject: (error: Error) => void = noop;
  unsubscribe: (() => void) | undefined = undefined;
  prev: WaitNode | undefined = undefined;
  next: WaitNode | undefined = undefined;
  linked = false;
  readonly job: J;
  readonly signal: AbortSignal | undefined;
  readonly priority: number;
  readonly transfer: readonly TransferListItem[] | undefined;
  readonly forRun: boolean;
  /**
   * `detectDeadlock`: the wait of a pool worker's call, ended at acceptance (a submit) or when
   * the job settles (a run; see {@link Pool.#admit}).
   */
  readonly wait: Wait | undefined;
  /**
   * The lean `run()` calls parked before it ({@link ParkedRuns.pushed} when it parked): it is
   * served after those and before any parked later, in the order the calls were made.
   */
  readonly order: number;

  constructor(job: J, call: CallOptions, forRun: boolean, wait: Wait | undefined, order: number) {
    this.job = job;
    this.signal = call.signal;
    this.priority = call.priority;
    this.transfer = call.transfer;
    this.forRun = forRun;
    this.wait = wait;
    this.order = order;
  }
}

/**
 * A call's options, validated: what {@link Pool.#admit} reads besides the job. A Submitter
 * carries them while it waits; a call without any passes {@link NO_OPTIONS}, so the common
 * call allocates nothing for them.
 */
interface CallOptions {
  readonly signal: AbortSignal | undefined;
  readonly priority: number;
  /** ThreadPool's `transfer` list (undefined for a Pool without an executor). */
  readonly transfer: readonly TransferListItem[] | undefined;
}

/** The options of a call that gave none (or only defaults): the lean paths compare with it. */
// Not frozen: the same shape as the objects #callOptions builds (one map for #admit's reads).
const NO_OPTIONS: CallOptions = { signal: undefined, priority: 0, transfer: undefined };

function noop(): void {}

/**
 * What a run()'s promise (or a parked call's, at close) is resolved with to reject it: a
 * thenable that rejects with `error`, which the promise adopts one microtask later. A run keeps
 * only its promise's `resolve` (see ParkedRuns: its `reject` would survive with it, 64 bytes per
 * parked call); every run fails this way, and close() refuses every parked call this way, so
 * that they settle in the order they were made.
 */
function rejection(error: Error): PromiseLike<never> & never {
  return {
    // biome-ignore lint/suspicious/noThenProperty: a thenable on purpose: the promise adopts it.
    then: (_: unknown, reject: (reason: Error) => void) => reject(error),
  } as never;
}

/** A job waiting out its retry backoff. */
interface RetryWait<J, R> {
  readonly run: PendingRun<J, R>;
  timer: NodeJS.Timeout | undefined;
  unsubscribe: (() => void) | undefined;
}

/**
 * A Pool's job: a run (internal/job-run.ts) that can wait in the queue and resolves its Task's
 * result. Every field is its own (RunCore declares them, without a constructor: see there).
 */
class PendingRun<J, R> extends RunCore<J, R> implements WaitNode, Queued {
  readonly job: J;
  readonly index: number;
  workerId = -1;
  startedAt = 0;
  /** performance.now() at acceptance. ThreadPool reads it from the context as its wait start. */
  queuedAt: number | undefined = undefined;
  observed = false;
  controller: AbortController | undefined = undefined;
  timer: NodeJS.Timeout | undefined = undefined;
  isSettled = false;
  isCanceled = false;
  readonly owner: JobOwner<J, R>;
  /** Removes this job's listener from the caller's signal. */
  unsubscribe: (() => void) | undefined = undefined;
  /** The caller's signal, checked again before a queued job starts. */
  callerSignal: AbortSignal | undefined = undefined;
  prev: WaitNode | undefined = undefined;
  next: WaitNode | undefined = undefined;
  linked = false;
  priority = 0;
  key: string | undefined = undefined;
  order = 0;
  heapIndex = -1;
  /** 1 for the first run; a retry is a new PendingRun with the next number. */
  attempt = 1;
  /** The errors of earlier attempts, oldest first (with the `retry` option). */
  errors: Error[] | undefined = undefined;
  /** Objects to move to a thread (ThreadPool's submit option, read by its executor). */
  transfer: readonly TransferListItem[] | undefined = undefined;
  readonly resolveResult: (result: Result<J, R>) => void;
  /**
   * Set for a `run()`: the outcome settles its promise instead of a Task's result — a failure
   * too, through {@link rejection} (the run keeps no `reject`).
   */
  resolveRun: ((value: R) => void) | undefined = undefined;
  /**
   * Timed for stats() — its acceptance, start and settlement read — standing for this many jobs
   * (1 unless sampled), or 0: not timed, `queuedAt` and `startedAt` NaN, no clock read for it
   * (PoolStats.utilization, "Timing").
   */
  weight = 1;

  constructor(
    job: J,
    index: number,
    owner: JobOwner<J, R>,
    resolveResult: (result: Result<J, R>) => void,
  ) {
    super();
    this.job = job;
    this.index = index;
    this.owner = owner;
    this.resolveResult = resolveResult;
  }
}

/**
 * A long-lived pool: a fixed number of workers over a bounded queue, Go's worker pool as a
 * service object. `await submit(job)` is the backpressure: it resolves once the job is accepted
 * (a slot or a queue place was free). Every accepted job settles exactly once, as a
 * {@link Result} value — succeeded, failed, timed out, canceled or crashed.
 *
 * Lifecycle: open → `close()` (no intake) → `drain()` finishes queued and running jobs →
 * drained; or `abort()` at any point cancels everything now. A worker that throws fails its job,
 * never the pool. Aborted or timed-out jobs free their slot at once, even if the worker ignores
 * its signal (JavaScript cannot stop a promise); that worker's late outcome is discarded.
 *
 * @typeParam J - job type. @typeParam R - the worker's return type.
 * @example
 * ```ts
 * const pool = new Pool(async (url: string, { signal }) => (await fetch(url, { signal })).status,
 *   { concurrency: 8, timeout: 5_000 });
 * const task = await pool.submit('https://example.com'); // waits while the queue is full
 * const result = await task.result;                      // { ok, value } or { ok: false, error }
 * await pool.drain();
 * ```
 */
export class Pool<J, R> implements JobOwner<J, R> {
  readonly #worker: WorkerFunction<J, R>;
  readonly #queueSize: number;
  readonly #timeout: number | undefined;
  readonly #slots: Slots<PendingRun<J, R>>;
  /** Set when `concurrency` is adaptive: fed on each settlement of a started job. */
  readonly #adaptive: AdaptiveConcurrency | undefined;
  #queue: RunQueue<PendingRun<J, R>>;
  readonly #gates: Gates<J>;
  /** No gate between acceptance and start: a free slot takes the job at once (the fast path). */
  readonly #direct: boolean;
  /** Jobs are queued by key: starting one needs the time (a key's rate, cooling keys). */
  readonly #keyed: boolean;
  /** A key has a rate: each start needs a reading of its own (see #pump). */
  readonly #keyRate: boolean;
  /** Counts pump passes: a rate permit given back is kept for its own pass only. */
  #passes = 0;
  /** Jobs waiting out a retry backoff: no slot, not queued. */
  readonly #retrying = new Set<RetryWait<J, R>>();
  readonly #rate: RateGate | undefined;
  readonly #hooks: CoreHooks<J>;
  /** What runs a started job, when not the worker function in-process (ThreadPool's threads). */
  readonly #executor: Executor<J, R> | undefined;
  readonly #execute: ((run: PendingRun<J, R>) => void) | undefined;
  /** Set while abort() or a drain deadline cancels everything: the executor was told at once. */
  #cancelingAll = false;
  /** The error abort() or a drain deadline canceled everything with (for jobs caught midway). */
  #abortError: Error | undefined;
  /** Wakes the pump when a key's rate lets it start again. */
  readonly #keyWake = new KeyWake(() => this.#pump());
  #order = 0;
  readonly #submitters = new WaitList<Submitter<J, R>>();
  /** Parked `run()` calls with nothing but a job: in line with #submitters, by `order`. */
  readonly #parkedRuns = new ParkedRuns<J, R>();
  readonly #stats: StatsRecorder;
  readonly #idleWaiters: (() => void)[] = [];
  #state: State = 'open';
  #paused = false;
  #nextIndex = 0;
  /**
   * Accepted, unsettled jobs that are in none of the queue, a slot or a retry wait while user
   * code runs (an `accepted` subscriber, the key function, retryIf or the backoff function): a
   * submit from that code must find their places taken, and a drain() from it must wait for them.
   */
  #inTransit = 0;
  #settledCount = 0;
  #drainPromise: Promise<DrainReport<J>> | undefined;
  /** The first `abort()`'s promise: later calls return it (see {@link abort}). */
  #abortPromise: Promise<DrainReport<J>> | undefined;
  #drainResolve: (() => void) | undefined;
  readonly #drainTimers: NodeJS.Timeout[] = [];
  /** Jobs canceled by abort() or a drain deadline (at most once per pool: it ends aborted). */
  readonly #canceledJobs: J[] = [];
  #unsubscribePool: (() => void) | undefined;
  /** Set by CLOSE_WITH: refused submits get this error instead of a PoolClosedError. */
  #closeError: Error | undefined;
  readonly #name: string;
  readonly #kind: PoolKind;
  /** Its reader on `sluice:pool:created`, kept so a collector's WeakRef lives as long as the pool. */
  readonly #snapshot: unknown;
  /** With the `watchdog` option: running jobs and zombies, reported past their thresholds. */
  readonly #watchdog: Watchdog | undefined;
  /** With `detectDeadlock`: which running jobs' workers wait on this pool. */
  readonly #guard: DeadlockGuard | undefined;

  /**
   * @throws TypeError/RangeError naming the option when an option is invalid.
   */
  constructor(worker: WorkerFunction<J, R>, opts: PoolOptions<J>) {
    this.#worker = fn(argument('worker'), worker);
    optionsObject(argument('opts'), opts);
    this.#adaptive = adaptiveOf(opts?.concurrency);
    const concurrency = this.#adaptive?.limit ?? positiveInt('concurrency', opts?.concurrency);
    // Capped at the largest count allowed: a concurrency above half of it must not be refused
    // as a bad queueSize the caller never gave.
    const queueDefault = Math.min(
      2 * (this.#adaptive?.max ?? concurrency),
      Number.MAX_SAFE_INTEGER,
    );
    this.#queueSize = nonNegativeInt('queueSize', opts.queueSize ?? queueDefault);
    this.#timeout = optionalDuration('timeout', opts.timeout);
    const signal = optionalSignal('signal', opts.signal);
    this.#gates = gateOptions(opts);
    this.#kind = (opts as { [KIND]?: PoolKind })[KIND] ?? 'pool';
    this.#name = opts.name == null ? this.#kind : nonEmptyString('name', opts.name);
    const limits = watchdogOptions(opts.watchdog);
    this.#watchdog = limits && new Watchdog(limits, this.#name, this.#kind);
    this.#guard = optionalBoolean('detectDeadlock', opts.detectDeadlock)
      ? new DeadlockGuard()
      : undefined;
    const hooks = guardedHooks((opts as { [HOOKS]?: JobHooks<J> })[HOOKS]);
    this.#adaptive?.attach(this.#name, this.#kind);
    this.#hooks = publishingHooks(
      this.#name,
      this.#kind,
      this.#watchdog === undefined ? hooks : this.#watchdog.hooks(hooks),
    );
    const executor = (opts as { [EXECUTOR]?: Executor<J, R> })[EXECUTOR];
    this.#executor = executor;
    this.#execute = executor && ((run) => executor.run(run));
    this.#queue = this.#gates.newQueue();
    this.#direct = this.#gates.rate === undefined && this.#gates.key === undefined;
    this.#keyed = this.#gates.key !== undefined;
    this.#keyRate = this.#gates.keyRate;
    this.#rate =
      this.#gates.rate &&
      new RateGate(
        this.#gates.rate,
        () => this.#pump(),
        (error) => this.#failNext(error),
        (waitMs) => publishRateLimited(this.#name, this.#kind, 'rate', undefined, waitMs),
      );
    this.#slots = new Slots(concurrency);
    // Timings sampled under a burst (PoolStats, "Timing"), except where every run time is needed:
    // an adaptive limit feeds on each, a ThreadPool's executor reads each job's queuedAt.
    this.#stats = new StatsRecorder(concurrency, this.#adaptive === undefined && !executor);
    // consume() announces itself, with its messages' counters; a ThreadPool's stats are its own.
    const statsOf = (opts as { [ANNOUNCED_STATS]?: () => PoolStats | undefined })[ANNOUNCED_STATS];
    this.#snapshot =
      this.#kind === 'consume'
        ? undefined
        : announcePool(this.#name, this.#kind, () => ({
            state: this.#state,
            stats: statsOf?.() ?? this.stats(),
          }));
    if (signal?.aborted) {
      this.#setState('aborted');
    } else if (signal) {
      this.#unsubscribePool = onAbort(signal, (reason) => void this.abort(reason));
    }
  }

  /** Submits a job, waiting while the queue is full. Resolves with the accepted {@link Task}
   * — iff the job was accepted: what happens to it afterwards is in `Task.result` only.
   * @throws PoolClosedError (rejection) after close/drain/abort, also for a submit still waiting.
   * @throws AbortError (rejection) when `opts.signal` aborts while waiting for room — or is
   *   already aborted and the queue is full (nothing accepted). An already-aborted signal with
   *   room: the job is accepted and its result settles at once as canceled (`AbortError`).
   * @throws TypeError (rejection, never a synchronous throw) `ERR_INVALID_OPTION` when
   *   `opts.signal` is not an AbortSignal, or when `opts.timeout` is given (there is no timeout
   *   per submission: the pool's `timeout` applies to every job; refused, not ignored).
   */
  submit(job: J, opts?: SubmitOptions): Promise<Task<J, R>> {
    let call: CallOptions;
    try {
      call = this.#callOptions(opts);
    } catch (error) {
      return Promise.reject(error); // misuse of a promise-returning method rejects (README)
    }
    if (this.#canAccept()) {
      // NaN: the clock is read only if this job is timed (PoolStats, "Timing").
      return Promise.resolve(this.#accept(job, call, Number.NaN, undefined));
    }
    const signal = call.signal;
    if (signal?.aborted) return Promise.reject(abortErrorFrom(signal));
    const wait = this.#guard === undefined ? undefined : this.#beginWait();
    if (wait instanceof SelfDeadlockError) return Promise.reject(wait);
    const node = new Submitter<J, R>(job, call, false, wait, this.#parkedRuns.pushed);
    const parked = parkNode<Task<J, R>, Submitter<J, R>>(this.#submitters, node, signal);
    // Refused while parked (its signal): no longer waiting. (Served and closed: ended then.)
    if (wait !== undefined) parked.then(undefined, () => this.#guard?.end(wait));
    return parked;
  }

  /**
   * The options of a submit, trySubmit or run, validated, for a pool that accepts jobs.
   * @throws TypeError/RangeError `ERR_INVALID_OPTION` for an invalid option; then the pool's
   *   closed error when it no longer accepts jobs (in that order, for every kind of call).
   */
  #callOptions(opts: SubmitOptions | undefined): CallOptions {
    const signal = callSignal(opts);
    if (opts != null && (opts as { timeout?: unknown }).timeout != null) noCallTimeout(opts);
    const priority = opts?.priority == null ? 0 : this.#priority(opts.priority);
    if (this.#state !== 'open') throw this.#closedError();
    const transfer = this.#executor && transferOf(opts);
    if (signal === undefined && priority === 0 && transfer === undefined) return NO_OPTIONS;
    return { signal, priority, transfer };
  }

  /**
   * Submits only if there is room now; never waits.
   * @returns the Task, or `undefined` when the queue is full. With an already-aborted
   *   `opts.signal` and room, the Task is returned and its result settles at once as canceled.
   * @throws PoolClosedError after close/drain/abort; TypeError `ERR_INVALID_OPTION` when
   *   `opts.signal` is not an AbortSignal (a synchronous method throws).
   */
  trySubmit(job: J, opts?: SubmitOptions): Task<J, R> | undefined {
    const call = this.#callOptions(opts);
    if (!this.#canAccept()) return undefined;
    return this.#accept(job, call, Number.NaN, undefined);
  }

  /**
   * Submits and waits for the outcome.
   *
   * A failure reaches the returned promise one microtask after the job settled (a success at
   * once): jobs that settle in the same turn show their successes first. `onIdle()` and
   * `abort()` resume their caller after the runs' own handlers, failures included.
   * @returns the worker's value.
   * @throws the job's error (rejection): the worker's, `TimeoutError`, `AbortError`, … and
   *   `PoolClosedError` when the pool no longer accepts jobs.
   */
  run(job: J, opts?: SubmitOptions): Promise<R> {
    // submit() then `await task.result`, without the Task, its result promise and the awaits:
    // the job's outcome settles the run's promise directly (a hot path for many tiny jobs).
    // With detectDeadlock it is the same path, so jobs start in the same order with and without.
    let call: CallOptions;
    try {
      call = this.#callOptions(opts);
    } catch (error) {
      return Promise.reject(error);
    }
    const wait = this.#guard === undefined ? undefined : this.#beginWait();
    if (wait instanceof SelfDeadlockError) return Promise.reject(wait);
    if (this.#canAccept()) {
      // The executor only takes the resolving functions: V8 then inlines it and allocates no
      // closure or context for it (one that called #admit itself cost ~110 bytes per call).
      let resolve!: (value: R) => void;
      let reject!: (error: Error) => void;
      const promise = new Promise<R>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      try {
        this.#admit(this.#runFor(job, resolve), call, Number.NaN, wait);
      } catch (error) {
        reject(error as Error); // as a throw inside the promise's executor did
      }
      return promise;
    }
    if (wait === undefined && call === NO_OPTIONS) {
      // Nothing can take it out of line before its turn: the lean entry (see ParkedRuns).
      // Only `resolve` is kept: see ParkedRuns. (The executor as above.)
      let resolve!: (value: R) => void;
      const promise = new Promise<R>((res) => {
        resolve = res;
      });
      this.#parkedRuns.push(job, resolve);
      return promise;
    }
    const signal = call.signal;
    if (signal?.aborted) return this.#refuse(wait, abortErrorFrom(signal));
    const node = new Submitter<J, R>(job, call, true, wait, this.#parkedRuns.pushed);
    const parked = parkNode<R, Waiter<R>>(
      this.#submitters as unknown as WaitList<Waiter<R>>,
      node as never,
      signal,
    );
    // Refused while parked (its signal): no longer waiting. (Closed: ended by close().)
    if (wait !== undefined) parked.then(undefined, () => this.#guard?.end(wait));
    return parked;
  }

  /** Rejects a call with `error`, ending the wait it carried. */
  #refuse(wait: Wait | undefined, error: Error): Promise<never> {
    if (wait !== undefined) this.#guard?.end(wait);
    return Promise.reject(error);
  }

  /** The running job of this pool whose worker makes the current call (`detectDeadlock`). */
  #caller(): PendingRun<J, R> | undefined {
    const attempt = (this.#guard as DeadlockGuard).current();
    if (!(attempt instanceof PendingRun) || attempt.settled || attempt.workerId < 0) return;
    return this.#slots.holds(attempt.workerId, attempt) ? attempt : undefined;
  }

  /**
   * With detectDeadlock, for a call made from inside one of this pool's workers: the refusal
   * when every slot is held by workers waiting on this pool (the job could never start), else
   * the caller's wait, begun before the job is accepted (it may start at once, and its worker's
   * own calls must see this one waiting) and ended when it settles.
   */
  #beginWait(): Wait | SelfDeadlockError | undefined {
    const caller = this.#caller();
    if (caller === undefined) return undefined;
    if (this.#wouldDeadlock(caller)) return new SelfDeadlockError(this.#slots.running);
    return (this.#guard as DeadlockGuard).begin(caller);
  }

  /** Whether `caller` waiting on this pool now would complete a self-deadlock (see module). */
  #wouldDeadlock(caller: PendingRun<J, R>): boolean {
    const saturated =
      !this.#paused && this.#timeout === undefined && this.#slots.running >= this.#slots.limit;
    return (this.#guard as DeadlockGuard).wouldDeadlock(caller, this.#slots.running, saturated);
  }

  /** Stops intake: later (and still-waiting) submits reject with `PoolClosedError`. Idempotent. */
  close(): void {
    if (this.#state !== 'open') return;
    this.#setState('closing');
    const lean = this.#parkedRuns;
    // In the order they parked, as they would have been served.
    while (this.#parked()) {
      const error =
        this.#closeError ??
        new PoolClosedError('pool closed while the submit was waiting for room');
      const s = this.#shiftParked();
      if (s === undefined) {
        const resolve = lean.resolve;
        lean.clearLast();
        resolve(rejection(error));
      } else {
        if (s.wait !== undefined) this.#guard?.end(s.wait);
        // As a lean run() above: through `resolve`, so both kinds settle in this order.
        claim(s);
        s.resolve(rejection(error));
      }
    }
    this.#checkDrained();
  }

  /**
   * @internal {@link close}, with `error` as what waiting and later submits reject with (the
   * symbol key keeps it off the public API): ThreadPool's start-up failure.
   */
  [CLOSE_WITH](error: Error): void {
    this.#closeError ??= error;
    this.close();
  }

  /** What a submit to a pool that no longer accepts jobs rejects with. */
  #closedError(): Error {
    return this.#closeError ?? new PoolClosedError();
  }

  /**
   * Closes the pool and waits for queued and running jobs to finish. With `timeout` (ms), at the
   * deadline whatever is left is canceled (`AbortError`) and reported; `timeout: 0` cancels it
   * right away (jobs that settle in the same tick still complete).
   *
   * Calling it again returns the same promise (its report counts from the first call), but the
   * new `timeout` still applies: the earliest deadline wins — e.g. a plain `drain()` at
   * shutdown, then `drain({ timeout: 5_000 })` on a second signal. On a paused pool it waits
   * for `resume()`.
   * @returns `{ completed, canceled, canceledJobs }` once the pool is idle or the deadline hit.
   * @throws RangeError/TypeError (rejection, `ERR_INVALID_OPTION`) when `timeout` is not a
   *   number of ms in 0..2147483647 (`ERR_INVALID_ARGUMENT` when `opts` is not an object); the
   *   pool is then left as it was.
   */
  drain(opts?: { timeout?: number }): Promise<DrainReport<J>> {
    let timeout: number | undefined;
    try {
      timeout = drainDeadline(opts);
    } catch (error) {
      return Promise.reject(error); // misuse of a promise-returning method rejects (README)
    }
    if (!this.#drainPromise) {
      this.close();
      const mark = this.#mark();
      this.#drainPromise = new Promise<void>((resolve) => {
        this.#drainResolve = resolve;
        if (this.#state === 'aborted' || this.#state === 'drained') resolve();
        else this.#checkDrained();
      }).then(() => this.#reportSince(mark));
    }
    // Every call's deadline counts, so the earliest wins (e.g. a plain drain, then a forced one).
    if (timeout !== undefined && this.#state === 'closing') {
      const error = new AbortError(undefined, `drain timed out after ${timeout} ms`);
      this.#drainTimers.push(setTimeout(() => this.#cancelAll(error), timeout));
    }
    return this.#drainPromise;
  }

  /**
   * Cancels now: waiting submits reject with `PoolClosedError`, queued jobs settle as
   * `AbortError` (with `reason` as `cause`) without starting, running jobs' signals abort and
   * they settle as `AbortError` at once.
   *
   * Idempotent, as `AbortController.abort()` and Go's `CancelFunc`: a later call returns the
   * first call's promise (its report, counted from that call), and its `reason` is ignored.
   */
  abort(reason?: unknown): Promise<DrainReport<J>> {
    if (this.#abortPromise !== undefined) return this.#abortPromise;
    this.close();
    const mark = this.#mark();
    // Set before the jobs are canceled: an abort() from a subscriber of their settlement gets
    // this promise too (it got one of its own, counted from midway).
    let counted!: (report: DrainReport<J>) => void;
    this.#abortPromise = new Promise((resolve) => {
      counted = resolve;
    });
    this.#cancelAll(reason instanceof AbortError ? reason : new AbortError(reason));
    // One microtask later: a failed run() settles its promise through `resolve` (see
    // `rejection`), a microtask after the job, so the caller resumes after the runs' handlers.
    // Counted then: an abort() from a subscriber of a job's acceptance cancels that job once
    // abort() returned (nothing else can settle meanwhile: everything was canceled).
    void Promise.resolve().then(() => counted(this.#reportSince(mark)));
    return this.#abortPromise;
  }

  /**
   * Changes the concurrency limit. Up: queued jobs start at once. Down: running jobs finish;
   * nothing new starts until fewer than `concurrency` run.
   * @throws RangeError/TypeError when `concurrency` is not a positive integer.
   */
  resize(concurrency: number): void {
    positiveInt(argument('concurrency'), concurrency);
    // An adaptive limit goes on from the new value (which must lie in its [min, max]).
    this.#adaptive?.set(concurrency);
    this.#slots.resize(concurrency);
    this.#stats.setConcurrency(concurrency);
    this.#pump();
  }

  /**
   * Starts nothing new until `resume()`; running jobs go on, submits are still accepted (up to
   * `queueSize`). A `drain()` of a paused pool waits for `resume()` — give it a `timeout`.
   */
  pause(): void {
    this.#paused = true;
  }

  /** Starts queued jobs again, up to the concurrency limit. */
  resume(): void {
    this.#paused = false;
    this.#pump();
  }

  /** True between `pause()` and `resume()`. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Resolves when nothing is queued or running (at once for a pool that never had work). */
  onIdle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    // `.then`: one microtask after the last job settled, as abort() (the runs' handlers first).
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve)).then(noop);
  }

  /** A snapshot of counters and timings; see {@link PoolStats}. */
  stats(): PoolStats {
    const stats = this.#stats.snapshot(
      this.#slots.limit,
      this.#slots.running,
      this.#queue.length,
      this.#gateSnapshot(),
    );
    if (this.#adaptive !== undefined) stats.limit = this.#adaptive.stats();
    if (this.#watchdog !== undefined) Object.assign(stats, this.#watchdog.snapshot());
    return stats;
  }

  /** `await using pool = new Pool(…)` drains the pool at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.drain();
  }

  #canAccept(): boolean {
    const admitting = this.#inTransit;
    if (this.#direct && this.#retrying.size === 0 && admitting === 0) {
      return this.#canStart() || this.#queue.length < this.#queueSize;
    }
    // With gates, jobs wait in the queue (or a backoff) even while slots are free: everything
    // accepted and not running stays within queueSize plus the free slots, so that accepted
    // and unsettled jobs never exceed concurrency + queueSize. A job being admitted (a
    // subscriber or key function submitting from inside its admission) counts as waiting.
    let free = Math.max(0, this.#slots.limit - this.#slots.running);
    // Without gates a job takes a free slot only when it may start now (else it is queued).
    if (this.#direct && admitting > 0 && !this.#canStart()) free = 0;
    return this.#queue.length + this.#retrying.size + admitting < this.#queueSize + free;
  }

  #canStart(): boolean {
    return !this.#paused && this.#slots.available && this.#queue.length === 0;
  }

  #priority(value: unknown): number {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      invalidOption('priority', value, 'a finite number');
    }
    return value;
  }

  /**
   * Accepts a submitted job: its outcome resolves the returned Task's `result`. `now` and `wait`
   * as for {@link #admit}.
   */
  #accept(job: J, call: CallOptions, now: number, wait: Wait | undefined): Task<J, R> {
    let resolveResult!: (result: Result<J, R>) => void;
    const result = new Promise<Result<J, R>>((resolve) => {
      resolveResult = resolve;
    });
    this.#admit(new PendingRun(job, this.#nextIndex++, this, resolveResult), call, now, wait);
    return { job, result };
  }

  /** A run()'s job, whose outcome settles the run's own promise (`resolve` or `reject`). */
  #runFor(job: J, resolve: (value: R) => void): PendingRun<J, R> {
    const run = new PendingRun<J, R>(job, this.#nextIndex++, this, noop);
    run.resolveRun = resolve;
    return run;
  }

  /**
   * Accepts `run`, a new job (from {@link #accept} or {@link #runFor}) made by a call with
   * `call`'s options. `now`: performance.now() read by the caller, shared with the settlement
   * that made room, or NaN (not read: read here if the job is timed). `wait`: with
   * `detectDeadlock`, the wait of the pool worker that made the call — served now for a submit,
   * when the job settles for a run.
   */
  #admit(run: PendingRun<J, R>, call: CallOptions, now: number, wait: Wait | undefined): void {
    const weight = this.#stats.timeNext();
    if (weight > 0) {
      if (Number.isNaN(now)) now = performance.now();
      run.queuedAt = now;
    } else run.queuedAt = Number.NaN;
    run.weight = weight;
    run.transfer = call.transfer;
    this.#stats.submitted++;
    // Counted as waiting until it is queued or started: user code run meanwhile (an `accepted`
    // subscriber, the key function) may submit again, and must find this job's place taken.
    this.#inTransit++;
    run.observed = this.#hooks.accepted(run.job, run.index);
    const signal = call.signal;
    run.callerSignal = signal;
    // A worker's wait is served now (a submit) or once this job settles (a run) — before the
    // job starts, as its worker may call in at once.
    if (wait !== undefined) {
      if (run.resolveRun !== undefined) (this.#guard as DeadlockGuard).until(run.index, wait);
      else (this.#guard as DeadlockGuard).end(wait);
    }
    const priority = call.priority;
    if ((this.#state as State) === 'aborted') {
      // A subscriber of the job's acceptance aborted the pool: it is one of those canceled.
      this.#inTransit--;
      this.#canceledJobs.push(run.job);
      run.cancel(this.#abortError as Error);
    } else if (signal?.aborted) {
      this.#inTransit--;
      run.cancel(abortErrorFrom(signal));
    } else if (this.#direct && priority === 0 && this.#retrying.size === 0) {
      this.#inTransit--;
      if (signal) run.unsubscribe = onAbort(signal, () => this.#cancelOne(run, signal));
      if (this.#canStart()) this.#start(run, now);
      else this.#enqueue(run);
    } else {
      this.#acceptGated(run, priority, now);
    }
  }

  /** A job through the gates: keyed and prioritised, queued, started by the pump. */
  #acceptGated(run: PendingRun<J, R>, priority: number, now: number): void {
    run.priority = priority;
    const { key } = this.#gates;
    if (key !== undefined) {
      try {
        run.key = keyOf(key, run.job);
      } catch (error) {
        // A key function's failure is that job's failure (settled on a microtask, as a
        // worker's synchronous throw is); in transit until then, so the pool is not idle before.
        queueMicrotask(() => {
          this.#inTransit--;
          run.cancel(toError(error));
        });
        return;
      }
    }
    this.#inTransit--; // (see #admit) placed below, or settled
    if (this.#state === 'aborted') {
      // The key function aborted the pool: this job is one of those canceled.
      this.#canceledJobs.push(run.job);
      run.cancel(this.#abortError as Error);
      return;
    }
    const signal = run.callerSignal;
    if (signal) run.unsubscribe = onAbort(signal, () => this.#cancelOne(run, signal));
    this.#enqueue(run);
    this.#pump(now);
  }

  #enqueue(run: PendingRun<J, R>): void {
    run.order = this.#order++;
    // The first prioritised job turns a FIFO queue into a heap (FIFO within equal priorities).
    if (
      run.priority !== 0 &&
      this.#gates.key === undefined &&
      !(this.#queue instanceof PriorityQueue)
    ) {
      const heap = new PriorityQueue<PendingRun<J, R>>();
      for (let r = this.#queue.take(0); r; r = this.#queue.take(0)) heap.push(r);
      this.#queue = heap;
    }
    this.#queue.push(run);
  }

  /**
   * Starts `run` at `now` (NaN: not read yet). Returns the reading it took or was given, for the
   * rest of the caller's pass.
   */
  #start(run: PendingRun<J, R>, now: number): number {
    const workerId = this.#slots.acquire(run);
    if (run.weight > 0) {
      if (Number.isNaN(now)) now = performance.now();
      run.startedAt = now;
      this.#stats.recordStart(now, now - (run.queuedAt as number), run.weight);
    } else {
      run.startedAt = Number.NaN;
      this.#stats.startedUntimed();
    }
    const around = run.observed
      ? this.#hooks.started?.(run.job, run.index, run.attempt)
      : undefined;
    if (this.#execute !== undefined) run.execute(this.#execute, workerId, this.#timeout, around);
    else if (this.#guard !== undefined) {
      this.#guard.enter(run, startWorker, run, this.#worker, workerId, this.#timeout, around);
    } else if (deadlockStorageActive()) {
      outsideJobs(startWorker, run, this.#worker, workerId, this.#timeout, around);
    } else run.start(this.#worker, workerId, this.#timeout, around);
    return now;
  }

  #cancelOne(run: PendingRun<J, R>, signal: AbortSignal): void {
    this.#queue.remove(run);
    run.cancel(abortErrorFrom(signal));
  }

  /** Retries a failed attempt after `delay` ms, holding no slot meanwhile. */
  #retryLater(failed: PendingRun<J, R>, error: Error, delay: number): void {
    const next = new PendingRun<J, R>(failed.job, failed.index, this, failed.resolveResult);
    next.resolveRun = failed.resolveRun;
    next.attempt = failed.attempt + 1;
    next.errors = [...(failed.errors ?? []), error];
    next.priority = failed.priority;
    next.key = failed.key;
    next.observed = failed.observed;
    next.callerSignal = failed.callerSignal;
    next.queuedAt = failed.queuedAt;
    next.weight = failed.weight;
    const wait: RetryWait<J, R> = { run: next, timer: undefined, unsubscribe: undefined };
    this.#retrying.add(wait);
    const signal = next.callerSignal;
    if (signal)
      wait.unsubscribe = onAbort(signal, () => this.#endWait(wait, abortErrorFrom(signal)));
    wait.timer = setTimeout(() => {
      if (!this.#retrying.delete(wait)) return;
      wait.unsubscribe?.();
      if (signal) next.unsubscribe = onAbort(signal, () => this.#cancelOne(next, signal));
      this.#enqueue(next);
      this.#pump();
    }, delay);
  }

  /** Settles a job waiting to retry, without running it again (canceled). */
  #endWait(wait: RetryWait<J, R>, error: Error): void {
    if (!this.#retrying.delete(wait)) return;
    clearTimeout(wait.timer);
    wait.unsubscribe?.();
    // Settled through the usual path: counted, resolved, and the pool pumped.
    wait.run.cancel(error);
  }

  /**
   * @internal Settles every queued (not started) job with `error` at once, without aborting
   * the pool: consume() hands unstarted messages back at a drain instead of letting each wait its
   * turn at the rate or its key first. The symbol key keeps it off the public API.
   */
  [RELEASE_QUEUED](error: Error): void {
    for (const run of this.#queue.clear()) run.cancel(error);
    this.#pump();
  }

  /** @internal A canceled job's worker runs on, then returns (the watchdog's zombies). */
  [LINGER](run: RunCore<J, R>, error: Error | undefined): void {
    if (this.#watchdog === undefined) return;
    if (error === undefined) this.#watchdog.returned(run);
    else this.#watchdog.abandoned(run, run.job, run.index, error);
  }

  /** @internal A job ended (called by its run); the symbol key keeps it off the public API. */
  [SETTLE](run: RunCore<J, R>, error: Error | undefined, value: R | undefined): void {
    const pending = run as PendingRun<J, R>;
    pending.unsubscribe?.();
    const started = pending.workerId >= 0;
    // Read for a timed job and for a key's limits; NaN otherwise (PoolStats, "Timing").
    const now =
      started && (pending.weight > 0 || pending.key !== undefined) ? performance.now() : Number.NaN;
    if (started) {
      // The pool ended a job its executor holds: the executor stops its work first, so the
      // freed slot's next job never runs beside it.
      if (this.#executor !== undefined && pending.canceled && !this.#cancelingAll) {
        this.#executor.cancel(pending, error as Error);
      }
      this.#slots.release(pending.workerId);
      if (this.#guard !== undefined) this.#guard.attemptEnded(pending);
      if (pending.key !== undefined) this.#queue.finished(pending, now);
      if (this.#adaptive !== undefined && !pending.canceled) this.#sample(pending, error, now);
    } else {
      this.#queue.remove(pending);
    }
    const retry = this.#gates.retry;
    // A job whose objects moved to a thread cannot be sent again: it is not retried.
    const movable = pending.transfer === undefined || pending.transfer.length === 0;
    if (
      retry !== undefined &&
      error !== undefined &&
      started &&
      movable &&
      this.#state !== 'aborted'
    ) {
      // Out of its slot, not yet waiting: counted meanwhile (see #inTransit).
      this.#inTransit++;
      const delay = retry.next(error, pending.attempt);
      this.#inTransit--;
      // (Read again: TypeScript narrowed it above, but user code ran since.)
      if ((this.#state as State) === 'aborted') {
        // retryIf or the backoff aborted the pool: the job is canceled with the rest.
        this.#canceledJobs.push(pending.job);
        error = this.#abortError as Error;
      } else if (delay >= 0) {
        if (pending.weight > 0) this.#stats.retrying(pending.startedAt, now, pending.weight);
        else this.#stats.retryingUntimed();
        // Waiting before its subscribers hear of it: one that aborts the pool ends the wait.
        this.#retryLater(pending, error, delay);
        if (pending.observed) {
          this.#hooks?.retried?.(pending.job, pending.index, pending.attempt, error, delay);
        }
        this.#pump(now);
        return;
      }
    }
    const outcome = outcomeOf(error);
    if (!started) this.#stats.settledUnstarted(outcome);
    else if (pending.weight > 0) {
      this.#stats.settled(outcome, pending.startedAt, now, pending.weight);
    } else this.#stats.settledUntimed(outcome);
    this.#settledCount++;
    if (this.#guard !== undefined) this.#guard.jobSettled(pending.index);
    if (pending.observed) this.#hooks?.settled?.(pending.job, pending.index, error);
    const resolveRun = pending.resolveRun;
    if (resolveRun !== undefined) {
      // A run(): its promise takes the outcome itself (what `await task.result` would unwrap).
      if (error === undefined) resolveRun(value as R);
      else resolveRun(rejection(error));
    } else {
      pending.resolveResult(
        retry === undefined
          ? makeResult(pending.job, pending.index, error, value)
          : attemptsResult(makeResult(pending.job, pending.index, error, value), pending, error),
      );
    }
    this.#pump(now);
  }

  /** Feeds a finished attempt to the adaptive limit (see feedLimit); resizes when it moved. */
  #sample(run: PendingRun<J, R>, error: Error | undefined, now: number): void {
    const adaptive = this.#adaptive as AdaptiveConcurrency;
    const limit = feedLimit(adaptive, run.startedAt, error, now, this.#slots.running);
    if (limit !== undefined) {
      this.#slots.resize(limit);
      this.#stats.setConcurrency(limit);
    }
  }

  /**
   * Starts what may start, then accepts parked submits. `now`: a reading shared with the caller
   * (its settlement or acceptance), or NaN: read here when needed — by the rate and key gates,
   * or by a timed job.
   */
  #pump(now = Number.NaN): void {
    const startable = this.#state !== 'aborted';
    const pass = this.#direct ? 0 : ++this.#passes;
    while (startable && !this.#paused && this.#slots.available && this.#queue.length > 0) {
      if (!this.#direct) {
        // A keyed queue needs the time; read here, with no user code run since, the rate limiter
        // may stamp this start with it. A key's rate records the start at it too: read for every
        // start then (a reading from before an earlier start of this pass, whose worker ran
        // since, would stamp it early). A lone rate reads the clock only when its limiter needs to.
        let reading: number | undefined;
        if (this.#keyRate || (Number.isNaN(now) && this.#keyed)) {
          now = performance.now();
          reading = now;
        }
        if (this.#rate !== undefined) {
          // Only a job that may start now takes a permit (one held later would be stale).
          if (!this.#queue.ready(now)) {
            this.#armKeyWake(now);
            break;
          }
          if (!this.#rate.take(pass, reading)) break;
        }
      }
      const run = this.#queue.take(now);
      if (run === undefined) {
        this.#rate?.giveBack(pass);
        this.#armKeyWake(now);
        break;
      }
      // Its signal may have aborted in this same turn, its listener not yet called (another
      // listener on that signal settled a job and brought us here first): never start it.
      if (run.callerSignal?.aborted) {
        this.#rate?.giveBack(pass);
        if (run.key !== undefined) this.#queue.finished(run, now);
        run.cancel(abortErrorFrom(run.callerSignal));
      } else {
        now = this.#start(run, now);
      }
    }
    const lean = this.#parkedRuns;
    while (this.#parked() && this.#canAccept()) {
      const s = this.#shiftParked();
      if (s === undefined) {
        const { job, resolve } = lean;
        lean.clearLast();
        this.#admit(this.#runFor(job as J, resolve), NO_OPTIONS, now, undefined);
        continue;
      }
      // One reading for every timed acceptance of this pass.
      if (Number.isNaN(now) && this.#stats.nextTimed) now = performance.now();
      // Accepted from here on: starting the job may run a worker that aborts the submit's own
      // signal, which must then cancel the job (its result), not reject the submit.
      claim(s);
      if (s.forRun) {
        const run = s as unknown as { resolve: (value: R) => void };
        this.#admit(this.#runFor(s.job, run.resolve), s, now, s.wait);
      } else {
        serve(s, this.#accept(s.job, s, now, s.wait));
      }
    }
    if (this.#isIdle()) {
      if (this.#idleWaiters.length > 0)
        for (const resolve of this.#idleWaiters.splice(0)) resolve();
      this.#checkDrained();
    }
  }

  /** Some call is parked for room: a lean run() in #parkedRuns, or one in #submitters. */
  #parked(): boolean {
    return this.#submitters.length > 0 || this.#parkedRuns.length > 0;
  }

  /**
   * Takes the call parked first (by the shared park counter) off its list, to be served or
   * refused: the Submitter, or undefined when it was the oldest lean run() — then read from
   * #parkedRuns (`job`, `resolve`, `reject`) until the caller clears it. Only while
   * {@link #parked}.
   */
  #shiftParked(): Submitter<J, R> | undefined {
    const lean = this.#parkedRuns;
    const first = this.#submitters.head;
    if (lean.length > 0 && (first === undefined || first.order > lean.headSeq)) {
      lean.shift();
      return undefined;
    }
    return this.#submitters.shift();
  }

  /** Wakes the pump when the soonest key's rate allows; a new wait is published. */
  #armKeyWake(now: number): void {
    const wait = this.#queue.readyIn(now);
    if (this.#keyWake.arm(now, wait)) {
      publishRateLimited(this.#name, this.#kind, 'key', this.#queue.nextReadyKey?.(), wait);
    }
  }

  #isIdle(): boolean {
    // A job in transit (user code runs for it: a drain() from there) is not settled yet.
    return (
      this.#slots.running === 0 &&
      this.#queue.length === 0 &&
      this.#retrying.size === 0 &&
      this.#inTransit === 0
    );
  }

  /** The rate limiter failed: the job that needed the permit fails with that error. */
  #failNext(error: Error): void {
    const now = performance.now();
    const run = this.#queue.take(now);
    if (run === undefined) return;
    if (run.key !== undefined) this.#queue.finished(run, now);
    run.cancel(error);
  }

  #gateSnapshot(): GateSnapshot {
    const free = Math.max(0, this.#slots.limit - this.#slots.running);
    const heldByKey = this.#queue.heldByKey();
    const rateBlocked = this.#rate?.waiting === true;
    return {
      waiting: {
        retry: this.#retrying.size,
        rate: rateBlocked ? Math.min(free, this.#queue.length - heldByKey) : 0,
        key: heldByKey,
      },
      keys: this.#queue.keys,
    };
  }

  /** Cancels every queued and running job (once: the pool is aborted for good). */
  #cancelAll(error: Error): void {
    // Once: an abort() from user code run while the jobs below are canceled (a subscriber of
    // their settlement) finds the pool aborted and leaves them to this call — canceling the
    // next job itself, each nested one deeper, overflowed the stack over thousands of jobs.
    if (this.#state === 'aborted') return;
    // Set first, so settling the canceled jobs below starts nothing new.
    this.#setState('aborted');
    this.#abortError = error;
    if (this.#executor !== undefined) {
      this.#cancelingAll = true;
      this.#executor.cancelAll(error);
    }
    this.#rate?.stop();
    this.#keyWake.stop();
    const queued = this.#queue.clear();
    // By run, built once: a lookup per queued job (an abort of 100,000 queued jobs with
    // thousands waiting to retry stays linear).
    const waits = new Map<RetryWait<J, R>['run'], RetryWait<J, R>>();
    for (const wait of this.#retrying) {
      queued.push(wait.run);
      waits.set(wait.run, wait);
    }
    queued.sort((a, b) => a.index - b.index);
    for (const run of queued) {
      this.#canceledJobs.push(run.job);
      const wait = waits.get(run);
      if (wait) this.#endWait(wait, error);
      else run.cancel(error);
    }
    for (const run of this.#slots.items()) {
      // Settled already: canceled a moment ago by its own signal or timeout, whose abort
      // listener (user code, run before the slot is released) called abort() — not ours.
      if (run.settled) continue;
      this.#canceledJobs.push(run.job);
      run.cancel(error);
    }
    this.#finish();
  }

  /** Counters at the start of a drain or abort, for its report. */
  #mark(): { settled: number; canceled: number } {
    return { settled: this.#settledCount, canceled: this.#canceledJobs.length };
  }

  #reportSince(mark: { settled: number; canceled: number }): DrainReport<J> {
    const canceledJobs = this.#canceledJobs.slice(mark.canceled);
    const completed = this.#settledCount - mark.settled - canceledJobs.length;
    return { completed, canceled: canceledJobs.length, canceledJobs };
  }

  /** Every state change goes through here: it is published on `sluice:pool:state`. */
  #setState(state: State): void {
    const previous = this.#state;
    this.#state = state;
    publishPoolState(this.#name, this.#kind, previous, state);
  }

  #checkDrained(): void {
    if (this.#state === 'closing' && this.#isIdle() && this.#drainResolve) {
      this.#setState('drained');
      this.#finish();
    }
  }

  #finish(): void {
    for (const timer of this.#drainTimers.splice(0)) clearTimeout(timer);
    // Drained or aborted: a rate permit still on its way must not hold the process open.
    this.#rate?.stop();
    this.#keyWake.stop();
    this.#unsubscribePool?.();
    this.#unsubscribePool = undefined;
    this.#drainResolve?.();
  }
}

export type { JobContext, WorkerFunction };

/**
 * An idle pool and job, kept for the life of the process on purpose: they keep the hidden
 * classes of Pool, its queue, slots and jobs alive, so a full GC after the last pool dies does
 * not discard the optimised code specialised on them (see `pinnedForOptimisedCode` in
 * internal/pull-engine.ts). Exported only so that the module keeps them; not API.
 */
export const pinnedPool: readonly object[] = pinPool();

function pinPool(): object[] {
  const pool = new Pool<unknown, unknown>(() => undefined, { concurrency: 1 });
  const run = new PendingRun<unknown, unknown>(undefined, 0, pool, () => undefined);
  // As real jobs leave them: timestamps are doubles (a different field representation).
  run.queuedAt = performance.now();
  run.startedAt = performance.now();
  return [pool, run];
}

/**
 * The `transfer` list of a ThreadPool submission (Pool passes it to its executor), copied: it is
 * read when the job leaves for a thread, maybe long after the submit, and a caller that refills
 * one array for its next submit would otherwise move that job's buffers with this one.
 */
function transferOf(opts: unknown): readonly TransferListItem[] | undefined {
  const list = (opts as { transfer?: readonly TransferListItem[] | null } | undefined)?.transfer;
  return list == null ? undefined : [...list];
}

/**
 * Refuses a per-submission `timeout` (`submit`, `trySubmit`, `run`): there is none — the pool's
 * `timeout` applies to every job — and ignoring it would let a caller believe the job is bounded.
 */
function noCallTimeout(opts: SubmitOptions): never {
  invalidOption(
    'timeout',
    (opts as { timeout?: unknown }).timeout,
    'no timeout per submission (give `timeout` to the pool: it applies to every job; or pass a `signal`)',
  );
}
