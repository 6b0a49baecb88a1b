/**
 * The public types of `consume()`: handler, options, counters, report and the consumer handle.
 *
 * @module
 */

import type { AdaptiveConcurrency, LimitStats } from '../gates/adaptive.js';
import type { PerKeyOptions } from '../gates/gate-options.js';
import type { RateLimiter } from '../gates/rate-limiter.js';
import type { RateLimit } from '../gates/sliding-window.js';
import type { StuckJob, WatchdogOptions, ZombieJob } from '../observability/watchdog.js';
import type { BackoffFunction, BackoffOptions, Decoder } from './consumer-options.js';
import type { BrokerMessage } from './source.js';

/** What a handler receives besides the decoded payload. */
export interface HandlerContext<M extends BrokerMessage = BrokerMessage> {
  /**
   * Aborted on handler timeout, on the drain deadline, on `abort()` and when the lease is lost
   * (a heartbeat found another consumer holds it: `signal.reason` is a `LeaseLostError`,
   * `ERR_LEASE_LOST`).
   */
  readonly signal: AbortSignal;
  /** The raw message: id, body bytes, delivery count (1 = first delivery). */
  readonly message: M;
}

/** Handles one decoded message; a throw or rejection means "failed, retry (or dead-letter)". */
export type MessageHandler<T, M extends BrokerMessage = BrokerMessage> = (
  payload: T,
  ctx: HandlerContext<M>,
) => unknown;

/** One message of a batch (see {@link BatchHandler}): its payload and its own context. */
export interface BatchItem<T, M extends BrokerMessage = BrokerMessage> extends HandlerContext<M> {
  /** The decoded payload. */
  readonly payload: T;
  /**
   * Aborted with the batch's signal, and on its own when a heartbeat finds this message's lease
   * taken by another consumer (`signal.reason` a `LeaseLostError`; its outcome is then dropped:
   * neither acked nor retried).
   */
  readonly signal: AbortSignal;
}

/** What a batch handler receives besides the items. */
export interface BatchContext {
  /** Aborted on handler timeout, on the drain deadline and on `abort()`. */
  readonly signal: AbortSignal;
}

/**
 * Per-message outcomes of a batch: `true` = succeeded (acked), an `Error` = failed (retried, or
 * dead-lettered on its last delivery; a `MalformedMessageError` is dead-lettered at once).
 * Keys are the items the handler received. An item the map does not mention has **no outcome
 * and counts as failed** (retried): a message is acked only when its success was stated.
 */
export type BatchOutcomes<T, M extends BrokerMessage = BrokerMessage> = ReadonlyMap<
  BatchItem<T, M>,
  true | Error
>;

/**
 * Handles up to `batch.size` messages in one call. Returning nothing (`undefined`) = every
 * message succeeded; returning a {@link BatchOutcomes} map = each message as stated (unlisted:
 * failed); throwing or rejecting = every message failed with that error.
 */
export type BatchHandler<T, M extends BrokerMessage = BrokerMessage> = (
  items: readonly BatchItem<T, M>[],
  ctx: BatchContext,
) => void | BatchOutcomes<T, M> | Promise<void | BatchOutcomes<T, M>>;

/**
 * Batch mode of `consume()`. A batch is handed to the handler once it holds `size` messages, or
 * `maxWait` ms after its first message arrived, whichever comes first. `concurrency` still
 * counts messages (held <= concurrency), so batches running at once are at most
 * `concurrency` (usually `concurrency / size`).
 */
export interface BatchOptions {
  /** Most messages per handler call; an integer from 1 to `concurrency`. */
  size: number;
  /**
   * Longest wait (ms) for a batch to fill after its first message arrived; 0 = hand over what one
   * fetch returned. Messages waiting for their batch are not heartbeated yet: keep it well
   * below the source's `lease`. @default 0
   */
  maxWait?: number;
}

/** Which broker operation an `onError` report is about. */
export type ConsumerOperation =
  | 'fetch'
  | 'ack'
  | 'retry'
  | 'deadLetter'
  | 'release'
  | 'heartbeat'
  | 'close';

