/**
 * `sluice/amqp`: a {@link BrokerSource} over one RabbitMQ queue (amqplib).
 *
 * - Flow control is the broker's: `prefetch` = the consumer loop's concurrency, so the process
 *   never holds more than that many unacked messages (documented constant: 0). By default the
 *   prefetch is the `max` of the first `fetch`, which the loop sets to its concurrency. An
 *   explicit `prefetch` may be smaller, never larger: messages the broker pushes beyond the
 *   loop's demand would sit in this process uncounted by `held`, so the first `fetch` refuses it.
 *   A consumer is started on a channel (at first, after a reconnect) only by a `fetch` whose
 *   `max` (the loop's free slots) is at least the prefetch: after a reconnect, handlers of the
 *   dead channel's messages may still run, and a full prefetch on the new channel next to them
 *   would double what the process holds. So across reconnects too, held <= concurrency (+0);
 *   consumption resumes as soon as those handlers finished.
 * - `ack`/`release` are `basic.ack`/`basic.nack(requeue)` on the channel the message came on,
 *   and only while that channel lives: after a reconnect the broker has requeued it already.
 *   Acks issued in one event-loop turn go out together at its end: the oldest held deliveries
 *   that all want an ack as one `basic.ack` with `multiple`, the rest one frame each (`acks.ts`).
 * - Retries: the message is republished (publisher-confirmed) to a per-delay queue whose TTL
 *   dead-letters it back to the work queue, with `x-sluice-deliveries` counting the deliveries
 *   so far; then the original is acked. Dead letters: republished to `<queue>.dlx` (bound to
 *   `<queue>.dead`) with the error in `x-sluice-error*` headers, then acked. The work queue also
 *   names that exchange as its `x-dead-letter-exchange`, so anyone's `reject` lands there too.
 * - Republished headers (the original's plus ours) are kept under what amqplib can encode
 *   (64 KiB): the error text is cut to what fits; a message whose own headers leave no room
 *   even for the delivery count is rejected instead, and RabbitMQ dead-letters it through that
 *   exchange (with `x-death`, without our error headers). RabbitMQ's `max_message_size` counts
 *   the body only, which a republish does not change.
 * - Republishes are `mandatory`: RabbitMQ confirms and discards a message that routes to no
 *   queue (say `<queue>.dead` was deleted), so a `basic.return` counts as a failure. The source
 *   re-declares the topology and publishes once more; if that is returned too, the original is
 *   not acked but handed back to the queue and the call rejects (the consumer counts an error)
 *   with `UnroutableError`, as it does when the broker nacks the copy (a full queue with
 *   `x-overflow: reject-publish`), and with `SettleTimeoutError` when it does not confirm the
 *   copy within 5000 ms (stalled, or blocking publishers under a resource alarm).
 * - `deliveryCount` = 1 + the retries recorded in the header (+ the broker's `x-delivery-count`
 *   with `queueType: 'quorum'`). On a classic queue redeliveries after a crash are not counted:
 *   a message that kills its process every time is redelivered forever; use a quorum queue.
 * - No heartbeat: RabbitMQ never redelivers a message while its channel is open (up to the
 *   server's `consumer_timeout`, 30 min by default), so a slow handler keeps its message.
 * - Reconnects with backoff and re-declares the topology; at-least-once, handlers must be idempotent.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import {
  LeaseLostError,
  NotConnectedError,
  SettleTimeoutError,
  SluiceError,
  UnroutableError,
} from '../../errors.js';
import { brokerName, invalidOption, numberAtLeast } from '../../internal/options.js';
import { AMQP_URL, checkUrl, rejectAfter } from '../connect-deadline.js';
import { errorMessage, errorName, errorStringCode } from '../dead-letter.js';
import { sleep, wakeAll } from '../sleep.js';
import {
  type BrokerMessage,
  type BrokerSource,
  closedError,
  type MessagingTarget,
} from '../source.js';
import {
  BROKER_LIMITS,
  type CommonSourceOptions,
  resolveCommon,
  SOURCE_DEFAULTS,
} from '../source-options.js';
import { AckCoalescer } from './acks.js';
import { PUBLISH_TIMEOUT, sendConfirmed } from './confirm.js';
import { AmqpLink, type Delivery } from './link.js';
import { declareRetryQueue, RETRY_REDECLARE, retryBucket } from './topology.js';

// The shared consumer, so that one subpath import is enough: `import { consume, … } from 'sluice/amqp'`.
export {
  type BackoffOptions,
  type BatchContext,
  type BatchHandler,
  type BatchItem,
  type BatchOptions,
  type BatchOutcomes,
  type ConsumeOptions,
  type Consumer,
  type ConsumerReport,
  type ConsumerStats,
  consume,
  type HandlerContext,
  jsonDecode,
  type MessageHandler,
} from '../consumer.js';
export type { EnqueueOptions, EnqueueResult } from '../enqueue-options.js';
export type { BrokerMessage, BrokerSource } from '../source.js';
export {
  type AmqpDeadLettersOptions,
  amqpDeadLetters,
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterListOptions,
  type DeadLetterPage,
  type DeadLetterSelection,
  type DeadLetters,
} from './dead-letters.js';
export { type AmqpTarget, enqueue } from './enqueue.js';

/**
 * The largest `heartbeat` (s): AMQP carries it in an unsigned short. A larger one was taken and
 * then negotiated down to the server's without a word, or failed the handshake when encoded.
 */
