/**
 * Error classes with a stable string `code`. Match on `code` (or `instanceof`) — never on message
 * text. Each class carries a `Symbol.for` brand behind `Symbol.hasInstance`, so `instanceof` works
 * even when two copies of sluice are installed (the approach undici takes).
 *
 * @module
 */

import { formatValue } from './internal/format-value.js';

const BRAND = Symbol.for('sluice.error');

/** Every error code sluice throws or reports. */
export type SluiceErrorCode =
  | 'ERR_CHANNEL_CLOSED'
  | 'ERR_POOL_CLOSED'
  | 'ERR_QUEUE_FULL'
  | 'ERR_TIMEOUT'
  | 'ERR_WORKER_CRASHED'
  | 'ERR_ABORTED'
  | 'ERR_WORKER_STARTUP'
  | 'ERR_JOB_FAILED'
  | 'ERR_MESSAGE_MALFORMED'
  | 'ERR_LEASE_LOST'
  | 'ERR_CONNECT_TIMEOUT'
  | 'ERR_NOT_CONNECTED'
  | 'ERR_CONNECT_CONFIG'
  | 'ERR_UNROUTABLE'
  | 'ERR_SELF_DEADLOCK'
  | 'ERR_RATE_LIMITER'
  | 'ERR_SETTLE_TIMEOUT'
  | 'ERR_PUBLISH_TIMEOUT'
  | 'ERR_DELIVERY_LIMIT';

/**
 * Base class of every sluice error.
 *
 * @example
 * ```ts
 * try { await pool.run(job) } catch (e) { if (e instanceof SluiceError) console.log(e.code) }
 * ```
 */
export class SluiceError extends Error {
  /** Stable machine-readable code, e.g. `'ERR_TIMEOUT'`. */
  readonly code: SluiceErrorCode;

  constructor(code: SluiceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  get [BRAND](): string {
    return this.name;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false;
    try {
      // biome-ignore lint/complexity/noThisInStatic: `this` is the class on the right of instanceof.
      return isBranded(this, value);
    } catch {
      // A value whose inspection throws (a revoked Proxy, a throwing getter) is no sluice error;
      // `instanceof` must not throw where sluice classifies thrown values and abort reasons.
      return false;
    }
  }
}

/** `instanceof cls` by brand and class name (see {@link SluiceError}); may throw on hostile values. */
function isBranded(cls: { name: string }, value: object): boolean {
  const brand = (value as { [BRAND]?: unknown })[BRAND];
  if (typeof brand !== 'string') return false;
  // `cls` is the class `instanceof` was asked about: the base matches every sluice error,
  // a subclass matches its own name (and anything that names it in its prototype chain).
  if (cls === SluiceError) return true;
  let proto: unknown = Object.getPrototypeOf(value);
  while (proto !== null && proto !== Object.prototype) {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name;
    if (name === cls.name) return true;
    proto = Object.getPrototypeOf(proto);
  }
  return false;
}

/**
 * A send on a closed channel, or a send that was waiting when the channel closed
 * (Go panics here; sluice rejects the promise instead).
 *
 * @example
 * ```ts
 * ch.close(); await ch.send(1).catch((e) => e.code); // 'ERR_CHANNEL_CLOSED'
 * ```
 */
export class ChannelClosedError extends SluiceError {
  constructor(message = 'send on closed channel') {
    super('ERR_CHANNEL_CLOSED', message);
  }
}

/**
 * `submit`/`run` after `close()`, `drain()` or `abort()`.
 *
 * @example
 * ```ts
 * pool.close(); await pool.submit(1).catch((e) => e.code); // 'ERR_POOL_CLOSED'
 * ```
 */
export class PoolClosedError extends SluiceError {
  constructor(message = 'pool is closed: it accepts no new jobs') {
    super('ERR_POOL_CLOSED', message);
  }
}

/**
 * `trySubmit` variants that must report a full queue as an error (e.g. a pipeline stage fed
 * without waiting). `trySubmit` itself returns `undefined` instead.
 *
 * @example
 * ```ts
 * if (!pool.trySubmit(job)) throw new QueueFullError(pool.stats().queued);
 * ```
 */
export class QueueFullError extends SluiceError {
  constructor(queueSize: number) {
    super('ERR_QUEUE_FULL', `queue is full (queueSize ${queueSize})`);
  }
}

/**
 * A job ran longer than its `timeout` (ms, measured from the job's start, not its submission).
 *
 * @example
 * ```ts
 * if (!result.ok && result.error instanceof TimeoutError) console.log(result.error.timeout);
 * ```
 */
export class TimeoutError extends SluiceError {
  /** The timeout that expired, in ms. */
  readonly timeout: number;

