/**
 * `enqueue` for NATS JetStream (see `sluice/nats`).
 *
 * @module
 */
import { jetstream, type PubAck } from '@nats-io/jetstream';
import { type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import { numberAtLeast } from '../../internal/options.js';
import { tracedEnqueue } from '../../observability/enqueue-channel.js';
import {
  checkEnqueue,
  type EnqueueOptions,
  type EnqueueResult,
  encodePayload,
} from '../enqueue-options.js';
import { publishError } from './acks.js';
import { publishSubject } from './subject.js';

/** Where a NATS job goes. */
export interface NatsTarget {
  /** An open connection (`connect()` of `@nats-io/transport-node`). */
  connection: NatsConnection;
  /** The work subject (the source's `subject`, by default `<stream>.work`). */
  subject: string;
  /** Longest wait for the stream's PubAck, ms (then `PublishTimeoutError`). @default 5000 */
  timeout?: number;
}

/**
 * Header of a delayed job: its delay in ms, counted from the time the stream stored it (the
 * server's clock). The source turns an early delivery back (see {@link enqueue}).
 */
export const DELAY_HEADER = 'Sluice-Delay';

/**
 * Publishes one job and waits for the stream's PubAck (objects as JSON, strings as UTF-8,
 * bytes as they are). The stream must exist: create a source first (it declares the
 * topology), or declare it yourself.
 *
 * - `delay`: nats-server 2.9–2.11 cannot schedule a message, so the job is stored at once with
 *   a `Sluice-Delay` header; a source that receives it early turns it back with `-NAK` and the
 *   remaining delay (no handler runs), and JetStream redelivers it when due — within tens of
 *   ms while a source is fetching. That early delivery counts on the server: `deliveryCount`
 *   is reported one lower for a delayed job, so a delayed job may get one extra attempt when
 *   none was early. Due = the stream's store time + delay, read on the consumer's clock.
 *   Measured on nats-server 2.9: a turned-back job counts in the consumer's
 *   `num_ack_pending` until it is due, so more waiting delayed jobs than `maxAckPending`
 *   (default 10000) stop the consumer from receiving anything else until some are due —
 *   keep delayed NATS jobs well under it (or raise it).
 * - `key`: the `Nats-Msg-Id` header. JetStream drops a second publish with the same id
 *   within the stream's duplicate window (2 minutes unless the stream was declared with
 *   another `duplicateWindow`), counted from the first publish whether or not the job is done:
 *   after the window the key may be enqueued again, before it never.
 * - `headers`: message headers.
 *
 * @returns the stream sequence, or, deduplicated, the pending one's sequence (from the PubAck).
 * @throws TypeError/RangeError `ERR_INVALID_OPTION` for a bad option; `PublishTimeoutError`
 *   (`ERR_PUBLISH_TIMEOUT`) when no PubAck came within `timeout`; `UnroutableError`
 *   (`ERR_UNROUTABLE`) when no stream captures the subject (no responders; nothing stored);
 *   `NotConnectedError` (`ERR_NOT_CONNECTED`) when the connection is closed or draining —
 *   nats.js's error as `cause`.
 * @example
 * ```ts
 * await enqueue({ connection: nc, subject: 'JOBS.work' }, { path: 'a.pdf' }, { key: 'a.pdf' });
 * ```
 */
export async function enqueue(
  target: NatsTarget,
  payload: unknown,
  options?: EnqueueOptions,
): Promise<EnqueueResult> {
  const { delay, key, headers: checked } = checkEnqueue(target, '{ connection, subject }', options);
  publishSubject('target.subject', target.subject);
  const timeout = numberAtLeast('timeout', target.timeout, 1, { unit: 'ms' }) ?? 5000;
  const body = encodePayload(payload); // misuse fails here, before a traced enqueue
  return tracedEnqueue('nats', target.subject, checked, async (headers) => {
    const h = natsHeaders();
    for (const [name, value] of headers) h.set(name, value);
    if (delay > 0) h.set(DELAY_HEADER, String(Math.ceil(delay)));
    let ack: PubAck;
    try {
      ack = await jetstream(target.connection).publish(target.subject, body, {
        timeout,
        ...(h.keys().length > 0 ? { headers: h } : {}),
        ...(key === undefined ? {} : { msgID: key }),
      });
    } catch (error) {
      throw publishError(error, target.subject, timeout);
    }
    return { id: String(ack.seq), deduplicated: ack.duplicate };
  });
}
