/**
 * The one narrow interface every broker adapter implements. The shared consumer loop
 * (`consumer.ts`) owns concurrency, retries, backoff, dead-lettering and drain; an adapter only
 * speaks its broker's protocol. Adapters depend on this file; the core never depends on adapters.
 *
 * @module
 */
import { coded } from '../internal/options.js';

/** One message held by the process, as the consumer loop sees it. */
export interface BrokerMessage {
  /** Broker-assigned id (stream entry id, JetStream sequence, delivery tag, row id), as a string. */
  readonly id: string;
  /** The raw payload (bytes); decoding is the consumer's job so bad payloads fail one message. */
  readonly body: Uint8Array;
  /** How many times this message has been delivered, counting this delivery (1 = first). */
  readonly deliveryCount: number;
  /**
   * The headers the producer set (`enqueue(…, { headers })`, or the broker's own: Redis entry
   * fields besides the payload, NATS and AMQP message headers), without the broker's and
   * sluice's own (`Nats-*`, RabbitMQ's `x-death`/`x-delivery-count`, `sluice-*`). Absent when
   * there are none.
   */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Set by a source when the broker's record cannot be a message at all (e.g. a Redis stream entry
   * without the payload field): the consumer dead-letters it at once with this reason, as a
   * `MalformedMessageError`, instead of decoding an empty body.
   */
  readonly malformed?: string;
}

/** Where a source's messages come from, as tracing names it (see {@link BrokerSource.messaging}). */
export interface MessagingTarget {
  /** OpenTelemetry's `messaging.system`: `'redis'`, `'nats'`, `'rabbitmq'`, `'postgresql'`. */
  readonly system: string;
  /** The stream (Redis), subject (NATS), queue (RabbitMQ) or table (PostgreSQL). */
  readonly destination: string;
  /** The consumer group (Redis), durable consumer (NATS); absent where there is none. */
  readonly consumerGroup?: string;
}

/**
 * A source of messages from one queue/stream/subject/table. Every method may be called
 * concurrently for different messages; `fetch` is only ever called by one loop at a time.
 */
export interface BrokerSource<M extends BrokerMessage = BrokerMessage> {
  /**
   * Waits (at most a finite, adapter-chosen block time, and never past `signal`) for up to `max`
   * messages and returns them; may return `[]`. Must never return more than `max`: `consume()`
   * releases any past `max` at once, unstarted and never counted as held (so `concurrency` still
   * bounds what is held), and reports each such fetch to `onError` (op `'fetch'`, a `RangeError`
   * coded `ERR_INVALID_RETURN_VALUE`).
   */
  fetch(max: number, signal: AbortSignal): Promise<M[]>;
  /** The handler succeeded: remove the message from the broker for good. */
  ack(message: M): Promise<void>;
  /**
   * Optional speed-up: the handlers of all of `messages` succeeded (they are held, from this
   * source, each given once): ack them together, as `ack` would one by one, in as few broker
   * commands as the protocol allows (PostgreSQL: one fenced `DELETE … = ANY`; RabbitMQ: one
   * `multiple` ack where they are the oldest unacked deliveries; Redis: the turn's one ack script).
   * The consumer calls it instead
   * of `ack` for the successes of one turn (a batch handler's batch, or the one-at-a-time
   * handlers that finished together), once their outcomes are known; a lone success still
   * goes to `ack`.
   *
   * Resolves `undefined` when every message was acked, or an array as long as `messages` with,
   * at each message's index, `undefined` (acked) or the Error its ack failed with (e.g. a
   * `LeaseLostError`, code `ERR_LEASE_LOST`, when another consumer holds it now). Rejects when
   * none of them is known to be acked (the error is reported for each). Each message must be
   * acked at most once, and only if `ack` would have acked it (the same fencing). Absent: the
   * consumer calls `ack` per message.
   */
  ackMany?(messages: readonly M[]): Promise<readonly (Error | undefined)[] | undefined | void>;
  /** The handler failed and will be retried: make it deliverable again after `delayMs`. */
  retry(message: M, delayMs: number, error: Error): Promise<void>;
  /** The message failed for the last time (or is malformed): move it to the dead letter, with `error`. */
  deadLetter(message: M, error: Error): Promise<void>;
  /**
   * The handler is still running: keep the broker from redelivering the message elsewhere.
   * Resolve `false` when the broker says the message is no longer ours (e.g. a lost lease): the
   * consumer then aborts the handler's signal and neither acks nor retries it. `void` = still ours.
   */
  heartbeat?(message: M): Promise<boolean | void>;
  /** Hand a fetched-but-unstarted message back to the broker at drain (as soon as possible). */
  release(message: M): Promise<void>;
  /**
   * Interval (ms, > 0) at which `heartbeat` must be called for a running message; absent = never.
   * `consume()` refuses 0, a negative number, NaN or a non-number (`ERR_INVALID_OPTION`).
   */
  readonly heartbeatInterval?: number;
  /**
   * A push source's fixed prefetch (messages the broker sends ahead), when it has one: `consume()`
   * refuses a source whose prefetch exceeds its `concurrency`, at construction
   * (`ERR_INVALID_OPTION`), since those messages would wait uncounted. Absent: no fixed prefetch.
   */
  readonly prefetch?: number | undefined;
  /**
   * Optional speed-up. `true` promises: an `ack` called while no `fetch` is in progress reaches
   * the broker before the next `fetch`'s read (Redis: both go down one connection, in order;
   * PostgreSQL: the acks go in the claim's own statement, or the claim waits for theirs).
   * The consumer then frees such a message's slot as soon as it issues the ack, so the ack
   * travels with the next fetch instead of costing its own round trip — and the broker still
   * never has more than `concurrency` messages outstanding for this consumer, counting the acks
   * it accepts (an ack that fails leaves its message outstanding until its lease ends, while
   * its slot is already taken again). The promise is per source: one such source serves one
   * consumer. Absent/false: a slot frees only once its ack is confirmed.
   */
  readonly orderedAcks?: boolean;
  /**
   * What the source reads, for tracing (sluice/otel's consumer spans); a source without it is
   * traced as `messaging.system` `'unknown'`.
   */
  readonly messaging?: MessagingTarget;
  /** Closes connections the adapter opened (not ones the user passed in). Idempotent. */
  close(): Promise<void>;
}

/**
 * What a source's `fetch` throws once the source is closed: a misuse, which the consume loop
 * reports once and stops on (retrying cannot help). Internal to the sources.
 */
export function closedError(broker: string): Error {
  return coded(new TypeError(`the ${broker} source is closed`), 'ERR_INVALID_STATE');
}