  constructor(timeout: number) {
    super('ERR_TIMEOUT', `job timed out after ${timeout} ms`);
    this.timeout = timeout;
  }
}

/**
 * The worker thread (or process) running a job died before the job settled.
 *
 * @example
 * ```ts
 * if (!r.ok && r.error instanceof WorkerCrashedError) console.log(r.error.exitCode);
 * ```
 */
export class WorkerCrashedError extends SluiceError {
  /**
   * The thread's exit code (e.g. `1` after an uncaught exception, the code given to
   * `process.exit`), or `undefined` when the thread ended without one.
   */
  readonly exitCode: number | undefined;

  constructor(message: string, exitCode?: number, options?: { cause?: unknown }) {
    super('ERR_WORKER_CRASHED', message, options);
    this.exitCode = exitCode;
  }
}

/**
 * Threads kept dying at start-up (e.g. the worker module throws on import): the pool gives up
 * with this one error instead of failing every job in a loop.
 *
 * @example
 * ```ts
 * pool.run(x).catch((e) => e.code === 'ERR_WORKER_STARTUP' && console.error(e.cause));
 * ```
 */
export class WorkerStartupError extends SluiceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_WORKER_STARTUP', message, options);
  }
}

/**
 * Work canceled through an `AbortSignal` (the pool's, the job's, or a channel operation's).
 * `cause` carries `signal.reason`.
 *
 * @example
 * ```ts
 * if (!r.ok && r.error instanceof AbortError) console.log('canceled because', r.error.cause);
 * ```
 */
export class AbortError extends SluiceError {
  constructor(reason?: unknown, message = 'the operation was aborted') {
    super('ERR_ABORTED', message, { cause: reason });
  }
}

/**
 * A worker of a Pool with `detectDeadlock` called `submit`/`run` on that same pool when the call
 * could never be served: every slot is held by a job whose worker is itself waiting on this pool
 * (a parked `submit`, or a `run` whose job cannot start). Thrown (as a rejection) instead of
 * hanging; nothing was accepted. Go's runtime reports the same situation as
 * "all goroutines are asleep - deadlock!".
 *
 * @example
 * ```ts
 * try { await pool.run(child) } catch (e) { if (e instanceof SelfDeadlockError) return inline(child) }
 * ```
 */
export class SelfDeadlockError extends SluiceError {
  /** Jobs running in the pool, all waiting on it, when the call was refused. */
  readonly running: number;

  constructor(running: number) {
    super(
      'ERR_SELF_DEADLOCK',
      `self-deadlock: a worker waited on its own pool while all ${running} running jobs were waiting on it too (no slot could ever free)`,
    );
    this.running = running;
  }
}

/**
 * A worker threw (or rejected with) something that is not an `Error`; the original value is
 * kept as `cause`.
 *
 * @example
 * ```ts
 * if (!r.ok && r.error instanceof JobFailedError) console.log(r.error.cause);
 * ```
 */
export class JobFailedError extends SluiceError {
  constructor(value: unknown) {
    super('ERR_JOB_FAILED', `job failed with a non-Error value: ${formatValue(value)}`, {
      cause: value,
    });
  }
}

/**
 * A broker message that cannot be decoded or validated; it is dead-lettered, not retried.
 *
 * @example
 * ```ts
 * throw new MalformedMessageError('body is not JSON', { cause: err });
 * ```
 */
export class MalformedMessageError extends SluiceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_MESSAGE_MALFORMED', message, options);
  }
}