/** Options of `consume()`. */
export interface ConsumeOptions<T, M extends BrokerMessage = BrokerMessage> {
  /**
   * Names it in its `diagnostics_channel` events (README "Events"): a non-empty string.
   * Default `'consume'`.
   */
  name?: string;
  /**
   * Opt-in stuck-handler watchdog, as on `Pool` (README "Watchdog"): handler calls running past
   * `stuckAfter`, and timed-out or canceled ones still running `zombieAfter` later, on
   * `sluice:job:stuck` / `sluice:job:zombie` (the job is the consumer's work item) and in
   * `stats().stuck` / `stats().zombies`.
   */
  watchdog?: WatchdogOptions;
  /**
   * Messages held at once (fetched and not yet settled, running or waiting for their batch):
   * the handlers running at once, and the most messages fetched ahead. Over several sources,
   * one cap shared by all. Required, integer >= 1.
   *
   * Or an {@link adaptive} limit, moved by the handlers' run times and overload failures (a
   * handler throwing an error with `status` 429/503, or a `timeout`): the cap is then the limit
   * now. When it drops, messages already held are not handed back — they finish, and nothing is
   * fetched until held falls below the new limit (held <= the limit + what was held when it
   * dropped, <= `max`). Not with `batch` (ERR_INVALID_OPTION). RabbitMQ: the broker's prefetch
   * is fixed by the first fetch (the `initial` limit), so the limit only acts below it; give
   * `initial: max` to let it move through its whole range (the broker then pushes up to `max`
   * messages into the source's buffer, not counted as held).
   */
  concurrency: number | AdaptiveConcurrency;
  /**
   * Hand the handler batches of messages instead of one at a time (the handler is then a
   * {@link BatchHandler}). Absent: one message per call.
   */
  batch?: BatchOptions;
  /** Deliveries before a failing message is dead-lettered (1 = never retried). @default 5 */
  maxDeliveries?: number;
  /** Delay before a failed message is delivered again, as a pool's `retry.backoff`. @default { initial: 1000, max: 30000, factor: 2, jitter: 0.5 } */
  backoff?: BackoffOptions | BackoffFunction;
  /** Body → payload; throw `MalformedMessageError` to dead-letter at once. @default jsonDecode */
  decode?: Decoder<T>;
  /** Bodies larger than this (bytes) are malformed and dead-lettered. @default 1 MiB */
  maxBodySize?: number;
  /**
   * Per-handler-call timeout in ms (a batch's call as a whole), a positive number up to 2147483647 (a timed-out handler counts
   * as a failure).
   * `undefined` or `null`: none. @default none
   */
  timeout?: number;
  /**
   * The gates' `retry` shape, as on every pool kind: `attempts` is `maxDeliveries`, `backoff` the
   * delay before the broker delivers the message again, and `retryIf(error, attempt)` returning
   * false dead-letters the message at once. The broker's redelivery stays the retry mechanism
   * (nothing is retried in-process: a crash loses no retry). Give either `retry` or
   * `maxDeliveries`/`backoff`, not both.
   */
  retry?: {
    attempts: number;
    backoff?: BackoffOptions | BackoffFunction;
    retryIf?: (error: Error, attempt: number) => boolean;
  };
  /**
   * At most `limit` handler starts in any `interval` ms window (or any `RateLimiter`, e.g.
   * `redisRateLimiter()` shared by every consumer process); see the README's gates. With
   * `batch`, it counts batch starts (a batch of 100 is one start).
   */
  rate?: RateLimit | RateLimiter;
  /**
   * The message's key (a tenant, …): held messages start in round-robin among keys, each within
   * `perKey` (default `{ concurrency: 1 }`). Fairness reaches as far as the held messages
   * (`concurrency`): a key that fills them all runs at its own limit. A throwing key function
   * fails that delivery (retried, then dead-lettered). Refused with `batch` (ERR_INVALID_OPTION).
   */
  key?: (payload: T, message: M) => string;
  /** Limits per key (needs `key`; refused with `batch`). */
  perKey?: PerKeyOptions;
  /**
   * Higher starts first among held messages; FIFO within one priority. A throwing priority
   * function fails that delivery (retried). Refused with `batch` (ERR_INVALID_OPTION).
   */
  priority?: (payload: T, message: M) => number;
  /** Aborting it starts `drain({ timeout: drainTimeout })`. */
  signal?: AbortSignal;
  /**
   * Drain deadline (ms, 0..2147483647) used when `signal` aborts; 0 cancels running handlers
   * right away. @default 30000
   */
  drainTimeout?: number;
  /**
   * Called for every failed broker operation (the consumer keeps going: a failed fetch is retried
   * with a growing pause, an unacked message is redelivered by the broker).
   * @default writes one line to stderr
   */
  onError?: (error: Error, operation: ConsumerOperation, message?: M) => void;
}

