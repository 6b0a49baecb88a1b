/**
 * `sluice/nats`: a {@link BrokerSource} over a NATS JetStream durable pull consumer.
 *
 * - Fetches at most the free slots (one open pull request; see `puller.ts`): the process
 *   never holds more than the consumer loop's concurrency (documented constant: 0).
 * - `ack` waits for the server to confirm it (a `+ACK` with a reply subject, as `ackAck()`
 *   sends); `retry` is a `-NAK` with a delay and `release` a plain `-NAK`, both confirmed too.
 *   The frames issued in one event-loop turn are published together at its end (one socket
 *   write; JetStream has no multiple-ack), their replies come on one inbox subscription
 *   (`acks.ts`). `heartbeat` is `+WPI` (`working()`), sent every third of the consumer's
 *   `ack_wait` so a slow handler is not redelivered elsewhere.
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

import { jetstream } from '@nats-io/jetstream';
import {
  brokerName,
  invalidOption,
  numberAtLeast,
  optionalBoolean,
} from '../../internal/options.js';
import { BROKER_LIMITS, resolveCommon } from '../source-options.js';
import { connectNats, jetstreamManagerOf } from './connect.js';
import { NatsSource, type NatsSourceOptions, type Resolved } from './source.js';
import { filterSubject, publishSubject } from './subject.js';
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
export { type NatsMessage, NatsSource, type NatsSourceOptions } from './source.js';

/**
 * Connects (unless given a connection), declares the topology (unless `declare: false`) and
 * returns a source for `consume()`. Rejects with `NotConnectedError` (`ERR_NOT_CONNECTED`,
 * retryable) when the server cannot be reached or closes at once, `ConnectConfigError`
 * (`ERR_CONNECT_CONFIG`, not retryable) when what answers is not a NATS server, refuses the
 * login or has JetStream off, `ConnectTimeoutError` past `connectTimeout`; the client's error
 * when the consumer cannot be found or declared; `RangeError`/`TypeError` for bad options.
 *
 * @example
 * ```ts
 * const source = await natsSource({ stream: 'JOBS', consumer: 'workers' });
 * const consumer = consume(source, async (job) => handle(job), { concurrency: 32 });
 * ```
 */
export async function natsSource(opts: NatsSourceOptions): Promise<NatsSource> {
  const o = validate(opts);
  const owned = o.connection == null;
  const nc = o.connection ?? (await connectNats(o.servers ?? '127.0.0.1:4222', o.connectTimeout));
  try {
    const jsm = await jetstreamManagerOf(nc);
    const maxAckPendingGiven = opts.maxAckPending != null;
    const ackWaitGiven = opts.lease != null;
    let lease = o.lease;
    if (o.declare !== false) {
      lease = await declareNatsTopology(jsm, {
        ...o,
        ackWait: lease,
        maxAckPendingGiven,
        ackWaitGiven,
      });
    } else {
      // `declare: false` leaves the consumer as it is: a `lease` that disagrees with it is
      // refused (it would be ignored), none given follows the server's `ack_wait`.
      lease = toMs((await jsm.consumers.info(o.stream, o.consumer)).config.ack_wait);
      if (opts.lease != null && opts.lease !== lease) {
        invalidOption(
          'lease',
          opts.lease,
          `the ack_wait of consumer "${o.consumer}" on the server (${lease} ms), which declare: false leaves as it is`,
          true,
        );
      }
    }
    const js = jetstream(nc, { timeout: o.ackTimeout });
    const consumer = await js.consumers.get(o.stream, o.consumer);
    return new NatsSource(nc, owned, js, consumer, { ...o, lease });
  } catch (err) {
    if (owned) await nc.close();
    throw err;
  }
}

function validate(opts: NatsSourceOptions): Resolved {
  const name = { test: /^[^.\s*>]+$/, expected: 'a name without dots, spaces or wildcards' };
  brokerName('stream', opts?.stream, name);
  brokerName('consumer', opts.consumer, name);
  if (opts.subject != null) filterSubject('subject', opts.subject);
  if (opts.deadLetterSubject != null) publishSubject('deadLetterSubject', opts.deadLetterSubject);
  if (opts.deadLetterStream != null) brokerName('deadLetterStream', opts.deadLetterStream, name);
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
