/**
 * The JetStream source itself (see `index.ts` for the design notes and the public entry).
 *
 * @module
 */
import type { Consumer, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { LeaseLostError } from '../../errors.js';
import { errorMessage, errorName, errorStringCode } from '../dead-letter.js';
import {
  type BrokerMessage,
  type BrokerSource,
  closedError,
  type MessagingTarget,
} from '../source.js';
import type { CommonSourceOptions } from '../source-options.js';
import { AckRequests, publishError, type SettleOperation, settleError } from './acks.js';
import { DELAY_HEADER } from './enqueue.js';
import { fitHeaders, headerValue, producerHeaders } from './headers.js';
import { NatsPuller } from './puller.js';

/** Options of `natsSource()`. Durations in ms. */
export interface NatsSourceOptions extends CommonSourceOptions {
  /** An open connection to use (left open by `close()`). Default: connect to `servers`. */
  connection?: NatsConnection;
  /** Where to connect when no `connection` is given. @default '127.0.0.1:4222' */
  servers?: string | string[];
  /** The work stream's name (no dots). */
  stream: string;
  /** The durable consumer's name, shared by every process that splits the work. */
  consumer: string;
  /** Subject the work stream captures and the consumer filters on. @default `${stream}.work` */
  subject?: string;
  /** Subject dead letters are published to. @default `${stream}.dead` */
  deadLetterSubject?: string;
  /** Stream that stores dead letters (declared when `declare`). @default `${stream}_DEAD` */
  deadLetterStream?: string;
  /**
   * Create missing streams and the consumer, and bring an existing durable consumer in line
   * with what was asked: its `ack_wait` is set to `lease` and its `max_ack_pending` to
   * `maxAckPending` only when these are given (JetStream updates them in place; every process
   * sharing the consumer should ask the same, the last to start wins); unasked settings, such
   * as an operator's `max_deliver`, are kept, and with no `lease` the consumer's own `ack_wait`
   * is the lease. A server refusing the update fails the call (`ERR_INVALID_OPTION`, naming the
   * option). A consumer filtering another
   * subject, or without explicit acks, is refused with `ERR_INVALID_OPTION` naming both values.
   * `false` leaves everything as it is: the consumer's own `ack_wait` is the lease, and a
   * `lease` that differs from it is refused. @default true
   */
  declare?: boolean;
  /**
   * The work stream's `duplicate_window` when it is created here, ms: how long an
   * `enqueue(…, { key })` blocks the same key (see `enqueue`). Existing streams keep theirs.
   * @default 120000 (the server's default)
   */
  duplicateWindow?: number;
  /**
   * Consumer `max_ack_pending` (all processes together): set when the consumer is created, and
   * on an existing one when given. @default 10_000 at creation
   */
  maxAckPending?: number;
  /**
   * How long to wait for the server to confirm an ack, nak, term or publish. A settle (ack,
   * retry, release, dead letter) not confirmed by then fails with `SettleTimeoutError`
   * (`ERR_SETTLE_TIMEOUT`, nats.js's `TimeoutError` as `cause`). @default 5000
   */
  ackTimeout?: number;
  /**
   * Wait for the server to confirm each ack (a reply, as `ackAck()` waits for), so `acked`
   * counts only acks the server applied. `false` sends plain acks: 1.2-1.3x the throughput with
   * a trivial handler (see BENCHMARKS.md); a lost ack then shows up only as a redelivery (still
   * at-least-once). @default true
   */
  confirmAcks?: boolean;
}

/** A message held from JetStream. `id` is the stream sequence. */
export interface NatsMessage extends BrokerMessage {
  readonly subject: string;
  /** The client's message, for headers and metadata. Acknowledge through the source only. */
  readonly raw: JsMsg;
}

export type Resolved = Required<Omit<NatsSourceOptions, 'connection' | 'servers'>> &
  Pick<NatsSourceOptions, 'connection' | 'servers'>;

const ACK = new TextEncoder().encode('+ACK');
const NAK = new TextEncoder().encode('-NAK');
const TERM = new TextEncoder().encode('+TERM');

/** See the module doc. Build one with `natsSource()`. */
export class NatsSource implements BrokerSource<NatsMessage> {
  readonly heartbeatInterval: number;
  readonly messaging: MessagingTarget;
  readonly #nc: NatsConnection;
  readonly #owned: boolean;
  readonly #js: JetStreamClient;
  readonly #puller: NatsPuller;
  /** Confirmed acks, naks and terms: one inbox subscription for all their replies. */
  readonly #requests: AckRequests;
  readonly #o: Resolved;
  readonly #status: ReturnType<NatsConnection['status']>;
  #closing: Promise<void> | undefined;
  // When each held message's ack_wait last (re)started, as far as this process can tell (its
  // arrival, then each `working()`), is kept on the message (`HeldMessage`). JetStream accepts
  // an ack after it redelivered the message to another consumer (the ack then ends that
  // consumer's delivery), so this local clock is the only fence there is: past it,
  // ack/retry/dead-letter are refused here.
  /** ack_wait less a safety margin for the network and the server's own timer. */
  readonly #leaseMs: number;

  /** @internal use `natsSource()`. */
  constructor(
    nc: NatsConnection,
    owned: boolean,
    js: JetStreamClient,
    consumer: Consumer,
    o: Resolved,
  ) {
    this.#nc = nc;
    this.#owned = owned;
    this.#js = js;
    this.#o = o;
    this.messaging = { system: 'nats', destination: o.subject, consumerGroup: o.consumer };
    this.heartbeatInterval = Math.max(100, Math.floor(o.lease / 3));
    this.#leaseMs = o.lease - Math.min(1000, o.lease / 20);
    this.#puller = new NatsPuller(consumer, o.fetchWait);
    this.#requests = new AckRequests(nc, o.ackTimeout);
    this.#status = nc.status();
    void this.#watchConnection();
  }

  /** Messages delivered to this process and not yet handed to the consumer loop. */
  get buffered(): number {
    return this.#puller.buffered;
  }

  async fetch(max: number, signal: AbortSignal): Promise<NatsMessage[]> {
    // As the other sources do: a closed source fails its fetch with a misuse code (the consume
    // loop reports it once and stops) rather than returning nothing at once, in a loop.
    if (this.#closing) throw closedError('NATS');
    const arrivals = await this.#puller.take(max, signal, this.#o.fetchWait);
    const out: NatsMessage[] = [];
    for (const a of arrivals) {
      if (this.#dueLater(a.raw)) continue;
      out.push(new HeldMessage(a.raw, a.at));
    }
    return out;
  }

  ack(message: NatsMessage): Promise<void> {
    if (this.#expired(message)) return Promise.reject(new LeaseLostError(message.id, 'ack'));
    // Confirmed: what `ackAck()` sends (`+ACK` with a reply subject), resolved on the reply.
    return this.#confirm(message, ACK, 'ack', this.#o.confirmAcks);
  }

  /**
   * Acks a batch handler's successful messages: JetStream has no multiple ack, so still one
   * `+ACK` frame (confirmed as `ack`'s) per message, all in this turn's one write, but one
   * promise for the batch. A message past its lease (see `ack`) is not acked and gets a
   * `LeaseLostError` at its index.
   */
  async ackMany(messages: readonly NatsMessage[]): Promise<(Error | undefined)[] | undefined> {
    const n = messages.length;
    let refused: (Error | undefined)[] | undefined;
    const subjects: string[] = [];
    const sent: number[] = []; // index in `messages` of each subject
    for (let i = 0; i < n; i++) {
      const message = messages[i]!;
      const reply = (message.raw as unknown as { reply?: string }).reply;
      const error = this.#expired(message)
        ? new LeaseLostError(message.id, 'ack')
        : reply
          ? undefined
          : new TypeError('JetStream message has no reply subject: cannot acknowledge it');
      if (error === undefined) {
        subjects.push(reply!);
        sent.push(i);
      } else {
        refused ??= new Array<Error | undefined>(n).fill(undefined);
        refused[i] = error;
      }
    }
    const failed = await this.#requests.sendMany(subjects, ACK, this.#o.confirmAcks);
    if (failed === undefined) return refused;
    const out = refused ?? new Array<Error | undefined>(n).fill(undefined);
    for (let j = 0; j < failed.length; j++) {
      const error = failed[j];
      if (error === undefined) continue;
      const i = sent[j]!;
      out[i] = settleError(error, 'ack', messages[i]!.id, this.#o.ackTimeout);
    }
    return out;
  }

  async retry(message: NatsMessage, delayMs: number, _error?: Error): Promise<void> {
    this.#checkLease(message, 'retry');
    const payload =
      delayMs > 0 ? `-NAK ${JSON.stringify({ delay: Math.round(delayMs * 1e6) })}` : NAK;
    await this.#confirm(
      message,
      typeof payload === 'string' ? new TextEncoder().encode(payload) : payload,
      'retry',
    );
  }

  async deadLetter(message: NatsMessage, error: Error): Promise<void> {
    this.#checkLease(message, 'dead-letter');
    const code = errorStringCode(error);
    const msgID = `${this.#o.stream}:${message.id}`;
    // In order of importance: what does not fit next to the body under max_payload is cut
    // (the error text) or left out, so a message of the largest size the server takes can
    // still be dead-lettered (a full set of headers would fail its publish every time).
    const wanted: [string, string][] = [
      ['Nats-Msg-Id', msgID],
      ['Sluice-Source', `${this.#o.stream}:${message.id}:${message.subject}`],
      ['Sluice-Deliveries', String(message.deliveryCount)],
      ['Sluice-Error-Code', code === undefined ? '' : headerValue(code)],
      ['Sluice-Error-Name', headerValue(errorName(error))],
      ['Sluice-Error', headerValue(errorMessage(error))],
      // Last: the producer's own headers (its trace context, say), kept where they fit.
      ...Object.entries(producerHeaders(message.raw).headers ?? {}),
    ];
    const room = (this.#nc.info?.max_payload ?? Number.POSITIVE_INFINITY) - message.body.length;
    const h = headers();
    let fitted = false;
    for (const [key, value] of fitHeaders(wanted, room)) {
      if (key === 'Nats-Msg-Id') fitted = true;
      else h.set(key, value);
    }
    try {
      await this.#js.publish(this.#o.deadLetterSubject, message.body, {
        ...(h.keys().length > 0 ? { headers: h } : {}),
        // A redelivered message dead-lettered twice is stored once (when the id fits).
        ...(fitted ? { msgID } : {}),
        timeout: this.#o.ackTimeout,
      });
    } catch (error) {
      throw settleError(error as Error, 'dead-letter', message.id, this.#o.ackTimeout);
    }
    await this.#confirm(message, TERM, 'dead-letter');
  }

  /**
   * `+WPI` restarts the message's ack_wait on the server. If our last one (or the delivery) is
   * older than ack_wait — this process's event loop stalled — the server may have redelivered it
   * elsewhere already: report the lease lost rather than extend someone else's delivery.
   */
  async heartbeat(message: NatsMessage): Promise<boolean> {
    if (this.#expired(message)) return false;
    message.raw.working();
    HeldMessage.renew(message, performance.now());
    return true;
  }

  async release(message: NatsMessage): Promise<void> {
    await this.#confirm(message, NAK, 'release');
  }

  /**
   * Publishes one message to the work subject and waits for the stream to store it (a helper
   * for producers and tests; any JetStream publisher works): `PublishTimeoutError`
   * (`ERR_PUBLISH_TIMEOUT`) when it did not confirm within `ackTimeout`, `UnroutableError`
   * (`ERR_UNROUTABLE`) when no stream captures the subject, `NotConnectedError`
   * (`ERR_NOT_CONNECTED`) when the connection is closed.
   */
  async publish(body: Uint8Array | string): Promise<void> {
    const { subject, ackTimeout } = this.#o;
    await this.#js.publish(subject, body, { timeout: ackTimeout }).catch((error: unknown) => {
      throw publishError(error, subject, ackTimeout);
    });
  }

  async close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    // The iterator has stop() at run time; the public type only says AsyncIterable.
    (this.#status as { stop?: () => void }).stop?.();
    const left = await this.#puller.close();
    await Promise.allSettled(
      left.map((a) => this.#confirm(new HeldMessage(a.raw), NAK, 'release')),
    );
    this.#requests.close();
    if (this.#owned) await this.#nc.close();
  }

  /**
   * A delayed job delivered before it is due goes back with `-NAK` and the remaining delay (not
   * awaited: the server redelivers when due); true for those.
   */
  #dueLater(raw: JsMsg): boolean {
    const due = dueAt(raw);
    if (due === undefined) return false;
    const now = Date.now();
    if (due <= now) return false;
    const nak = `-NAK ${JSON.stringify({ delay: Math.ceil(due - now) * 1e6 })}`;
    void this.#confirm(new HeldMessage(raw), new TextEncoder().encode(nak), 'release').catch(
      () => {},
    );
    return true;
  }

  #expired(message: NatsMessage): boolean {
    const since = HeldMessage.since(message);
    return since !== undefined && performance.now() - since > this.#leaseMs;
  }

  #checkLease(message: NatsMessage, operation: string): void {
    if (this.#expired(message)) throw new LeaseLostError(message.id, operation);
  }

  /**
   * Sends an ack-family payload with a reply subject, so the server's reply confirms it (the
   * public API only confirms `+ACK`, `ackAck()`, at a higher cost: see `acks.ts`).
   */
  #confirm(
    message: NatsMessage,
    payload: Uint8Array,
    operation: SettleOperation,
    confirm = true,
  ): Promise<void> {
    // The reply subject is a getter of the client's message class; the public type lacks it.
    const reply = (message.raw as unknown as { reply?: string }).reply;
    if (!reply) {
      return Promise.reject(
        new TypeError('JetStream message has no reply subject: cannot acknowledge it'),
      );
    }
    return this.#requests.send(reply, payload, confirm, operation, message.id);
  }

  /** A pull request does not survive a lost connection: end it so a fresh one is sent. */
  async #watchConnection(): Promise<void> {
    for await (const s of this.#status) {
      if (s.type === 'disconnect') this.#puller.stopPull(false);
    }
  }
}