/** Counters since the consumer started. */
export interface ConsumerStats {
  /** With the `watchdog` option: handler calls running past `stuckAfter` now. */
  stuck?: StuckJob[];
  /** With the `watchdog` option: zombies (see `Pool`'s `stats().zombies`). */
  zombies?: ZombieJob[];
  /**
   * Messages fetched and not yet settled with the broker (prefetched + running + settling); an
   * ordered ack (see `acking`) counts as settled once issued.
   */
  held: number;
  /** The highest `held` seen. Never above `concurrency` (adaptive: the highest limit, <= `max`). */
  peakHeld: number;
  /** With an adaptive `concurrency` only: the limit now, its [min, max] and its last moves. */
  limit?: LimitStats;
  /**
   * Acks already issued whose slot was freed at once (sources with `orderedAcks`: the ack
   * reaches the broker before the next fetch), not yet confirmed. Not counted in `held`.
   */
  acking: number;
  /** Handler calls running now (in batch mode, batches). */
  running: number;
  /** Handler calls made for batches (0 without `batch`). */
  batches: number;
  fetched: number;
  acked: number;
  /** Failed deliveries handed back to the broker for a later retry. */
  retried: number;
  /** Messages moved to the dead letter (failed `maxDeliveries` times, or malformed). */
  deadLettered: number;
  /** Of `deadLettered`, those that were malformed. */
  malformed: number;
  /** Fetched but never started: handed back at drain. */
  released: number;
  /** Running when the drain deadline (or `abort()`) hit: canceled and handed back. */
  canceled: number;
  /**
   * Messages this consumer stopped settling because the broker said another consumer owns them
   * now: a heartbeat reported the loss (neither acked nor retried), or the broker refused the
   * ack/retry/dead-letter itself (`LeaseLostError`, also reported to `onError`).
   */
  leaseLost: number;
  /**
   * Messages whose handler finished but whose ack, retry or dead letter the broker did not
   * confirm: the settle failed (`ERR_SETTLE_TIMEOUT` in an outage, `ERR_LEASE_LOST`, a dropped
   * connection …; each also reported to `onError`). The outcome is lost, not the message: it
   * stays with the broker and is delivered again (at-least-once), so its handler may run again.
   * A lease a heartbeat found lost is not counted here (its handler was aborted and nothing was
   * settled: see `leaseLost`).
   */
  unsettled: number;
  /** Failed broker operations (see `onError`). */
  errors: number;
}

/**
 * What `drain()`, `close()` and `abort()` resolve with: counts from the call to the end (the
 * totals since the start are in `stats`).
 */
export interface ConsumerReport {
  /**
   * Messages settled with the broker — acked, retried or dead-lettered, as confirmed by it —
   * between the call and the end: those whose handlers were still running at the call, or whose
   * settle was still in flight (a handler that finished just before it). Counted per message
   * (a batch of 10 counts 10). Messages settled before the call are not counted: a consumer
   * that had finished everything reports 0 (see `stats.acked` …). Lost leases are not counted.
   */
  completed: number;
  /** Messages fetched but never started, handed back to the broker. */
  released: number;
  /** Handlers canceled at the deadline (or by `abort()`), handed back to the broker. */
  canceled: number;
  /**
   * Messages whose handler finished but whose settle (ack, retry, dead letter) the broker did
   * not confirm between the call and the end — e.g. `ERR_SETTLE_TIMEOUT` while the broker is
   * down, or `ERR_LEASE_LOST`. They stay with the broker and are delivered again (at-least-once):
   * the stop was not clean, and `shutdownOn` exits non-zero for it as for `canceled`.
   */
  unsettled: number;
  /** Final counters. */
  stats: ConsumerStats;
}

/** A running consumer. */
export interface Consumer {
  /**
   * Stops fetching, finishes running handlers (acks them), releases unstarted messages; at
   * `timeout` (ms) cancels the rest. Every later `drain()`, `close()` or `abort()` returns the
   * first one's promise (one shutdown, one report); a later `timeout` still applies, the earliest
   * deadline winning, as a Pool's.
   */
  drain(opts?: { timeout?: number }): Promise<ConsumerReport>;
  /** `drain()` without a deadline. Returns promptly when the queue is empty (the fetch is interrupted). */
  close(): Promise<ConsumerReport>;
  /**
   * Cancels running handlers now; their messages go back to the broker. During a `drain()` it
   * cancels what is left and returns the drain's promise.
   */
  abort(reason?: unknown): Promise<ConsumerReport>;
  stats(): ConsumerStats;
  /** Settles once the consumer has stopped and the source is closed (never rejects). */
  readonly done: Promise<ConsumerReport>;
  /** True once a shutdown started. */
  readonly closed: boolean;
  [Symbol.asyncDispose](): Promise<void>;
}
