import { availableParallelism } from 'node:os';
import { AbortError, PoolClosedError, toError } from '../errors.js';
import { AdaptiveConcurrency } from '../gates/adaptive.js';
import { onAbort } from '../internal/abort-fanout.js';
import {
  argument,
  invalidArgument,
  invalidOption,
  type Label,
  nonEmptyString,
  nonNegativeInt,
  optionalDuration,
  optionalResourceLimits,
  optionalSignal,
  optionsObject,
  positiveInt,
} from '../internal/options.js';
import { ANNOUNCED_STATS } from '../observability/gate-channels.js';
import { KIND } from '../observability/publisher.js';
import { Watchdog, watchdogOptions } from '../observability/watchdog.js';
import { type DrainReport, Pool, type PoolOptions, type Task } from '../pool.js';
import { CLOSE_WITH, EXECUTOR, type Executor, type ExecutorJob } from '../scheduler/executor.js';
import { MAX_BATCH } from './batch-size.js';
import { resolveModule, threadSpec } from './module-spec.js';
import { Scheduler } from './scheduler.js';
import type {
  ThreadModule,
  ThreadModuleJob,
  ThreadModuleResult,
  ThreadPoolOptions,
  ThreadPoolStats,
  ThreadSubmitOptions,
} from './types.js';

/**
 * A {@link Pool} whose jobs run on `worker_threads`: for CPU-bound work, which would otherwise
 * block the event loop. Same surface and semantics as `Pool` — bounded queue, awaitable
 * `submit`, every job settling once as a {@link Result}, `close`/`drain`/`abort`, `resize`,
 * timeouts and signals, and the same gates (`retry`, `rate`, `key`/`perKey`, submit `priority`)
 * — with crash isolation: a thread that dies fails the job it was running (`WorkerCrashedError`
 * with `exitCode`) and is replaced; jobs sent with it in the same batch that had not started run
 * elsewhere, and those that had finished keep their outcome — except when the thread is killed
 * from outside (out of memory, `abortGrace`), where finished results still inside it are lost
 * and fail as `WorkerCrashedError` saying so (README, "A thread dying in the middle of a batch").
 * Internally it is a `Pool` (intake, queue, gates, lifecycle) whose executor is the threads.
 *
 * The module's default export is the worker function, `(job, ctx: ThreadJobContext) => R`.
 * Jobs and results cross threads by structured cloning; list `ArrayBuffer`s in `transfer` (and
 * call `ctx.transfer()` in the thread) to move them instead.
 *
 * Module loading: a missing file throws `TypeError` here. Whether the module loads and has a
 * function default export is only known once a thread imported it: a module without one fails
 * the pool (`ready` rejects, every job gets one `WorkerStartupError`); a module that throws on
 * import is retried with backoff (50, 100, 200 ms, …) and fails the pool after
 * `maxStartupFailures` consecutive failures. `.ts` modules load through tsx when it is installed
 * (each thread registers `tsx/esm/api` before importing; Node 20 ignores `--import` in a
 * Worker's `execArgv`), on Node 20 and 24; without tsx, a Node that strips types itself
 * (22.18+) loads them natively, and older Nodes throw `TypeError` here. Built `.js` modules need
 * nothing.
 *
 * Cost: when many jobs wait, several go to a thread in one message (sized to about 1 ms of
 * measured work), so tiny jobs cost far less than one message round trip each. The jobs a
 * thread holds in its batches do not count against `queueSize` (see the option): the bounded
 * default batches as deeply as an unbounded queue.
 *
 * @example
 * ```ts
 * // hash.ts: export default (buf: Uint8Array) => createHash('sha256').update(buf).digest('hex');
 * await using pool = new ThreadPool<Uint8Array, string>(new URL('./hash.js', import.meta.url));
 * const digest = await pool.run(new Uint8Array(1024));
 * // or let the module's type give J and R (see fromModule):
 * await using typed = await ThreadPool.fromModule<typeof import('./hash.js')>(
 *   new URL('./hash.js', import.meta.url),
 * );
 * ```
 */
export class ThreadPool<J, R> {
  readonly #pool: Pool<J, R>;
  readonly #scheduler: Scheduler;
  readonly #queueSize: number;
  #threads: number;
  readonly #gated: boolean;
  #stopped: Promise<void> | undefined;
  readonly #watchdog: Watchdog | undefined;
  /** Removes the listener on `opts.signal`; called once the pool stops. */
  #unsubscribe: (() => void) | undefined;

