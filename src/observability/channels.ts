/**
 * The `node:diagnostics_channel` channels every sluice pool publishes its lifecycle on, and the
 * shapes of their messages. Zero dependencies: subscribe with Node's own `diagnostics_channel`.
 *
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import type { LimitReason } from '../gates/adaptive/algorithm.js';
import type { Outcome } from '../stats.js';

/** Which kind of sluice object published an event. */
export type PoolKind = 'pool' | 'thread-pool' | 'run-pool' | 'stage' | 'consume';

/** What every message carries: the publishing pool's `name` option and its kind. */
export interface PoolEventBase {
  /** The pool's `name` option (a stage's name; defaults to the kind, e.g. `'pool'`). */
  readonly name: string;
  readonly kind: PoolKind;
}

/** What every job message carries besides its pool. */
export interface JobEventBase<J = unknown> extends PoolEventBase {
  /** The job's index in its pool (acceptance order from 0, as in its `Result`). */
  readonly index: number;
  /** The job itself (for a stage: the value the stage received; for consume(): its work item). */
  readonly job: J;
}

/**
 * On {@link SLUICE_JOB_ACCEPTED}: a job entered its pool (submitted, or pulled from a source).
 * Every job event is published for the jobs accepted while some sluice job channel has a
 * subscriber: a job accepted before anyone listened publishes nothing later.
 */
export type JobAcceptedMessage<J = unknown> = JobEventBase<J>;

/**
 * The context object of one attempt on the {@link SLUICE_JOB} tracing channel: the same object
 * goes to its `start`, `end`, then (`error`,) `asyncStart` and `asyncEnd` subscribers, so a
 * subscriber may keep its own state (a span) on it.
 */
export interface JobTraceContext<J = unknown> extends JobEventBase<J> {
  /** The attempt, from 1. */
  readonly attempt: number;
  /**
   * ms from acceptance to this attempt's start: for a retry (`attempt` > 1) that includes the
   * earlier attempts and their backoff. Metrics of queue wait use the first attempt's only.
   */
  readonly waitMs: number | undefined;
  /** Set before `error`: the attempt's error (a timeout is a `TimeoutError`, a cancel an `AbortError`). */
  error?: Error;
  /** Set before `asyncStart`: ms the attempt ran. */
  durationMs?: number;
}

/** On {@link SLUICE_JOB_RETRIED}: an attempt failed and the job runs again after `delayMs`. */
export interface JobRetriedMessage<J = unknown> extends JobEventBase<J> {
  /** The attempt that failed, from 1. */
  readonly attempt: number;
  readonly error: Error;
  /** ms before the next attempt is queued. */
  readonly delayMs: number;
}

/** On {@link SLUICE_JOB_SETTLED}: the job's final outcome (once per job). */
export interface JobSettledMessage<J = unknown> extends JobEventBase<J> {
  /** `'succeeded'`, `'failed'`, `'timedOut'`, `'canceled'` or `'crashed'` (as in `stats()`). */
  readonly outcome: Outcome;
  /** undefined iff `outcome` is `'succeeded'`. */
  readonly error: Error | undefined;
  /** Attempts started: 0 for a job canceled or failed before it ran; undefined when nobody
   * listened at acceptance. */
  readonly attempts: number | undefined;
  /** ms from acceptance to settlement (undefined when nobody listened at acceptance). */
  readonly totalMs: number | undefined;
}

/** A pool's lifecycle state. */
export type PoolState = 'open' | 'closing' | 'drained' | 'aborted';

/** On {@link SLUICE_POOL_STATE}: a pool moved from `previous` to `state`. */
export interface PoolStateMessage extends PoolEventBase {
  readonly state: PoolState;
  readonly previous: PoolState;
}

/**
 * On {@link SLUICE_POOL_LIMIT}: a pool's adaptive `concurrency` limit moved from `previous` to
 * `limit` (once per move, as recorded in `stats().limit.history`).
 */