const MAX_HEARTBEAT_S = 65_535;

/** How long a fetch waits (ms) for the loop's slots to free up before it may start consuming. */
const WAIT_FOR_SLOTS_MS = 20;

/**
 * Options of {@link amqpSource}. Durations in ms unless noted. No `lease`: a message is its
 * channel's until the channel closes, so a `lease` given is refused (`ERR_INVALID_OPTION`);
 * `lease: null` or `undefined` counts as not given, as for every option.
 */
export interface AmqpSourceOptions extends Omit<CommonSourceOptions, 'lease'> {
  /** Broker URL. @default 'amqp://guest:guest@127.0.0.1:5672' */
  url?: string;
  /** The work queue (declared durable, with its dead-letter exchange). */
  queue: string;
  /**
   * Unacked messages the broker may push to this process. At most the consumer's `concurrency`
   * (the `max` of the first `fetch`): a larger value would have the broker push messages that
   * wait in this process without counting as held, so `consume()` throws a RangeError
   * (`ERR_INVALID_OPTION`) naming both at once; the first `fetch` still rejects it (and
   * nothing is consumed) when its `max` is smaller — several sources sharing one concurrency.
   * A smaller value is fine (fewer messages in flight than handler slots).
   * @default the first fetch's `max`
   */
  prefetch?: number;
  /** Exchange for dead letters. @default `${queue}.dlx` */
  deadLetterExchange?: string;
  /** Queue bound to the dead-letter exchange. @default `${queue}.dead` */
  deadLetterQueue?: string;
  /**
   * AMQP connection heartbeat, in seconds: how soon a silent broker is noticed. An integer from
   * 0 (no heartbeats) to 65535 (the protocol's largest). @default 5
   */
  heartbeat?: number;
  /**
   * The work queue's type when it is declared here. `quorum` makes RabbitMQ count every
   * delivery (`x-delivery-count`, crashes and releases included), so a message that kills its
   * process each time still reaches `maxDeliveries` and the dead letter. An existing queue keeps
   * its type (declaring it with another one fails). @default 'classic'
   */
  queueType?: 'classic' | 'quorum';
}

/** A delivery from RabbitMQ. `id` is the delivery tag (unique per channel only). */
export interface AmqpMessage extends BrokerMessage {
  /** The client's message (properties, headers, fields). Acknowledge through the source only. */
  readonly raw: ConsumeMessage;
  /** True when the broker redelivered it (after a crash, a lost channel or a release). */
  readonly redelivered: boolean;
}

/** Header carrying the number of deliveries a republished message has had. */
export const DELIVERIES_HEADER = 'x-sluice-deliveries';

/**
 * Header with a unique id on every republish (retry, dead letter): it tells which publish a
 * `basic.return` belongs to, since concurrent publishes share the exchange and routing key.
 */
const PUBLISH_ID_HEADER = 'x-sluice-publish-id';

/**
 * Connects, declares the topology and returns a source for `consume()`. Rejects if the first
 * connection fails: `NotConnectedError` (`ERR_NOT_CONNECTED`, retryable) when the broker cannot
 * be reached, `ConnectConfigError` (`ERR_CONNECT_CONFIG`, not retryable) when it refused the
 * login or the virtual host, `ConnectTimeoutError` (`ERR_CONNECT_TIMEOUT`) after
 * `connectTimeout`; later losses are retried forever.
 *
 * @example
 * ```ts
 * const source = await amqpSource({ queue: 'jobs' });
 * const consumer = consume(source, async (job) => handle(job), { concurrency: 32 });
 * ```
 */
