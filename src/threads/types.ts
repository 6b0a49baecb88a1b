import type { ResourceLimits } from 'node:worker_threads';
import type { GateOptions } from '../gates/gate-options.js';
import type { JobContext } from '../internal/job-run.js';
import type { WatchdogOptions } from '../observability/watchdog.js';
import type { SubmitOptions } from '../pool.js';
import type { PoolStats } from '../stats.js';
import type { TransferListItem } from './transfer.js';

/**
 * What the worker function receives inside the thread, next to the job.
 *
 * @example
 * ```ts
 * // worker.ts — the module a ThreadPool loads
 * import type { ThreadJobContext } from 'sluice';
 * export default function encode(input: Uint8Array, ctx: ThreadJobContext) {
 *   if (ctx.signal.aborted) throw ctx.signal.reason;
 *   const out = compress(input);
 *   ctx.transfer([out.buffer]); // moves the result instead of copying it
 *   return out;
 * }
 * ```
 */
export interface ThreadJobContext extends JobContext {
  /**
   * Aborted when the job is canceled or times out. The reason is a copy of the pool-side
   * `AbortError`/`TimeoutError`. Only seen by a job that yields to the event loop (an `await`);
   * a job that never yields is stopped by terminating its thread after `abortGrace`.
   */
  readonly signal: AbortSignal;
  /** The job's index in submission order (the pool-side `ctx.index`). */
  readonly index: number;
  /** The thread's slot number, 0..threads-1. */
  readonly workerId: number;
  /**
   * Moves these objects (`ArrayBuffer`s, `MessagePort`s, …) to the pool with the result instead
   * of copying them; they are detached in the thread afterwards.
   */
  transfer(list: readonly TransferListItem[]): void;
}

/**
 * A worker module as `typeof import('./worker.js')` types it: a default export that is the
 * worker function, `(job, ctx: ThreadJobContext) => result` (sync or async).
 */
export interface ThreadModule {
  default: (job: never, ctx: ThreadJobContext) => unknown;
}

/** The job type of a {@link ThreadModule}: its default export's first parameter. */
export type ThreadModuleJob<M extends ThreadModule> = M['default'] extends (
  job: infer J,
  ctx: never,
) => unknown
  ? J
  : never;

/** The result type of a {@link ThreadModule}: what its default export returns, awaited. */
export type ThreadModuleResult<M extends ThreadModule> = Awaited<ReturnType<M['default']>>;

/** Options of {@link ThreadPool}. */
export interface ThreadPoolOptions<J = unknown> extends GateOptions<J> {
  /**
   * Names it in its `diagnostics_channel` events (README "Events"): a non-empty string.
   * Default `'thread-pool'`.
   */
  name?: string;
  /**
   * Threads to run, an integer from 1 to 1024 (each is a V8 isolate started at construction;
   * more is refused as a mistake). Default `os.availableParallelism()`.
   */
  threads?: number;
  /**
   * Accepted jobs waiting for a thread, beyond those the threads hold. Default `2 * threads`;
   * `Infinity` unbounds it (and removes backpressure). A thread holds one job until jobs are
   * measured, and for jobs of ~1 ms or more; for tiny jobs it holds two batches (`2 × batch`,
   * the batch sized to ~1 ms of measured work, at most 64), so that the default queue batches
   * as deeply as a long one. At most `queueSize + threads × 128` jobs are accepted and
   * unsettled at once.
   */
  queueSize?: number;
  /**
   * Per-job limit in ms of the job's own run time, counted from the moment its thread starts it
   * (not from when it was handed over: a job batched behind others is not timed while it
   * waits). A job still unstarted `timeout` ms after hand-over is taken back and waits for a
   * thread again (one with a `transfer` list waits where it is: its objects are there). On expiry the job settles as `TimeoutError` and its thread-side signal aborts;
   * see `abortGrace`. Default: none.
   */
  timeout?: number;
  /**
   * V8 heap limits of each thread; a thread that exceeds them dies (`WorkerCrashedError` for
   * the job it was running). Such a death gives no notice: jobs of the same batch that had
   * finished but whose results were still in the thread (at most its current batch: up to 64
   * tiny jobs, ~1 ms of work) fail too, with a `WorkerCrashedError` saying the job finished and
   * its outcome is lost. They ran once and are never run again. Jobs not started run elsewhere.
   */
  resourceLimits?: ResourceLimits;
  /**
   * Opt-in stuck-job watchdog, as on `Pool` (README "Watchdog"). A job's age counts from its
   * hand-over to a thread (as `runTime`); a zombie is a canceled or timed-out job still running
   * in its thread, until it returns or `abortGrace` terminates the thread.
   */
  watchdog?: WatchdogOptions;
  /**
   * Aborting it aborts the pool, like {@link ThreadPool.abort}. The pool stops listening once
   * it is drained, aborted, or closed and idle.
   */
  signal?: AbortSignal;
  /**
   * How long (ms) a canceled or timed-out job may keep running in its thread before the thread is
   * terminated and replaced. The job itself settles at once. Each canceled job has its own
   * deadline, and it only ever ends that job: a job that started after it is never hit — but
   * jobs of its batch that finished before it and whose results were still in the thread fail
   * with a `WorkerCrashedError` saying so (they ran once; see `resourceLimits`).
   * Default 500.
   */
  abortGrace?: number;
  /**
   * Consecutive thread start-up failures (the module throws on import) after which the pool
   * gives up with one `WorkerStartupError`. Restarts back off 50 ms, 100 ms, 200 ms, … Default 3.
   */
  maxStartupFailures?: number;
}

/** Options of one ThreadPool submission. */
export interface ThreadSubmitOptions extends SubmitOptions {
  /**
   * Objects inside the job to move to the thread instead of copying (`ArrayBuffer`s,
   * `MessagePort`s, …). They are detached on this side once the job is sent. The job must be an
   * object (the list is kept with it until it is sent).
   */
  transfer?: readonly TransferListItem[];
}

/** Per-thread figures in {@link ThreadPoolStats}. */
export interface ThreadStats {
  /** The thread's slot number. */
  id: number;
  /** Busy share of the thread's event loop since it started (0..1). */
  utilization: number;
  /**
   * Jobs this slot's threads have finished (any outcome reported by the thread), counted across
   * the threads that replaced each other in the slot.
   */
  completed: number;
}

/**
 * {@link PoolStats} of a ThreadPool: `concurrency` is the thread count, `running` the jobs
 * occupying threads (a surplus thread finishing its last job after `resize` down included),
 * `queued` every accepted job not yet started; plus per-thread figures.
 *
 * A canceled or timed-out job settles at once (it counts in `canceled`/`timedOut`), but its
 * thread stays busy until the worker function returns or `abortGrace` terminates the thread;
 * until then it still counts in `running`, because no other job can use that thread.
 */
export interface ThreadPoolStats extends PoolStats {
  threads: ThreadStats[];
}