/**
 * A broker refused to settle (ack, retry, dead-letter, release) a message because this consumer
 * no longer owns it: its lease expired and another consumer claimed it (on NATS also: its
 * consumer was deleted, the server answering "no responders"). `consume()` counts it in
 * `stats().leaseLost` and reports it to `onError`; the other consumer's delivery is untouched.
 *
 * @example
 * ```ts
 * consume(source, handle, { concurrency: 8, onError: (e) => e.code === 'ERR_LEASE_LOST' && warn(e) });
 * ```
 */
export class LeaseLostError extends SluiceError {
  /** The broker's id of the message (stream entry id, row id, …). */
  readonly messageId: string;

  /**
   * `cause`: the client's own error, when the loss was seen through one (a closed channel) —
   * on RabbitMQ the broker's, with its reply code as `code`, when it closed the channel itself.
   */
  constructor(
    messageId: string,
    operation: string,
    reason = 'its lease was lost (another consumer claimed it)',
    options?: { cause?: unknown },
  ) {
    super('ERR_LEASE_LOST', `${operation} refused for message ${messageId}: ${reason}`, options);
    this.messageId = messageId;
  }
}

/**
 * A message arrived delivered more than `maxDeliveries` times with no failure recorded for its
 * earlier deliveries: the process holding it died each time (its own handler crashed it, or
 * another message's handler did while this one was held), or its dead-lettering failed.
 * `consume()` dead-letters it on arrival without running the handler again, so that a poison
 * message cannot crash-loop a service for ever (BullMQ fails a job that stalled too often the
 * same way). Replay it from the dead letters if it was a bystander.
 *
 * @example
 * ```ts
 * await deadLetters.replay({ code: 'ERR_DELIVERY_LIMIT' }); // the bystanders of a crash loop, once it is fixed
 * ```
 */
export class DeliveryLimitError extends SluiceError {
  /** The delivery that arrived over the limit. */
  readonly deliveryCount: number;

  constructor(deliveryCount: number, maxDeliveries: number) {
    super(
      'ERR_DELIVERY_LIMIT',
      `delivered ${deliveryCount} times, over maxDeliveries ${maxDeliveries}: earlier deliveries ended without a result (the process died holding it, or a dead-lettering failed)`,
    );
    this.deliveryCount = deliveryCount;
  }
}

/**
 * A broker did not confirm a consumer's settle (ack, retry, release, dead letter) of a message
 * in time — within the source's `lease` on Redis, its `ackTimeout` on NATS (ms), 5000 ms for
 * the republished copy of a retry or dead letter on RabbitMQ: it is down or stalled. Waiting longer would only hold a drain or close for the outage, and past the lease
 * the broker may hand the message to another consumer anyway; the message is delivered again
 * unless the settle did reach the broker (on RabbitMQ the original goes back to its queue
 * even if the copy is stored later: that message may then run twice — at least once). `consume()` reports it to `onError`, as it does any
 * failed settle, and counts the message `unsettled`. `cause` holds the client's own timeout
 * error when there is one (NATS).
 *
 * @example
 * ```ts
 * consume(source, handle, { concurrency: 8, onError: (e) => e.code === 'ERR_SETTLE_TIMEOUT' && alert(e) });
 * ```
 */
export class SettleTimeoutError extends SluiceError {
  /** What was not confirmed. */
  readonly operation: 'ack' | 'retry' | 'release' | 'dead-letter';
  /** The bound that passed (the source's lease, or NATS's `ackTimeout`), ms. */
  readonly timeout: number;