export async function amqpSource(opts: AmqpSourceOptions): Promise<AmqpSource> {
  brokerName('queue', opts?.queue);
  if (opts.deadLetterExchange != null) brokerName('deadLetterExchange', opts.deadLetterExchange);
  if (opts.deadLetterQueue != null) brokerName('deadLetterQueue', opts.deadLetterQueue);
  numberAtLeast('prefetch', opts.prefetch, 1, { integer: true });
  // Here `connectTimeout` bounds every (re)connect: TCP, the AMQP handshake, opening the
  // channels and declaring the topology (a reconnect that misses it tries again).
  const common = resolveCommon(opts, BROKER_LIMITS.amqp);
  numberAtLeast('heartbeat', opts.heartbeat, 0, {
    integer: true,
    unit: 's',
    max: MAX_HEARTBEAT_S,
  });
  if (opts.url != null) checkUrl(opts.url, AMQP_URL, 'an amqp:// or amqps:// URL');
  const link = new AmqpLink({
    url: opts.url ?? 'amqp://guest:guest@127.0.0.1:5672',
    queue: opts.queue,
    deadLetterExchange: opts.deadLetterExchange ?? `${opts.queue}.dlx`,
    deadLetterQueue: opts.deadLetterQueue ?? `${opts.queue}.dead`,
    heartbeat: opts.heartbeat ?? 5,
    connectTimeout: common.connectTimeout,
    queueType: opts.queueType ?? 'classic',
  });
  // The first connection must work (a wrong URL fails fast instead of retrying forever);
  // reconnects after that retry with backoff.
  await link.connectOnce();
  return new AmqpSource(link, { ...opts, fetchWait: common.fetchWait });
}

/** See the module doc. Build one with {@link amqpSource}. */
export class AmqpSource implements BrokerSource<AmqpMessage> {
  readonly messaging: MessagingTarget;
  /** The `prefetch` option as given (undefined: the consumer's concurrency). */
  readonly prefetch: number | undefined;
  readonly #link: AmqpLink;
  readonly #queue: string;
  readonly #dlx: string;
  readonly #fetchWait: number;
  #prefetch: number | undefined;
  #fetched = false;
  /** Set by the first fetch when `prefetch` exceeds its `max`; every fetch then throws it. */
  #refused: Error | undefined;
  /** Ids of republishes the broker returned unroutable (until their confirm is seen). */
  readonly #returned = new Set<string>();
  /** Ids of republishes waiting for their confirm. */
  readonly #awaiting = new Set<string>();
  readonly #retryQueues = new Map<number, number>(); // delay → last declared (ms epoch)
  /** Acks of one event-loop turn, sent as one `multiple` ack where valid (see `acks.ts`). */
  readonly #acks: AckCoalescer;
  readonly #wakers = new Set<() => void>();
  #closed = false;
  /** Consecutive failed republishes: the hand-back backoff grows with them. */
  #republishFailures = 0;
  /** Pending delayed hand-backs, cleared at close (the channel's close requeues the messages). */
  readonly #handBacks = new Set<NodeJS.Timeout>();