/** When a delayed job is due (ms since the epoch), from its store time and `Sluice-Delay`. */
function dueAt(raw: JsMsg): number | undefined {
  const delay = Number(raw.headers?.get(DELAY_HEADER));
  if (!raw.headers?.has(DELAY_HEADER) || !Number.isFinite(delay)) return undefined;
  return raw.info.timestampNanos / 1e6 + delay;
}

/**
 * A message as the source hands it out. When its ack_wait last started is a private field,
 * not a WeakMap entry keyed by the message: that cost an ephemeron-table insert per message,
 * whose entries go only with a full GC (see BENCHMARKS.md).
 */
class HeldMessage implements NatsMessage {
  readonly id: string;
  readonly body: Uint8Array;
  readonly deliveryCount: number;
  readonly subject: string;
  readonly raw: JsMsg;
  // Declared only: set when the producer sent some, absent (not undefined) otherwise.
  declare readonly headers?: Readonly<Record<string, string>>;
  /** `performance.now()` of the delivery or the last `working()`; undefined: not leased here. */
  #since: number | undefined;

  constructor(raw: JsMsg, since?: number) {
    const count = raw.info.deliveryCount;
    const delayed = raw.headers?.has(DELAY_HEADER) === true;
    this.id = String(raw.seq);
    this.body = raw.data;
    // A delayed job's early delivery (turned back) is not an attempt.
    this.deliveryCount = count > 1 && delayed ? count - 1 : count;
    this.subject = raw.subject;
    this.raw = raw;
    const { headers } = producerHeaders(raw);
    if (headers !== undefined) (this as { headers?: Record<string, string> }).headers = headers;
    this.#since = since;
  }

  static since(message: NatsMessage): number | undefined {
    return message instanceof HeldMessage ? message.#since : undefined;
  }

  static renew(message: NatsMessage, now: number): void {
    if (message instanceof HeldMessage) message.#since = now;
  }
}
