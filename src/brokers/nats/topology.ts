/**
 * Declares the JetStream objects a NATS source needs: a work-queue stream, a dead-letter stream
 * and one durable pull consumer. Internal to `sluice/nats`.
 *
 * @module
 */
import {
  AckPolicy,
  DeliverPolicy,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';

/** The work stream's `duplicate_window` when declared here, ms (the server's own default). */
export const DEFAULT_DUPLICATE_WINDOW = 120_000;

/** Names of everything the source reads from or writes to. */
export interface NatsTopology {
  stream: string;
  consumer: string;
  subject: string;
  deadLetterStream: string;
  deadLetterSubject: string;
  /** ms the server waits for an ack (or a `working()` heartbeat) before redelivering. */
  ackWait: number;
  /** Server-side cap on unacked messages for the consumer, across all processes. */
  maxAckPending: number;
  /** The work stream's duplicate window, ms (Nats-Msg-Id deduplication). */
  duplicateWindow: number;
}

/**
 * Creates whatever is missing. Existing objects are left as they are (a consumer that exists
 * with another `ack_wait` keeps it: we read it back so heartbeats follow the real value).
 *
 * @returns the consumer's effective ack wait, in ms.
 */
export async function declareNatsTopology(jsm: JetStreamManager, t: NatsTopology): Promise<number> {
  await ensureStream(jsm, t.stream, t.subject, RetentionPolicy.Workqueue, t.duplicateWindow);
  await ensureStream(jsm, t.deadLetterStream, t.deadLetterSubject, RetentionPolicy.Limits);
  const existing = await jsm.consumers.info(t.stream, t.consumer).catch(() => undefined);
  if (existing) return toMs(existing.config.ack_wait);
  const created = await jsm.consumers.add(t.stream, {
    durable_name: t.consumer,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: t.subject,
    ack_wait: nanos(t.ackWait),
    // Retries and dead-lettering are the consumer loop's job: the server must never drop a
    // message on its own after some number of deliveries.
    max_deliver: -1,
    max_ack_pending: t.maxAckPending,
  });
  return toMs(created.config.ack_wait);
}

async function ensureStream(
  jsm: JetStreamManager,
  name: string,
  subject: string,
  retention: RetentionPolicy,
  duplicateWindow?: number,
): Promise<void> {
  const info = await jsm.streams.info(name).catch(() => undefined);
  if (info) return;
  await jsm.streams.add({
    name,
    subjects: [subject],
    retention,
    storage: StorageType.File,
    ...(duplicateWindow === undefined ? {} : { duplicate_window: nanos(duplicateWindow) }),
  });
}

/** Nanoseconds (as the server reports them; absent = the server's 30 s default) to ms. */
export function toMs(ns: number | undefined): number {
  return ns === undefined ? 30_000 : Math.round(ns / 1e6);
}