  /**
   * `what` names the message(s): `message 1700000000000-0`, `3 messages`; `within` names the
   * bound (default `'the lease'`).
   */
  constructor(
    operation: SettleTimeoutError['operation'],
    what: string,
    timeout: number,
    options?: { cause?: unknown; within?: string },
  ) {
    super(
      'ERR_SETTLE_TIMEOUT',
      `${operation} of ${what} not confirmed by the broker within ${options?.within ?? 'the lease'} (${timeout} ms)`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.operation = operation;
    this.timeout = timeout;
  }
}

/**
 * A broker did not confirm a publish in time: NATS JetStream's PubAck for an `enqueue` (within
 * its target's `timeout`), a source's `publish` (within `ackTimeout`) or a dead letter's `replay`
 * (within 5000 ms) — the server is down or stalled, or the subject is answered by something that
 * never replies (a core subscriber, not a stream); RabbitMQ's publisher confirm for an `enqueue`
 * (within its target's `timeout`), a source's `publish` or a dead letter's `replay` (within
 * 5000 ms) — the broker is stalled, or blocks publishers under a resource alarm. The message
 * may have been stored all the same: publishing again may store it twice, unless it carries a
 * `key` (NATS: deduplicated within the stream's duplicate window). `cause` holds the client's
 * own timeout error when there is one (NATS).
 *
 * @example
 * ```ts
 * await enqueue({ connection: nc, subject: 'JOBS.work' }, job, { key }).catch((e) => e.code === 'ERR_PUBLISH_TIMEOUT' && retryLater());
 * ```
 */
export class PublishTimeoutError extends SluiceError {
  /** The timeout that passed, ms. */
  readonly timeout: number;

  /** `where` names the destination: `NATS subject "JOBS.work"`. */
  constructor(where: string, timeout: number, options?: { cause?: unknown }) {
    super(
      'ERR_PUBLISH_TIMEOUT',
      `publish to ${where} not confirmed by the broker within ${timeout} ms`,
      options,
    );
    this.timeout = timeout;
  }
}

/**
 * A broker connection did not complete its handshake within the source's `connectTimeout`: a
 * server (or a proxy, or the wrong service on the port) that accepts TCP and never answers.
 * `cause` holds the client's own error when there is one.
 *
 * @example
 * ```ts
 * await redisSource({ stream, group, connectTimeout: 2000 }).catch((e) => e.code); // 'ERR_CONNECT_TIMEOUT'
 * ```
 */
export class ConnectTimeoutError extends SluiceError {
  /** The deadline that passed, ms. */
  readonly timeout: number;

  /** `where` names the broker and its URL (without a password). */
  constructor(where: string, timeout: number, options?: { cause?: unknown }) {
    super(
      'ERR_CONNECT_TIMEOUT',
      `${where} did not complete its connection handshake within ${timeout} ms`,
      options,
    );
    this.timeout = timeout;
  }
}

/**
 * A broker operation found no live connection (the source is reconnecting, the connection or
 * channel given is closed), or its connection failed before the reply came (closed, reset,
 * replaced): the operation was not sent, or its outcome is unknown; or a first connection could
 * not be made: the server refused the TCP connection or could not be reached
 * (`ECONNREFUSED`, `EHOSTUNREACH`, …), its host name did not resolve (`ENOTFOUND`,
 * `EAI_AGAIN`: a container starting may not be in DNS yet), or it closed the connection before
 * its greeting. All of these may succeed later: `retryable` is `true`. What retrying cannot fix
 * — a login refused, a missing virtual host or database, SSL the server lacks, a server that
 * is not the broker, JetStream disabled — is its subclass {@link ConnectConfigError}
 * (`ERR_CONNECT_CONFIG`, `retryable: false`). `cause` holds the client library's (or the
 * socket's) own error when there is one, with its `code`. Every operation of a consumer is
 * safe to repeat (an unconfirmed settle means a redelivery); publishing again later is safe,
 * though a publish whose connection dropped after it was sent may then be stored twice
 * (at-least-once).
 *
 * @example
 * ```ts
 * await source.publish(body).catch((e) => e.code === 'ERR_NOT_CONNECTED' && retryLater());
 * ```
 */
export class NotConnectedError extends SluiceError {
  /**
   * Whether trying again later may succeed: `true` for an outage (the code
   * `ERR_NOT_CONNECTED`), `false` for a {@link ConnectConfigError} (`ERR_CONNECT_CONFIG`).
   */
  readonly retryable: boolean;

