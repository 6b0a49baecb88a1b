/**
 * `sluice/nats`: a {@link BrokerSource} over a NATS JetStream durable pull consumer.
 *
 * - Fetches at most the free slots (one open pull request; see `nats-puller.ts`): the process
 *   never holds more than the consumer loop's concurrency (documented constant: 0).
 * - `ack` waits for the server to confirm it (`ackAck`); `retry` is a `-NAK` with a delay and
 *   `release` a plain `-NAK`, both confirmed too; `heartbeat` is `+WPI` (`working()`), sent every
 *   third of the consumer's `ack_wait` so a slow handler is not redelivered elsewhere.
 * - `deadLetter` first publishes the body to the dead-letter subject (PubAck awaited), with the
 *   error in `Sluice-Error*` headers, then terminates the original (`+TERM`). The headers are
 *   cut to fit next to the body under the server's `max_payload` (the error text first, then
 *   whole headers): a message of the largest size the server takes is still dead-lettered.
 * - `close()` drains the open pull (`UNSUB` and a round trip) so messages the server sent
 *   before it saw the `UNSUB` are received, and naks everything fetched and not run: none is
 *   left to wait out `ack_wait`.
 * - `deliveryCount` is the server's count from the message metadata.
 * - Lease: JetStream accepts an ack (or nak, or term) for a message it has meanwhile redelivered
 *   to another consumer, ending that delivery. A local clock narrows this: once `ack_wait` (less
 *   a 5% margin) passed since the delivery or the last `working()`, the heartbeat reports the
 *   lease lost and ack/retry/dead-letter reject with `LeaseLostError`, in-process.
 * - At-least-once: a crash, a lost connection or a missed ack redelivers; handlers must be
 *   idempotent. The backlog stays in the stream.
 *
 * @module
 */

import {
  type Consumer,
  type JetStreamClient,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { LeaseLostError } from '../../errors.js';
import {
  invalidOption,
  nonEmptyString,
  numberAtLeast,
  optionalBoolean,
} from '../../internal/options.js';
import { errorMessage, errorName, errorStringCode } from '../dead-letter.js';
import { type BrokerMessage, type BrokerSource, closedError } from '../source.js';
import { BROKER_LIMITS, type CommonSourceOptions, resolveCommon } from '../source-options.js';
import { connectNats } from './connect.js';
import { DELAY_HEADER } from './enqueue.js';
import { NatsPuller } from './puller.js';
import { DEFAULT_DUPLICATE_WINDOW, declareNatsTopology, toMs } from './topology.js';

// The shared consumer, so that one subpath import is enough: `import { consume, … } from 'sluice/nats'`.
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
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterListOptions,
  type DeadLetterPage,
  type DeadLetterSelection,
  type DeadLetters,
  type NatsDeadLettersOptions,
  natsDeadLetters,
} from './dead-letters.js';
export { DELAY_HEADER, enqueue, type NatsTarget } from './enqueue.js';

/** Options of {@link natsSource}. Durations in ms. */
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
  /** Create missing streams and the consumer. @default true */
  declare?: boolean;
  /**
   * The work stream's `duplicate_window` when it is created here, ms: how long an
   * `enqueue(…, { key })` blocks the same key (see `enqueue`). Existing streams keep theirs.
   * @default 120000 (the server's default)
   */
  duplicateWindow?: number;
  /** Consumer `max_ack_pending` when created here (all processes together). @default 10_000 */
  maxAckPending?: number;
  /** How long to wait for the server to confirm an ack, nak, term or publish. @default 5000 */
  ackTimeout?: number;
  /**
   * Wait for the server to confirm each ack (`ackAck`), so `acked` counts only acks the server
   * applied. `false` sends plain acks: about 1.5x the throughput (see BENCHMARKS.md); a lost ack
   * then shows up only as a redelivery (still at-least-once). @default true
   */
  confirmAcks?: boolean;
}

/** A message held from JetStream. `id` is the stream sequence. */
export interface NatsMessage extends BrokerMessage {
  readonly subject: string;
  /** The client's message, for headers and metadata. Acknowledge through the source only. */
  readonly raw: JsMsg;
}

/**
 * Connects (unless given a connection), declares the topology (unless `declare: false`) and
 * returns a source for `consume()`. Throws the client's error when the server or the consumer
 * cannot be reached; throws `RangeError`/`TypeError` for bad options.
 *
 * @example
 * ```ts
 * const source = await natsSource({ stream: 'JOBS', consumer: 'workers' });
 * const consumer = consume(source, async (job) => handle(job), { concurrency: 32 });
 * ```
 */
