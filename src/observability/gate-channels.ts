/**
 * The channels beside the job lifecycle: a pool's rate gate holding its queue back, and a pool
 * announcing itself with a snapshot reader (what `sluice/prometheus` reads its gauges from).
 *
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import type { ConsumerStats } from '../brokers/consumer-types.js';
import type { PoolStats } from '../stats.js';
import type { PoolEventBase, PoolKind, PoolState } from './channels.js';

/** Which gate held the queue: the pool's `rate`, or a key's `perKey.rate`. */
export type RateGateKind = 'rate' | 'key';

/**
 * On {@link SLUICE_JOB_RATE_LIMITED}: a pool with queued jobs and a free slot starts waiting on
 * a rate — once per wait, not per job (one wait holds back the whole queue behind it).
 */
export interface JobRateLimitedMessage extends PoolEventBase {
  /** `'rate'`: the pool's `rate` option; `'key'`: the soonest key's `perKey.rate`. */
  readonly gate: RateGateKind;
  /** The key whose rate is waited for (`gate: 'key'` only). */
  readonly key: string | undefined;
  /** ms until the next start is allowed; undefined while an async `RateLimiter.reserve()` answers. */
  readonly waitMs: number | undefined;
}

/** What a pool's snapshot reader answers: its lifecycle state and its `stats()`. */
export interface PoolSnapshot {
  readonly state: PoolState;
  readonly stats: PoolStats;
  /** consume() only: its own counters (held messages, outcomes). */
  readonly consumer?: ConsumerStats;
}

/**
 * On {@link SLUICE_POOL_CREATED}: a Pool, ThreadPool, pipeline stage or consumer was created
 * (runPool has no snapshot and does not announce itself). `snapshot` reads it at any later time;
 * holding it keeps the pool alive, so keep it in a `WeakRef` (the function lives as long as its
 * pool) and drop it once `state` is `'drained'` or `'aborted'`.
 */
export interface PoolCreatedMessage extends PoolEventBase {
  readonly snapshot: () => PoolSnapshot;
}

/**
 * The option key under which a wrapper (ThreadPool) gives its Pool the `stats()` its
 * announcement should read instead of the Pool's own. Internal.
 */
export const ANNOUNCED_STATS: unique symbol = Symbol('sluice.announcedStats');

/** Channel name: a rate gate starts holding a pool's queue back, message {@link JobRateLimitedMessage}. */
export const SLUICE_JOB_RATE_LIMITED = 'sluice:job:rate-limited';
/** Channel name: a pool was created, message {@link PoolCreatedMessage}. */
export const SLUICE_POOL_CREATED = 'sluice:pool:created';

export const rateLimitedChannel = diagnostics.channel(SLUICE_JOB_RATE_LIMITED);
export const poolCreatedChannel = diagnostics.channel(SLUICE_POOL_CREATED);

/** Publishes a rate wait, building the message only when someone listens. */
export function publishRateLimited(
  name: string,
  kind: PoolKind,
  gate: RateGateKind,
  key: string | undefined,
  waitMs: number | undefined,
): void {
  if (!rateLimitedChannel.hasSubscribers) return;
  rateLimitedChannel.publish({ name, kind, gate, key, waitMs } satisfies JobRateLimitedMessage);
}

/**
 * Announces a pool when someone listens. The caller keeps the returned reader (or nothing) in a
 * field, so the reader lives exactly as long as its pool: a subscriber's `WeakRef` to it then
 * tells when the pool is gone.
 */
export function announcePool(
  name: string,
  kind: PoolKind,
  read: () => PoolSnapshot,
): (() => PoolSnapshot) | undefined {
  if (!poolCreatedChannel.hasSubscribers) return undefined;
  poolCreatedChannel.publish({ name, kind, snapshot: read } satisfies PoolCreatedMessage);
  return read;
}