export interface PoolLimitMessage extends PoolEventBase {
  /** The limit before the move. */
  readonly previous: number;
  /** The new limit: an integer in [min, max]. */
  readonly limit: number;
  /** `probe` (growing), `latency` (run times rose), `drop` (overload failure), `manual` (resize). */
  readonly reason: LimitReason;
  readonly min: number;
  readonly max: number;
  /** The limit's clock (ms, `performance.now()` unless its `now` option says otherwise). */
  readonly at: number;
}

/**
 * Tracing channel name (`diagnostics_channel.tracingChannel(SLUICE_JOB)`): one traced call per
 * job attempt, context {@link JobTraceContext}. Events: `tracing:sluice:job:start` as the
 * attempt starts on a slot, published through `start.runStores` around the worker call (so a
 * store bound with `start.bindStore` is active in the worker and everything it awaits, in the
 * async context the job was accepted in), `…:end` once the worker's synchronous part returned,
 * then on its outcome `…:error` (failed attempts only), `…:asyncStart` and `…:asyncEnd`. Jobs
 * that never start (canceled while queued) have no trace events, only {@link SLUICE_JOB_SETTLED}.
 */
export const SLUICE_JOB = 'sluice:job';
/** Channel name: every accepted job, message {@link JobAcceptedMessage}. */
export const SLUICE_JOB_ACCEPTED = 'sluice:job:accepted';
/** Channel name: every attempt that failed and will be retried, message {@link JobRetriedMessage}. */
export const SLUICE_JOB_RETRIED = 'sluice:job:retried';
/** Channel name: every job's final outcome, message {@link JobSettledMessage}. */
export const SLUICE_JOB_SETTLED = 'sluice:job:settled';
/**
 * Channel name: state changes, {@link PoolStateMessage}. Pool, ThreadPool, consume(): open →
 * closing (close/drain/abort) → drained, or → aborted. runPool and stages: open → drained when
 * their iteration ends, or → aborted (signal, pipeline abort, `break`); closing when a drain
 * stops their pulling first.
 */
export const SLUICE_POOL_STATE = 'sluice:pool:state';
/**
 * Channel name: every move of an adaptive `concurrency` limit (Pool, runPool, stages, consume()),
 * message {@link PoolLimitMessage}. Pools with a fixed `concurrency` publish nothing here.
 */
export const SLUICE_POOL_LIMIT = 'sluice:pool:limit';

/**
 * What sluice uses of the `sluice:job` tracing channel. Typed here rather than as Node's
 * `TracingChannel`, whose type parameters swapped places in @types/node 26: a declaration
 * naming them fails a user's type check (`skipLibCheck: false`) on one version or the other.
 */
interface JobTraceChannel {
  readonly hasSubscribers: boolean;
  readonly start: JobTraceEvent & {
    runStores<A extends unknown[], R>(
      ctx: JobTraceContext,
      fn: (...args: A) => R,
      thisArg: unknown,
      ...args: A
    ): R;
  };
  readonly end: JobTraceEvent;
  readonly asyncStart: JobTraceEvent;
  readonly asyncEnd: JobTraceEvent;
  readonly error: JobTraceEvent;
}

/** One of the tracing channel's five channels, as sluice uses it. */
interface JobTraceEvent {
  readonly hasSubscribers: boolean;
  publish(ctx: JobTraceContext): void;
}

/** The channel objects (Node keeps one per name, so subscribers elsewhere see the same). */
export const jobTrace: JobTraceChannel = diagnostics.tracingChannel(SLUICE_JOB);
export const acceptedChannel = diagnostics.channel(SLUICE_JOB_ACCEPTED);
export const retriedChannel = diagnostics.channel(SLUICE_JOB_RETRIED);
export const settledChannel = diagnostics.channel(SLUICE_JOB_SETTLED);
export const poolStateChannel = diagnostics.channel(SLUICE_POOL_STATE);
export const poolLimitChannel = diagnostics.channel(SLUICE_POOL_LIMIT);

/** Publishes a pool state change, building the message only when someone listens. */
export function publishPoolState(
  name: string,
  kind: PoolKind,
  previous: PoolState,
  state: PoolState,
): void {
  if (!poolStateChannel.hasSubscribers || previous === state) return;
  poolStateChannel.publish({ name, kind, state, previous } satisfies PoolStateMessage);
}
