/**
 * The executor seam: what runs a job once the scheduling core (Pool's intake, queue, gates and
 * lifecycle) starts it. In-process pools call the worker function directly (`JobRun.start`);
 * ThreadPool plugs in an executor that hands the job to its threads. Internal.
 *
 * @module
 */
import type { TransferListItem } from '../threads/transfer.js';

/** A started job as an executor sees it: everything it needs is on the job itself. */
export interface ExecutorJob<J, R = unknown> {
  readonly job: J;
  /** The job's index in submission order: unique in its pool. */
  readonly index: number;
  /** performance.now() at acceptance (for wait-time figures measured by the executor). */
  readonly queuedAt: number | undefined;
  /** Objects to move rather than copy (ThreadPool's `transfer` submit option). */
  readonly transfer: readonly TransferListItem[] | undefined;
  /** Which run of the job this is, from 1 (the `retry` gate). */
  readonly attempt: number;
  /** The submission's priority (higher first); 0 unless given. */
  readonly priority: number;
  /**
   * Reports the attempt's outcome (`error` undefined = success). Call it once, never from
   * inside {@link Executor.run} (an outcome known at once is reported on a microtask); calls
   * after the core ended the job are ignored.
   */
  complete(error: Error | undefined, value: R | undefined): void;
}

/** Runs started jobs; the core keeps everything else. */
export interface Executor<J, R> {
  /**
   * Runs one attempt, reported through `job.complete` — a callback, not a promise: with
   * thousands of tiny jobs a second, a promise and its reactions per job are a measurable
   * share of the main thread.
   */
  run(job: ExecutorJob<J, R>): void;
  /**
   * The core ended a job it had handed over (its signal, `abort()`, a drain deadline): stop its
   * work. The job has already settled; what the executor reports for it later is discarded.
   */
  cancel(job: ExecutorJob<J, R>, error: Error): void;
  /** The core is canceling every job at once (abort, drain deadline): one call instead of many. */
  cancelAll(error: Error): void;
}

/** The option key under which a Pool takes its executor (not a public option). */
export const EXECUTOR: unique symbol = Symbol('sluice.executor');

/** The key of Pool's internal "settle every queued job" method (used by consume()'s drain). */
export const RELEASE_QUEUED: unique symbol = Symbol('sluice.releaseQueued');

/**
 * The key of Pool's internal "close, and refuse submits with this error" method: ThreadPool
 * closes with its start-up failure, so waiting and later submits reject with that error itself.
 */
export const CLOSE_WITH: unique symbol = Symbol('sluice.closeWith');