export async function natsSource(opts: NatsSourceOptions): Promise<NatsSource> {
  const o = validate(opts);
  const owned = o.connection === undefined;
  const nc = o.connection ?? (await connectNats(o.servers ?? '127.0.0.1:4222', o.connectTimeout));
  try {
    const jsm = await jetstreamManager(nc);
    let lease = o.lease;
    if (o.declare !== false) lease = await declareNatsTopology(jsm, { ...o, ackWait: lease });
    else lease = toMs((await jsm.consumers.info(o.stream, o.consumer)).config.ack_wait);
    const js = jetstream(nc, { timeout: o.ackTimeout });
    const consumer = await js.consumers.get(o.stream, o.consumer);
    return new NatsSource(nc, owned, js, consumer, { ...o, lease });
  } catch (err) {
    if (owned) await nc.close();
    throw err;
  }
}

type Resolved = Required<Omit<NatsSourceOptions, 'connection' | 'servers'>> &
  Pick<NatsSourceOptions, 'connection' | 'servers'>;

function validate(opts: NatsSourceOptions): Resolved {
  const name = { test: /^[^.\s*>]+$/, expected: 'a name without dots, spaces or wildcards' };
  nonEmptyString('stream', opts?.stream, name);
  nonEmptyString('consumer', opts.consumer, name);
  // A pull's `expires` is at least 1 s; so is an `ack_wait` worth heartbeating.
  const common = resolveCommon(opts, BROKER_LIMITS.nats);
  numberAtLeast('maxAckPending', opts.maxAckPending, 1, { integer: true });
  numberAtLeast('duplicateWindow', opts.duplicateWindow, 100, { unit: 'ms' });
  numberAtLeast('ackTimeout', opts.ackTimeout, 1, { unit: 'ms' });
  const { servers } = opts;
  const listed = Array.isArray(servers) ? servers : [servers];
  if (servers != null && !listed.every((s) => typeof s === 'string' && s !== '')) {
    invalidOption('servers', servers, 'a "host:port" string or an array of them');
  }
  return {
    ...opts,
    subject: opts.subject ?? `${opts.stream}.work`,
    deadLetterSubject: opts.deadLetterSubject ?? `${opts.stream}.dead`,
    deadLetterStream: opts.deadLetterStream ?? `${opts.stream}_DEAD`,
    declare: optionalBoolean('declare', opts.declare) ?? true,
    ...common,
    maxAckPending: opts.maxAckPending ?? 10_000,
    duplicateWindow: opts.duplicateWindow ?? DEFAULT_DUPLICATE_WINDOW,
    ackTimeout: opts.ackTimeout ?? 5000,
    confirmAcks: optionalBoolean('confirmAcks', opts.confirmAcks) ?? true,
  };
}

/**
 * The headers of `wanted` (in order of importance; empty values skipped) that fit in `room`
 * bytes as NATS encodes them (`NATS/1.0`, then `\r\nKey: value` each, then `\r\n\r\n`); the
 * last one that does not fit whole (the error text) is cut to what is left.
 */
function fitHeaders(wanted: [string, string][], room: number): [string, string][] {
  const out: [string, string][] = [];
  let used = 12; // `NATS/1.0` and the final blank line
  for (const [key, value] of wanted) {
    if (value === '') continue;
    const fixed = key.length + 4; // \r\n, ': '
    const size = Buffer.byteLength(value);
    if (used + fixed + size <= room) {
      out.push([key, value]);
      used += fixed + size;
    } else if (key === 'Sluice-Error' && room - used - fixed - 3 > 0) {
      // Cut by bytes (the text may be UTF-8), dropping a character cut in two; `…` is 3 bytes.
      const bytes = Buffer.from(value).subarray(0, room - used - fixed - 3);
      const cut = bytes.toString().replace(/\uFFFD+$/, '');
      out.push([key, `${cut}…`]);
      used += fixed + Buffer.byteLength(cut) + 3;
    }
  }
  return out;
}

/** Header values must be one line; long errors are cut. */
function headerValue(text: string): string {
  const line = text.replace(/[\r\n]+/g, ' ');
  return line.length > 1024 ? `${line.slice(0, 1024)}…` : line;
}

const NAK = new TextEncoder().encode('-NAK');
const TERM = new TextEncoder().encode('+TERM');

/** See the module doc. Build one with {@link natsSource}. */
export class NatsSource implements BrokerSource<NatsMessage> {
  readonly heartbeatInterval: number;
  readonly #nc: NatsConnection;
  readonly #owned: boolean;
  readonly #js: JetStreamClient;
  readonly #puller: NatsPuller;
  readonly #o: Resolved;
  readonly #status: ReturnType<NatsConnection['status']>;
  #closing: Promise<void> | undefined;
  /**
   * When each held message's ack_wait last (re)started, as far as this process can tell: its
   * arrival, then each `working()`. JetStream accepts an ack after it redelivered the message to
   * another consumer (the ack then ends that consumer's delivery), so this local clock is the
   * only fence there is: past it, ack/retry/dead-letter are refused here.
   */
  readonly #leases = new WeakMap<NatsMessage, number>();
  /** ack_wait less a safety margin for the network and the server's own timer. */
  readonly #leaseMs: number;