  /**
   * Starts the threads at once (the module loads in the background; see {@link ready}).
   * @param module - path (absolute, or relative to the working directory) or `file:` URL of the
   *   worker module.
   * @throws TypeError when the module file does not exist (`code: 'ERR_MODULE_NOT_FOUND'`), or is
   *   TypeScript and tsx is missing (`ERR_UNKNOWN_FILE_EXTENSION`).
   * @throws TypeError/RangeError naming the option when an option is invalid.
   */
  constructor(module: string | URL, options?: ThreadPoolOptions<J>) {
    // null and undefined both mean "the defaults", as for Pool.
    const opts = optionsObject<ThreadPoolOptions<J>>(argument('opts'), options) ?? {};
    refuseAdaptive(opts);
    const threads = threadCount('threads', opts.threads ?? availableParallelism());
    this.#threads = threads;
    this.#queueSize = nonNegativeInt('queueSize', opts.queueSize ?? 2 * threads);
    if (opts.name != null) nonEmptyString('name', opts.name);
    const timeout = optionalDuration('timeout', opts.timeout);
    const abortGrace = optionalDuration('abortGrace', opts.abortGrace) ?? 500;
    const maxStartupFailures = positiveInt('maxStartupFailures', opts.maxStartupFailures ?? 3);
    const signal = optionalSignal('signal', opts.signal);
    optionalResourceLimits('resourceLimits', opts.resourceLimits);
    const limits = watchdogOptions(opts.watchdog);
    this.#watchdog = limits && new Watchdog(limits, opts.name ?? 'thread-pool', 'thread-pool');
    const spec = threadSpec(resolveModule(module));
    this.#scheduler = new Scheduler(spec, {
      threads,
      timeout,
      abortGrace,
      maxStartupFailures,
      resourceLimits: opts.resourceLimits,
      watchdog: this.#watchdog,
      onFail: (failure) => {
        this.#pool[CLOSE_WITH](failure);
        void this.#pool.onIdle().then(() => this.#stop());
      },
      // Jobs measured tiny: each thread holds two batches, which the queue bound does not count.
      onHeld: () => {
        if (!this.#gated && this.#queueSize !== Number.POSITIVE_INFINITY) {
          this.#pool.resize(this.#capacity(this.#threads));
        }
      },
    });
    // Every accepted job goes straight to the scheduler, which is the queue: it can then send
    // several waiting jobs to a thread in one message. So the Pool's slots are what the threads
    // hold plus the queue (see #capacity).
    const unbounded = this.#queueSize === Number.POSITIVE_INFINITY;
    // A start gate (rate, per-key turns) must see each job start on a thread: the waiting jobs
    // then stay in the Pool's queue and only `threads` jobs are with the scheduler at a time
    // (each sent alone: no batching). Otherwise hand-over is not start — a batch, or threads
    // still loading the module, would let jobs handed over at the rate start all at once.
    this.#gated = opts.key != null || opts.rate != null;
    // The Pool is the scheduling core (intake, queue, gates, lifecycle, outcome counts); the
    // threads are its executor, which reads the transfer list, acceptance time and index off
    // each started job. Timeouts are the scheduler's own (they count from a thread's start).
    try {
      this.#pool = this.#corePool(opts, unbounded);
    } catch (error) {
      // A gate option the Pool refuses (`retry`, `rate`, `key`, `perKey`): the threads started
      // above must not outlive the constructor's throw (each a V8 isolate, never terminated).
      void this.#scheduler.stop(toError(error));
      throw error;
    }
    if (this.#gated) {
      // Threads loading the module would start every job handed over meanwhile at once: a
      // gated pool hands over nothing until a thread is ready.
      this.#pool.pause();
      this.#scheduler.ready.then(
        () => this.#pool.resume(),
        () => this.#pool.resume(), // the pool failed: let the jobs through to fail
      );
    }
    if (signal?.aborted) void this.abort(signal.reason);
    else if (signal) this.#unsubscribe = onAbort(signal, (reason) => void this.abort(reason));
  }

  /** The scheduling core over the threads (see the constructor). */
  #corePool(opts: ThreadPoolOptions<J>, unbounded: boolean): Pool<J, R> {
    return new Pool<J, R>(notCalled, {
      concurrency: this.#capacity(this.#threads),
      queueSize: this.#gated || unbounded ? this.#queueSize : 0,
      retry: opts.retry,
      rate: opts.rate,
      key: opts.key,
      perKey: opts.perKey,
      name: opts.name,
      [KIND]: 'thread-pool',
      // undefined (the Pool's own) if read while this Pool is still being built.
      [ANNOUNCED_STATS]: () => (this.#pool as Pool<J, R> | undefined) && this.stats(),
      [EXECUTOR]: threadExecutor<J, R>(this.#scheduler),
    } as PoolOptions<J>);
  }

  /**
   * Constructs a pool and waits until its module has loaded in a thread, so a module that
   * cannot be used fails here rather than at the first job.
   * @throws TypeError/RangeError as the constructor does.
   * @throws WorkerStartupError (rejection) when the module has no function default export or
   *   keeps failing to load; the pool's threads are gone by then.
   * @throws AbortError (rejection) when `opts.signal` aborts before the module has loaded.
   * @example
   * ```ts
   * const pool = await ThreadPool.create<Uint8Array, string>(new URL('./hash.js', import.meta.url));
   * ```
   */
  static async create<J, R>(
    module: string | URL,
    opts?: ThreadPoolOptions<J>,
  ): Promise<ThreadPool<J, R>> {
    const pool = new ThreadPool<J, R>(module, opts);
    try {
      await pool.ready;
    } catch (error) {
      await pool.drain();
      throw error;
    }
    return pool;
  }

  /**
   * {@link create}, with the job and result types read from the module's own type: pass
   * `typeof import('./worker.js')` as the type argument and `J` is the default export's first
   * parameter, `R` its (awaited) return type. Without it, `new ThreadPool(url)` and `create(url)`
   * give `ThreadPool<unknown, unknown>` — TypeScript cannot see through a runtime URL.
   * @throws as {@link create} does.
   * @example
   * ```ts
   * // hash.ts: export default async (buf: Uint8Array) => createHash('sha256').update(buf).digest('hex');
   * await using pool = await ThreadPool.fromModule<typeof import('./hash.js')>(
   *   new URL('./hash.js', import.meta.url),
   * );
   * const digest = await pool.run(new Uint8Array(1024)); // string; the job must be a Uint8Array
   * ```
   */
  static fromModule<M extends ThreadModule>(
    module: string | URL,
    opts?: ThreadPoolOptions<ThreadModuleJob<M>>,
  ): Promise<ThreadPool<ThreadModuleJob<M>, ThreadModuleResult<M>>> {
    return ThreadPool.create<ThreadModuleJob<M>, ThreadModuleResult<M>>(module, opts);
  }

  /**
   * Resolves once a thread has loaded the module; rejects with `WorkerStartupError` when the
   * pool gave up (no function default export, or repeated import failures). Jobs submitted
   * before that simply wait. A pool stopped before any thread loaded the module rejects it too:
   * with the `AbortError` of `abort()` (or of the `signal` option), or `PoolClosedError` after
   * `close()`/`drain()`.
   */
  get ready(): Promise<void> {
    return this.#scheduler.ready;
  }

  /** The current thread count. */
  get threads(): number {
    return this.#threads;
  }

  /**
   * Submits a job, waiting while the queue is full; resolves with the accepted {@link Task}
   * — iff the job was accepted. Misuse rejects, never throws (see the README's rule).
   * @throws PoolClosedError (rejection) after close/drain/abort; `WorkerStartupError` once the
   *   pool failed to start threads; `AbortError` when `opts.signal` aborts while waiting.
   * @throws TypeError (rejection) when `opts.signal` is not an AbortSignal, `transfer` is not
   *   an array, or `opts.timeout` is given (`ERR_INVALID_OPTION`: the timeout is the pool's,
   *   per job; a submission has none), or `transfer` is given for a job that is not an object
   *   (`ERR_INVALID_ARGUMENT`).
   */
  submit(job: J, opts?: ThreadSubmitOptions): Promise<Task<J, R>> {
    try {
      checkTransfer(job, opts);
    } catch (error) {
      return Promise.reject(error);
    }
    // A start-up failure closed the Pool with that error (CLOSE_WITH): no wrapper promise.
    return this.#pool.submit(job, opts);
  }

  /**
   * Submits only if there is room now; never waits.
   * @returns the Task, or `undefined` when the queue is full.
   * @throws PoolClosedError after close/drain/abort (`WorkerStartupError` after a start-up failure).
   * @throws TypeError as {@link submit} rejects with it (a synchronous method throws).
   */
  trySubmit(job: J, opts?: ThreadSubmitOptions): Task<J, R> | undefined {
    checkTransfer(job, opts);
    return this.#pool.trySubmit(job, opts);
  }

  /**
   * Submits and waits for the outcome.
   * @returns the worker's value.
   * @throws the job's error (rejection): the worker's (class name, message and stack kept),
   *   `TimeoutError`, `AbortError`, `WorkerCrashedError`, `WorkerStartupError`, `PoolClosedError`;
   *   misuse as {@link submit} rejects with it (a `{ timeout }` here is refused, not ignored: the
   *   pool's `timeout` applies to every job).
   */
  run(job: J, opts?: ThreadSubmitOptions): Promise<R> {
    try {
      checkTransfer(job, opts);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#pool.run(job, opts);
  }

  /** Stops intake; the threads end once the accepted jobs are done. Idempotent. */
  close(): void {
    this.#pool.close();
    void this.#pool.onIdle().then(() => this.#stop());
  }

  /**
   * Closes the pool, lets queued and running jobs finish, then terminates every thread. With
   * `timeout` (ms), at the deadline whatever is left is canceled and reported.
   * @throws TypeError/RangeError (rejection, never a synchronous throw; `ERR_INVALID_OPTION`)
   *   when `timeout` is not a non-negative number; the pool is then left as it was.
   */
  async drain(opts?: { timeout?: number }): Promise<DrainReport<J>> {
    // The Pool owns the deadline: at it, it cancels what is left (the threads' work through the
    // executor) and reports it.
    const report = await this.#pool.drain(opts);
    await this.#stop();
    return report;
  }

  /**
   * Cancels every job now (`AbortError` with `reason` as cause) and terminates the threads.
   * Idempotent: a later call returns the first call's promise, as `Pool.abort()`.
   */
  abort(reason?: unknown): Promise<DrainReport<J>> {
    if (this.#aborting !== undefined) return this.#aborting;
    // What `ready` rejects with if no thread has loaded the module yet (see #stop).
    this.#abortError = reason instanceof AbortError ? reason : new AbortError(reason);
    // Stored before the Pool cancels anything: a subscriber of the canceled jobs' settlement
    // that calls abort() (user code run inside the Pool's abort) gets this promise too.
    let report!: Promise<DrainReport<J>>;
    this.#aborting = Promise.resolve()
      .then(() => report)
      .then(async (done) => {
        await this.#stop();
        return done;
      });
    report = this.#pool.abort(reason);
    return this.#aborting;
  }
  #aborting: Promise<DrainReport<J>> | undefined;
  #abortError: AbortError | undefined;

  /**
   * Changes the thread count. Up: threads start now — or a surplus thread still finishing its
   * job after an earlier `resize` down stays instead, so no more than `threads` jobs run once
   * the count is back up. Down: surplus threads finish their job and leave; jobs sent to them
   * and not started move to other threads.
   * @throws RangeError/TypeError when `threads` is not an integer from 1 to 1024.
   */
  resize(threads: number): void {
    threadCount(argument('threads'), threads);
    this.#threads = threads;
    this.#pool.resize(this.#capacity(threads));
    this.#scheduler.resize(threads);
  }

  /**
   * Starts nothing new until `resume()`: jobs already handed to a thread go on, submits are
   * still accepted (and wait once the queue is full).
   */
  pause(): void {
    this.#scheduler.paused = true;
  }

  resume(): void {
    this.#scheduler.paused = false;
  }

  /** True between `pause()` and `resume()`. */
  get paused(): boolean {
    return this.#scheduler.paused;
  }

  /** Resolves when nothing is queued or running. */
  onIdle(): Promise<void> {
    return this.#pool.onIdle();
  }

  /**
   * Counters from the pool, timings from the threads: `waitTime` is acceptance to hand-over to
   * a thread, `runTime` hand-over to result, `utilization` the mean busy share of the threads'
   * event loops, `threads` the figures per thread.
   */
  stats(): ThreadPoolStats {
    const counts = this.#pool.stats();
    const { running, stats } = this.#scheduler.timings();
    const threads = this.#scheduler.threadStats();
    const utilization =
      threads.length === 0
        ? 0
        : threads.reduce((sum, t) => sum + t.utilization, 0) / threads.length;
    if (this.#watchdog !== undefined) Object.assign(counts, this.#watchdog.snapshot());
    return {
      ...counts,
      concurrency: this.#threads,
      running,
      queued: counts.queued + this.#scheduler.waiting,
      waitTime: stats.waitTime,
      runTime: stats.runTime,
      utilization,
      threads,
    };
  }

  /** `await using pool = new ThreadPool(…)` drains the pool at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.drain();
  }

  /**
   * Jobs accepted and not settled at most (the Pool's slots): `queueSize` waiting, plus what the
   * threads hold — one job each until jobs are measured (and for jobs of ~1 ms or more), two
   * batches each (up to 2 × 64) for tiny jobs, so that the bounded default batches as deeply as
   * an unbounded queue. A gated pool hands jobs over one per thread (see the constructor).
   */
  #capacity(threads: number): number {
    if (this.#gated) return threads;
    const held = this.#scheduler.held;
    // Capped: a queueSize near Number.MAX_SAFE_INTEGER (allowed) plus the threads' share would
    // otherwise pass the Pool a concurrency it refuses, under the wrong option's name.
    return this.#queueSize === Number.POSITIVE_INFINITY
      ? threads * 2 * MAX_BATCH
      : Math.min(this.#queueSize + threads * held, Number.MAX_SAFE_INTEGER);
  }

  /** Drained, aborted, closed and idle, or failed: the signal no longer reaches the pool. */
  #stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    // A `ready` still pending settles now: no thread will load the module any more.
    this.#stopped ??= this.#scheduler.stop(
      this.#abortError ??
        new PoolClosedError('the ThreadPool was closed before a thread loaded its module'),
    );
    return this.#stopped;
  }
}

/** The Pool's worker function, never called: the executor runs every job. */
function notCalled(): never {
  throw new Error('unreachable: a ThreadPool runs its jobs through its threads');
}

/** The threads as the Pool's executor. */
function threadExecutor<J, R>(scheduler: Scheduler): Executor<J, R> {
  return {
    run: (started) => scheduler.run(started as ExecutorJob<unknown, unknown>),
    cancel: (started, error) => scheduler.cancel(started.index, error),
    cancelAll: (error) => scheduler.cancelAll(error),
  };
}

/**
 * Checks a submission's `signal` and `transfer` before anything is kept (a per-submission
 * `timeout` is refused by the core Pool, which every submission reaches).
 */
function checkTransfer(job: unknown, opts: ThreadSubmitOptions | undefined): void {
  if (opts != null) optionalSignal('signal', opts.signal);
  const transfer = opts?.transfer;
  if (transfer == null) return;
  if (!Array.isArray(transfer)) invalidOption('transfer', transfer, 'an array');
  if (typeof job !== 'object' || job === null) {
    invalidArgument('job', job, 'an object (it has a transfer list)');
  }
}

export type {
  ThreadJobContext,
  ThreadPoolOptions,
  ThreadPoolStats,
  ThreadStats,
  ThreadSubmitOptions,
} from './types.js';

/**
 * A ThreadPool is sized to the cores (CPU-bound work gains nothing from more threads than cores,
 * and run times there measure the CPU, not a downstream): an adaptive limit is refused with a
 * message saying so, rather than the generic "expected a positive integer" (or, as a stray
 * `concurrency`, silently ignored).
 */
function refuseAdaptive(opts: object): void {
  for (const name of ['threads', 'concurrency'] as const) {
    const value = (opts as Record<string, unknown>)[name];
    if (value instanceof AdaptiveConcurrency) {
      invalidOption(
        name,
        value,
        'a positive integer `threads`: a ThreadPool is sized to the cores (adaptive() sizes Pool, runPool, stages and consume())',
      );
    }
  }
}

/**
 * The most threads a ThreadPool starts. Each is a V8 isolate (~10 MB and tens of ms to start,
 * all started at construction), and CPU work gains nothing past the cores: a count far above
 * this is a mistake (a unit slip, a stray flag) that would otherwise stall the process for
 * minutes while it starts them and exhaust its memory.
 */
const MAX_THREADS = 1024;

/** `threads` (an option or resize()'s argument): an integer from 1 to {@link MAX_THREADS}. */
function threadCount(name: Label, value: unknown): number {
  // Checked first, so that 2 ** 53 names this limit, not the safe-integer one.
  if (typeof value === 'number' && Number.isInteger(value) && value > MAX_THREADS) {
    invalidOption(name, value, `a positive integer <= ${MAX_THREADS} (threads to start)`, true);
  }
  return positiveInt(name, value);
}