  /** @internal use {@link amqpSource}. */
  constructor(link: AmqpLink, opts: AmqpSourceOptions) {
    this.#link = link;
    this.#queue = opts.queue;
    this.messaging = { system: 'rabbitmq', destination: opts.queue };
    this.#dlx = opts.deadLetterExchange ?? `${opts.queue}.dlx`;
    this.#fetchWait = opts.fetchWait ?? SOURCE_DEFAULTS.fetchWait;
    this.#prefetch = opts.prefetch;
    this.prefetch = opts.prefetch;
    this.#acks = new AckCoalescer((channel) => channel === link.channel);
    // Called for every delivery: most find no fetch waiting (it returned with the burst's first).
    link.onChange = () => {
      if (this.#wakers.size > 0) wakeAll(this.#wakers);
    };
    link.onReturn = (msg) => {
      const id = msg.properties.headers?.[PUBLISH_ID_HEADER];
      // Only for a publish still waiting: one that timed out is no longer cleaned up after.
      if (typeof id === 'string' && this.#awaiting.has(id)) this.#returned.add(id);
    };
  }

  /** Deliveries pushed by the broker and not yet handed to the consumer loop. */
  get buffered(): number {
    return this.#link.buffer.length;
  }

  /** Times the connection was rebuilt after a loss. */
  get reconnects(): number {
    return this.#link.reconnects;
  }

  async fetch(max: number, signal: AbortSignal): Promise<AmqpMessage[]> {
    if (this.#closed) throw closedError('RabbitMQ');
    if (max <= 0) return [];
    if (!this.#fetched) {
      // The first fetch's `max` is the consumer's concurrency (no slot is taken yet).
      this.#fetched = true;
      this.#prefetch ??= max;
      if (this.#prefetch > max) this.#refused = refusal(this.#prefetch, max);
    }
    if (this.#refused) throw this.#refused;
    const prefetch = this.#prefetch ?? max;
    const deadline = Date.now() + this.#fetchWait;
    while (this.#link.buffer.length === 0 && !signal.aborted && Date.now() < deadline) {
      // Start consuming (at first, after a reconnect, after a pause) only with `prefetch` free
      // slots: messages of a dead channel whose handlers still run count in the loop's `held`
      // (`max` = its free slots), so held + what the broker may push stays <= concurrency.
      if (this.#link.channel && (max >= prefetch || this.#link.consuming)) {
        await this.#link.consume(prefetch).catch(() => {});
      } else if (this.#link.channel) {
        // The loop calls again as its slots free up: wait a little, not the whole block time.
        await sleep(Math.min(WAIT_FOR_SLOTS_MS, deadline - Date.now()), signal, this.#wakers);
        break;
      }
      if (this.#link.buffer.length > 0) break;
      await sleep(deadline - Date.now(), signal, this.#wakers);
    }
    // Closing, usually: stop the pushes so nothing arrives that the loop will not take.
    if (signal.aborted) await this.#link.pause();
    return this.#link.buffer.splice(0, max).map((d) => this.#toMessage(d));
  }

  ack(message: AmqpMessage): Promise<void> {
    try {
      const ch = this.#live(message, 'ack');
      return this.#acks.ack(message.raw, ch, () => lost(message, 'ack'));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Acks a batch handler's successful messages with one promise: they join this turn's acks, one
   * `multiple` frame where they are the oldest unacked deliveries of the channel. A message from
   * a channel that has died since gets a `LeaseLostError` at its index (the broker requeued it).
   */
  async ackMany(messages: readonly AmqpMessage[]): Promise<(Error | undefined)[] | undefined> {
    let refused: (Error | undefined)[] | undefined;
    const raws: ConsumeMessage[] = [];
    let ch: Channel | undefined;
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]!;
      try {
        ch = this.#live(message, 'ack');
        raws.push(message.raw);
      } catch (error) {
        refused ??= new Array<Error | undefined>(messages.length).fill(undefined);
        refused[i] = error as Error;
      }
    }
    if (ch === undefined) return refused;
    // Every live message is on the one live channel (`#live` checks against it).
    await this.#acks.ackMany(raws, ch, () => lost(messages[0]!, 'ack'));
    return refused;
  }

  async release(message: AmqpMessage): Promise<void> {
    const d = this.#delivery(message);
    // From a dead channel: the broker has requeued it already.
    if (d && this.#link.isLive(d)) this.#nack(message.raw, true);
  }

  async retry(message: AmqpMessage, delayMs: number, error: Error): Promise<void> {
    const pub = this.#link.publisher;
    try {
      await this.#retry(message, delayMs, error);
    } catch (failure) {
      throw this.#settleFailure(failure, message, 'retry', pub);
    }
  }

  async deadLetter(message: AmqpMessage, error: Error): Promise<void> {
    const pub = this.#link.publisher;
    try {
      await this.#deadLetter(message, error);
    } catch (failure) {
      throw this.#settleFailure(failure, message, 'dead-letter', pub);
    }
  }

  /**
   * A retry's or dead letter's failure as the source reports it. amqplib fails what was in
   * flight on a channel that closed with its own uncoded errors ("channel closed", "Channel
   * ended, no reply will be forthcoming", an `IllegalOperationError`): told by the link's state
   * rather than their text, the message's channel gone is a lost lease (RabbitMQ redelivers
   * it), the publishing channel gone (`pub` was the one in use) a `NotConnectedError` with the
   * client's error as `cause`. Anything else (a sluice error — a broker's nack is an
   * `UnroutableError` by now) as it is.
   */
  #settleFailure(
    failure: unknown,
    message: AmqpMessage,
    operation: string,
    pub: ConfirmChannel | undefined,
  ): unknown {
    if (failure instanceof SluiceError) return failure;
    const d = this.#delivery(message);
    if (!d || !this.#link.isLive(d)) {
      return lost(message, operation, failure, this.#link.closedBy(d?.generation));
    }
    if (pub !== undefined && this.#link.publisher !== pub) {
      return new NotConnectedError(
        'RabbitMQ',
        `the ${operation} of delivery ${message.id} failed: its publishing channel closed`,
        { cause: failure },
      );
    }
    return failure;
  }

  async #retry(message: AmqpMessage, delayMs: number, error: Error): Promise<void> {
    const ch = this.#live(message, 'retry');
    const headers = fitHeaders(message.raw.properties.headers, [
      [DELIVERIES_HEADER, message.deliveryCount],
      [FIRST_FAILED_HEADER, firstFailedAt(message)],
      ['x-sluice-last-error', oneLine(errorMessage(error))],
    ]);
    if (headers === undefined) {
      // Its own headers leave no room for the delivery count: a copy could never be counted,
      // so it could be retried for ever. Let the broker dead-letter it (the queue's DLX).
      this.#acks.settled(message.raw, ch);
      ch.nack(message.raw, false, false);
      return;
    }
    if (delayMs > 0) {
      const ms = retryBucket(delayMs);
      const target = await this.#retryQueue(ms);
      // Delay queues expire when idle and anyone may delete one: declare it again if gone.
      await this.#republish('retry', '', target, message, headers, () =>
        this.#retryQueue(ms, true),
      );
    } else {
      await this.#republish('retry', '', this.#queue, message, headers, () =>
        this.#link.redeclare(),
      );
    }
    this.#acks.settled(message.raw, ch);
    ch.ack(message.raw);
  }

  async #deadLetter(message: AmqpMessage, error: Error): Promise<void> {
    const ch = this.#live(message, 'dead-letter');
    const code = errorStringCode(error);
    const headers = fitHeaders(message.raw.properties.headers, [
      [DELIVERIES_HEADER, message.deliveryCount],
      [FIRST_FAILED_HEADER, firstFailedAt(message)],
      [FAILED_HEADER, Date.now()],
      ['x-sluice-error-code', code === undefined ? undefined : oneLine(code)],
      ['x-sluice-error-name', oneLine(errorName(error))],
      ['x-sluice-error', oneLine(errorMessage(error))],
    ]);
    if (headers === undefined) {
      // Its own headers fill what a republish can carry: let the broker dead-letter it through
      // the queue's DLX (with its `x-death` header, without our error headers).
      this.#acks.settled(message.raw, ch);
      ch.nack(message.raw, false, false);
      return;
    }
    await this.#republish('dead letter', this.#dlx, this.#queue, message, headers, () =>
      this.#link.redeclare(),
    );
    this.#acks.settled(message.raw, ch);
    ch.ack(message.raw);
  }

  /**
   * Publishes to the work queue and waits for the broker's confirm (for producers and tests):
   * `PublishTimeoutError` (`ERR_PUBLISH_TIMEOUT`) when it did not confirm within 5000 ms (the
   * default `timeout` of `enqueue`), `UnroutableError` (`ERR_UNROUTABLE`) when it refused the
   * message (a nack), `NotConnectedError` (`ERR_NOT_CONNECTED`) while reconnecting or when the
   * channel closed before the confirm.
   */
  async publish(body: Uint8Array | string): Promise<void> {
    const pub = this.#link.publisher;
    if (!pub) throw new NotConnectedError('RabbitMQ');
    await sendConfirmed(pub, this.#queue, Buffer.from(body), { persistent: true }, PUBLISH_TIMEOUT);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#handBacks) clearTimeout(timer);
    this.#handBacks.clear();
    await this.#link.pause();
    for (const d of this.#link.buffer.splice(0)) {
      if (this.#link.isLive(d)) this.#link.channel?.nack(d.msg, false, true);
    }
    await this.#link.close();
  }

  #toMessage(d: Delivery): AmqpMessage {
    const m = new HeldMessage(d, this.#link);
    const ch = this.#link.channel;
    if (ch && this.#link.isLive(d)) this.#acks.track(d.msg, ch);
    return m;
  }

  /** `basic.nack` of one delivery on the live channel, untracked first (no multiple ack covers it). */
  #nack(msg: ConsumeMessage, requeue: boolean): void {
    const ch = this.#link.channel;
    if (!ch) return;
    this.#acks.settled(msg, ch);
    ch.nack(msg, false, requeue);
  }

  /** The channel `message` can be settled on, or a throw: its channel died, it will come back. */
  #live(message: AmqpMessage, operation: string) {
    const d = this.#delivery(message);
    const ch = this.#link.channel;
    if (!d || !ch || !this.#link.isLive(d)) {
      // Delivery tags are channel-scoped: the broker requeued the message when the channel
      // died, and may have handed it to another consumer; a tag from a dead channel must
      // never be used on the new one (it would settle a different delivery, or kill it).
      throw lost(message, operation, undefined, this.#link.closedBy(d?.generation));
    }
    return ch;
  }

  /** The delivery `message` came as, when this source handed it out. */
  #delivery(message: AmqpMessage): Delivery | undefined {
    return message instanceof HeldMessage ? message.deliveryOf(this.#link) : undefined;
  }

  async #retryQueue(ms: number, force = false): Promise<string> {
    const pub = this.#link.publisher;
    const last = this.#retryQueues.get(ms);
    if (pub && (force || last === undefined || Date.now() - last > RETRY_REDECLARE)) {
      await declareRetryQueue(pub, this.#queue, ms);
      this.#retryQueues.set(ms, Date.now());
    }
    return `${this.#queue}.retry.${ms}`;
  }

  /**
   * Publishes a copy of `message` and resolves only once the broker confirmed it and routed it
   * to a queue. Unroutable: `redeclare`, then one more try. On failure the call rejects, so the
   * caller never acks the original, and the original goes back to the queue after a backoff
   * (1 s doubling to 30 s while failures repeat): left unacked it would hold a prefetch slot
   * until the channel closes, and handed back at once it would loop at full speed (a classic
   * queue redelivers it first, with its old count) while, say, the dead-letter queue is full.
   */
  async #republish(
    what: string,
    exchange: string,
    routingKey: string,
    message: AmqpMessage,
    headers: Record<string, unknown>,
    redeclare: () => Promise<unknown>,
  ): Promise<void> {
    try {
      if (await this.#publishRouted(what, exchange, routingKey, message, headers)) {
        this.#republishFailures = 0;
        return;
      }
      await redeclare();
      if (await this.#publishRouted(what, exchange, routingKey, message, headers)) {
        this.#republishFailures = 0;
        return;
      }
      throw new UnroutableError(
        `RabbitMQ routed the ${what} of delivery ${message.id} to no queue (exchange ` +
          `${JSON.stringify(exchange)}, routing key ${JSON.stringify(routingKey)}), even after ` +
          `re-declaring the topology; the message goes back to ${JSON.stringify(this.#queue)}`,
      );
    } catch (err) {
      this.#handBackLater(message);
      throw this.#refusal(err, what, exchange, routingKey, message);
    }
  }

  /**
   * A republish's failure: amqplib's "message nacked" on a publishing channel still open (a
   * closed one fails what it had in flight with other errors) is the broker refusing the copy —
   * a queue it routes to is full with `x-overflow: reject-publish`, or could not store it — so
   * it is reported as one routed nowhere: `UnroutableError` (`ERR_UNROUTABLE`), amqplib's
   * error as `cause`. Anything else as it is.
   */
  #refusal(
    err: unknown,
    what: string,
    exchange: string,
    routingKey: string,
    message: AmqpMessage,
  ): unknown {
    if (err instanceof SluiceError || this.#link.publisher === undefined) return err;
    if (!(err instanceof Error) || err.message !== 'message nacked') return err;
    return new UnroutableError(
      `RabbitMQ refused (nacked) the ${what} of delivery ${message.id} (exchange ` +
        `${JSON.stringify(exchange)}, routing key ${JSON.stringify(routingKey)}): a queue it ` +
        `routes to is full (x-overflow reject-publish) or could not store it; the message goes ` +
        `back to ${JSON.stringify(this.#queue)}`,
      { cause: err },
    );
  }

  #handBackLater(message: AmqpMessage): void {
    const delay = Math.min(30_000, 1000 * 2 ** this.#republishFailures++);
    const timer = setTimeout(() => {
      this.#handBacks.delete(timer);
      const d = this.#delivery(message);
      if (d && this.#link.isLive(d)) this.#nack(message.raw, true);
    }, delay);
    // Never what keeps the process alive: closing the channel hands the message back anyway.
    timer.unref();
    this.#handBacks.add(timer);
  }

  /**
   * One confirmed, mandatory publish: false when the broker returned it (routed nowhere). A
   * confirm that does not come within 5000 ms (the default `timeout` of `enqueue`) fails it
   * with `SettleTimeoutError` (a broker stalled, or blocking publishers under a resource alarm,
   * with its heartbeats still flowing): the original goes back to its queue, as on any failure.
   */
  async #publishRouted(
    what: string,
    exchange: string,
    routingKey: string,
    message: AmqpMessage,
    headers: Record<string, unknown>,
  ): Promise<boolean> {
    const pub = this.#link.publisher;
    if (!pub) throw new NotConnectedError('RabbitMQ');
    const { properties } = message.raw;
    // The broker's count belongs to the old copy; DELIVERIES_HEADER already includes it.
    const { 'x-delivery-count': _old, ...fresh } = headers;
    const id = randomUUID();
    this.#awaiting.add(id);
    try {
      const confirmed = new Promise<void>((resolve, reject) => {
        pub.publish(
          exchange,
          routingKey,
          message.raw.content,
          {
            headers: { ...fresh, [PUBLISH_ID_HEADER]: id },
            persistent: true,
            mandatory: true,
            contentType: properties.contentType,
            messageId: properties.messageId,
            correlationId: properties.correlationId,
            type: properties.type,
          },
          (err) => (err ? reject(err) : resolve()),
        );
      });
      await rejectAfter(
        confirmed,
        PUBLISH_TIMEOUT,
        () =>
          new SettleTimeoutError(
            what === 'retry' ? 'retry' : 'dead-letter',
            `message ${message.id}`,
            PUBLISH_TIMEOUT,
            { within: "the publish's confirm wait" },
          ),
      );
      // RabbitMQ sends a mandatory message's basic.return before its basic.ack, on this channel.
      return !this.#returned.has(id);
    } finally {
      this.#awaiting.delete(id);
      this.#returned.delete(id);
    }
  }
}

/**
 * A message as the source hands it out. Its delivery (the channel generation it came on) is a
 * private field rather than a WeakMap entry: a WeakMap keyed by every message costs an
 * ephemeron-table insert per message and its entries go only with a full GC (see BENCHMARKS.md).
 */
class HeldMessage implements AmqpMessage {
  readonly id: string;
  readonly body: Uint8Array;
  readonly deliveryCount: number;
  readonly raw: ConsumeMessage;
  readonly redelivered: boolean;
  // Declared only: set when the producer sent some, absent (not undefined) otherwise.
  declare readonly headers?: Readonly<Record<string, string>>;
  readonly #delivery: Delivery;
  readonly #link: AmqpLink;

  constructor(d: Delivery, link: AmqpLink) {
    const { msg } = d;
    const table = msg.properties.headers;
    this.id = String(msg.fields.deliveryTag);
    this.body = msg.content;
    // Earlier failed deliveries (our header, carried by republished retries) plus the broker's
    // redeliveries of this copy (quorum queues only).
    this.deliveryCount =
      table === undefined
        ? 1
        : headerCount(table[DELIVERIES_HEADER]) + headerCount(table['x-delivery-count']) + 1;
    this.raw = msg;
    this.redelivered = msg.fields.redelivered;
    const own = producerHeaders(table);
    if (own !== undefined) (this as { headers?: Record<string, string> }).headers = own;
    this.#delivery = d;
    this.#link = link;
  }

  /** Its delivery, if `link` (the asking source's) is the one it came from. */
  deliveryOf(link: AmqpLink): Delivery | undefined {
    return link === this.#link ? this.#delivery : undefined;
  }
}

/**
 * A delivery whose channel closed: the broker requeued it and may hand it to another consumer.
 * `closedBy`, the broker's own reason for closing it when it gave one (amqplib's error for the
 * close frame: reply code as `code`, reply text in the message, e.g. a dead letter's 404
 * NOT_FOUND for a deleted exchange), is named in the message and is the `cause`, rather than
 * amqplib's bare "channel closed" that failed the operation in flight.
 */
function lost(
  message: AmqpMessage,
  operation: string,
  cause?: unknown,
  closedBy?: Error,
): LeaseLostError {
  const reason =
    closedBy === undefined
      ? 'its channel closed; RabbitMQ redelivers it'
      : `its channel closed (${closedBy.message}); RabbitMQ redelivers it`;
  const why = closedBy ?? cause;
  return new LeaseLostError(
    message.id,
    operation,
    reason,
    why === undefined ? undefined : { cause: why },
  );
}

function refusal(prefetch: number, concurrency: number): Error {
  try {
    return invalidOption(
      'prefetch',
      prefetch,
      `at most the consumer's concurrency (${concurrency}, the first fetch's max): RabbitMQ ` +
        'would push messages that wait in this process without counting as held',
      true,
    );
  } catch (error) {
    return error as Error;
  }
}

/**
 * The most bytes of encoded headers a republish carries: amqplib encodes a message's
 * properties in a 64 KiB buffer (a RangeError beyond it, for every attempt), less room for the
 * other properties (content type, ids: short strings) and the publish id header.
 */
const HEADERS_BUDGET = 65_536 - 2048;

/**
 * `original` plus `added` (in order of importance; undefined values skipped), as long as the
 * encoded table fits {@link HEADERS_BUDGET}: a string that does not fit whole is cut to what
 * is left, anything else that does not fit is left out. `undefined` when not even the first
 * added header fits: a message whose own headers fill the budget cannot be republished.
 */
function fitHeaders(
  original: Record<string, unknown> | undefined,
  added: [string, string | number | undefined][],
): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = { ...original };
  for (const [key] of added) delete out[key];
  let used = tableSize(out);
  for (const [i, [key, value]] of added.entries()) {
    if (value === undefined) continue;
    const size = 1 + Buffer.byteLength(key) + fieldSize(value);
    if (used + size <= HEADERS_BUDGET) {
      out[key] = value;
      used += size;
    } else if (
      typeof value === 'string' &&
      used + size - Buffer.byteLength(value) + 4 <= HEADERS_BUDGET
    ) {
      const room = HEADERS_BUDGET - (used + size - Buffer.byteLength(value)) - 3;
      const cut = Buffer.from(value)
        .subarray(0, room)
        .toString()
        .replace(/\uFFFD+$/, '');
      out[key] = `${cut}…`;
      used = HEADERS_BUDGET;
    } else if (i === 0) {
      return undefined;
    }
  }
  return out;
}

/** Bytes of an AMQP field table as amqplib encodes it (a slight overestimate). */
function tableSize(table: Record<string, unknown>): number {
  let size = 4;
  for (const [key, value] of Object.entries(table)) {
    if (value !== undefined) size += 1 + Buffer.byteLength(key) + fieldSize(value);
  }
  return size;
}

function fieldSize(value: unknown): number {
  if (value === null || typeof value === 'boolean') return 2;
  if (typeof value === 'number' || typeof value === 'bigint' || value instanceof Date) return 9;
  if (typeof value === 'string') return 5 + Buffer.byteLength(value);
  if (Buffer.isBuffer(value)) return 5 + value.length;
  if (Array.isArray(value)) return 5 + value.reduce((n: number, v) => n + fieldSize(v), 0);
  if (typeof value === 'object') {
    const typed = value as { '!'?: unknown; value?: unknown };
    if ('!' in typed) return 1 + fieldSize(typed.value);
    return 1 + tableSize(value as Record<string, unknown>);
  }
  return 5 + Buffer.byteLength(String(value));
}

function oneLine(text: string): string {
  const line = text.replace(/[\r\n]+/g, ' ');
  return line.length > 1024 ? `${line.slice(0, 1024)}…` : line;
}

/** Header with the time (ms since the epoch) of a message's first failed delivery. */
const FIRST_FAILED_HEADER = 'x-sluice-first-failed-at';
/** Header with the time (ms since the epoch) a message was dead-lettered. */
const FAILED_HEADER = 'x-sluice-failed-at';

/** The first failure's time: kept from an earlier retry's header, else now. */
function firstFailedAt(message: AmqpMessage): number {
  return headerCount(message.raw.properties.headers?.[FIRST_FAILED_HEADER]) || Date.now();
}

/** The producer's string headers: all but RabbitMQ's dead-letter and count headers and ours. */
const BROKER_HEADER = /^x-(sluice-|death$|delivery-count$|first-death-|last-death-)/i;

function producerHeaders(
  table: Record<string, unknown> | undefined,
): Record<string, string> | undefined {
  if (!table) return undefined;
  let own: Record<string, string> | undefined;
  for (const key in table) {
    const value = table[key];
    if (typeof value !== 'string' || BROKER_HEADER.test(key)) continue;
    own ??= {};
    own[key] = value;
  }
  return own;
}

/** A delivery-count header as a number: a positive count, else 0 (absent or garbled). */
function headerCount(v: unknown): number {
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : 0;
}