  constructor(broker: string, detail = 'reconnecting', options?: { cause?: unknown }) {
    const config = new.target === ConnectConfigError;
    super(
      config ? 'ERR_CONNECT_CONFIG' : 'ERR_NOT_CONNECTED',
      `not connected to ${broker} (${detail})`,
      options,
    );
    this.retryable = !config;
  }
}

/**
 * A broker refused a connection for a reason that retrying will not fix: its configuration (or
 * the server's) must change. Redis, NATS or RabbitMQ refusing the login, RabbitMQ the virtual
 * host; PostgreSQL refusing the login (SQLSTATE `28P01`, `28000`) or the database (`3D000`), or
 * without the SSL asked for; a NATS server whose first line is not `INFO` (not a NATS server:
 * the wrong port) or without JetStream. The message names what to check; `cause` holds the
 * client's error. `retryable` is `false`, and the code is its own, `ERR_CONNECT_CONFIG`, so
 * that a loop retrying on `ERR_NOT_CONNECTED` stops on it; it is still an `instanceof
 * NotConnectedError` (what it was before it had a class of its own), as kafkajs's
 * non-retriable errors and gRPC's `UNAUTHENTICATED` beside `UNAVAILABLE` tell the two apart.
 *
 * @example
 * ```ts
 * for (let i = 0; ; i++) {
 *   try { return await redisSource(opts) }
 *   catch (e) { if (e.code !== 'ERR_NOT_CONNECTED' || i === 10) throw e; await sleep(1000) } // ERR_CONNECT_CONFIG: at once
 * }
 * ```
 */
export class ConnectConfigError extends NotConnectedError {}

/**
 * A broker confirmed a publish but routed it to no queue (RabbitMQ's `basic.return` of a
 * `mandatory` message), or refused it (a `basic.nack`: a queue it routes to is full with
 * `x-overflow: reject-publish`, or could not store it): a consumer's retry or dead letter, even
 * after the topology was declared again (the message it copied is not acked: it goes back to its
 * queue), a dead-letter `replay` whose work queue is gone or refuses the copies (the letters stay
 * in the dead queue), or an `enqueue` or a source's `publish` the broker refused. On NATS, a
 * publish (`enqueue`, a source's `publish`, a dead-letter `replay`) that no JetStream stream
 * captures — no responders on the subject, or JetStream not enabled — nothing stored. `cause`
 * holds the client's error for a refusal.
 *
 * @example
 * ```ts
 * consume(source, handle, { concurrency: 8, onError: (e) => e.code === 'ERR_UNROUTABLE' && page(e) });
 * ```
 */
export class UnroutableError extends SluiceError {
  /** `cause`: the client's error, for a publish the broker refused (nacked). */
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_UNROUTABLE', message, options);
  }
}

/**
 * A `RateLimiter` failed to hand out a permit: its `reserve()` threw, rejected (a shared limiter
 * that lost its Redis, say) or answered something other than a number of ms >= 0. Fails the job
 * that asked, not the pool; the limiter's error is the `cause`.
 *
 * @example
 * ```ts
 * for await (const r of runPool(urls, get, { rate: redisRateLimiter(client, 'api', limits) }))
 *   if (!r.ok && r.error.code === 'ERR_RATE_LIMITER') console.warn('limiter down', r.error.cause);
 * ```
 */
export class RateLimiterError extends SluiceError {
  constructor(cause: unknown) {
    super('ERR_RATE_LIMITER', 'the rate limiter failed to hand out a permit', { cause });
  }
}

/**
 * Wraps anything thrown into an `Error`: non-Errors become `JobFailedError` with `cause`. Never
 * throws: a value whose inspection throws (a revoked Proxy, a Proxy whose traps throw) is not
 * taken for an Error. Every place that classifies a thrown value goes through here.
 */
export function toError(value: unknown): Error {
  try {
    if (value instanceof Error) return value;
  } catch {
    // `instanceof` ran a throwing getPrototypeOf trap: not an Error we can rely on.
  }
  return new JobFailedError(value);
}

/** The error that an aborted `signal` stands for: an `AbortError` whose `cause` is the reason. */
export function abortErrorFrom(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof SluiceError) return reason;
  return new AbortError(reason);
}