  /** @internal use {@link natsSource}. */
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
    this.heartbeatInterval = Math.max(100, Math.floor(o.lease / 3));
    this.#leaseMs = o.lease - Math.min(1000, o.lease / 20);
    this.#puller = new NatsPuller(consumer, o.fetchWait);
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
    const msgs = await this.#puller.take(max, signal, this.#o.fetchWait);
    return this.#turnBackEarly(msgs).map((raw) => {
      const message = toMessage(raw);
      this.#leases.set(message, this.#puller.arrived.get(raw) ?? performance.now());
      return message;
    });
  }

  async ack(message: NatsMessage): Promise<void> {
    this.#checkLease(message, 'ack');
    if (!this.#o.confirmAcks) return message.raw.ack();
    await message.raw.ackAck({ timeout: this.#o.ackTimeout });
  }

  async retry(message: NatsMessage, delayMs: number, _error?: Error): Promise<void> {
    this.#checkLease(message, 'retry');
    const payload =
      delayMs > 0 ? `-NAK ${JSON.stringify({ delay: Math.round(delayMs * 1e6) })}` : NAK;
    await this.#confirm(
      message,
      typeof payload === 'string' ? new TextEncoder().encode(payload) : payload,
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
    ];
    const room = (this.#nc.info?.max_payload ?? Number.POSITIVE_INFINITY) - message.body.length;
    const h = headers();
    let fitted = false;
    for (const [key, value] of fitHeaders(wanted, room)) {
      if (key === 'Nats-Msg-Id') fitted = true;
      else h.set(key, value);
    }
    await this.#js.publish(this.#o.deadLetterSubject, message.body, {
      ...(h.keys().length > 0 ? { headers: h } : {}),
      // A redelivered message dead-lettered twice is stored once (when the id fits).
      ...(fitted ? { msgID } : {}),
      timeout: this.#o.ackTimeout,
    });
    await this.#confirm(message, TERM);
  }

  /**
   * `+WPI` restarts the message's ack_wait on the server. If our last one (or the delivery) is
   * older than ack_wait — this process's event loop stalled — the server may have redelivered it
   * elsewhere already: report the lease lost rather than extend someone else's delivery.
   */
  async heartbeat(message: NatsMessage): Promise<boolean> {
    if (this.#expired(message)) return false;
    message.raw.working();
    this.#leases.set(message, performance.now());
    return true;
  }

  async release(message: NatsMessage): Promise<void> {
    await this.#confirm(message, NAK);
  }

  /**
   * Publishes one message to the work subject and waits for the stream to store it (a helper
   * for producers and tests; any JetStream publisher works).
   */
  async publish(body: Uint8Array | string): Promise<void> {
    await this.#js.publish(this.#o.subject, body, { timeout: this.#o.ackTimeout });
  }

  async close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    // The iterator has stop() at run time; the public type only says AsyncIterable.
    (this.#status as { stop?: () => void }).stop?.();
    const left = await this.#puller.close();
    await Promise.allSettled(left.map((m) => this.#confirm(toMessage(m), NAK)));
    if (this.#owned) await this.#nc.close();
  }

  /**
   * Delayed jobs delivered before they are due go back with `-NAK` and the remaining delay (not
   * awaited: the server redelivers when due); the rest are handed out.
   */
  #turnBackEarly(msgs: JsMsg[]): JsMsg[] {
    const now = Date.now();
    return msgs.filter((raw) => {
      const due = dueAt(raw);
      if (due === undefined || due <= now) return true;
      const nak = `-NAK ${JSON.stringify({ delay: Math.ceil(due - now) * 1e6 })}`;
      void this.#confirm(toMessage(raw), new TextEncoder().encode(nak)).catch(() => {});
      return false;
    });
  }

  #expired(message: NatsMessage): boolean {
    const since = this.#leases.get(message);
    return since !== undefined && performance.now() - since > this.#leaseMs;
  }

  #checkLease(message: NatsMessage, operation: string): void {
    if (this.#expired(message)) throw new LeaseLostError(message.id, operation);
  }

  /**
   * Sends an ack-family payload as a request, so the server's reply confirms it. The reply
   * subject is the client's private field: the public API only confirms `+ACK` (`ackAck`).
   */
  async #confirm(message: NatsMessage, payload: Uint8Array): Promise<void> {
    const reply = (message.raw as unknown as { reply?: string }).reply;
    if (!reply)
      throw new TypeError('JetStream message has no reply subject: cannot acknowledge it');
    await this.#nc.request(reply, payload, { timeout: this.#o.ackTimeout });
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

function toMessage(raw: JsMsg): NatsMessage {
  const count = raw.info.deliveryCount;
  return {
    id: String(raw.seq),
    body: raw.data,
    // A delayed job's early delivery (turned back) is not an attempt.
    deliveryCount: count > 1 && raw.headers?.has(DELAY_HEADER) ? count - 1 : count,
    subject: raw.subject,
    raw,
  };
}
