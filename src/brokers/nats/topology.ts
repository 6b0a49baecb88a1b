/**
 * Declares the JetStream objects a NATS source needs: a work-queue stream, a dead-letter stream
 * and one durable pull consumer. Internal to `sluice/nats`.
 *
 * @module
 */
import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerUpdateConfig,
  DeliverPolicy,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { invalidOption } from '../../internal/options.js';

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
  /** Whether `maxAckPending` was given (an existing consumer keeps its own otherwise). */
  maxAckPendingGiven: boolean;
  /** Whether `lease` was given (an existing consumer keeps its own `ack_wait` otherwise). */
  ackWaitGiven: boolean;
  /** The work stream's duplicate window, ms (Nats-Msg-Id deduplication). */
  duplicateWindow: number;
}

/**
 * Creates whatever is missing, and brings an existing durable consumer in line with the
 * options (see {@link reconcileConsumer}). Existing streams are left as they are.
 *
 * @returns the consumer's effective ack wait, in ms.
 */
export async function declareNatsTopology(jsm: JetStreamManager, t: NatsTopology): Promise<number> {
  await ensureStream(jsm, t.stream, t.subject, RetentionPolicy.Workqueue, t.duplicateWindow);
  await ensureStream(jsm, t.deadLetterStream, t.deadLetterSubject, RetentionPolicy.Limits);
  const existing = await jsm.consumers.info(t.stream, t.consumer).catch(() => undefined);
  if (existing) return reconcileConsumer(jsm, t, existing.config);
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

/**
 * A durable consumer that exists already (made by an earlier deployment, another process or an
 * operator) keeps its settings unless an option asks otherwise: its `ack_wait` is set to
 * `lease` and its `max_ack_pending` to `maxAckPending` only when that option was given and
 * differs (JetStream updates both in place); anything not asked for — `max_deliver` included —
 * stays the operator's. A server that refuses the update (an account without the permission to
 * create consumers) fails the call with `ERR_INVALID_OPTION` naming the option: pass
 * `declare: false` and no `lease` to use the server's values. What cannot be changed on it (its
 * ack policy, or a filter on another subject, which a consumer in use should not have switched
 * under it) is refused with `ERR_INVALID_OPTION` naming the option, the value asked for and the
 * server's.
 *
 * @returns the consumer's ack wait after the update, in ms.
 */
async function reconcileConsumer(
  jsm: JetStreamManager,
  t: NatsTopology,
  config: ConsumerConfig,
): Promise<number> {
  if (config.ack_policy !== AckPolicy.Explicit) {
    invalidOption(
      'consumer',
      t.consumer,
      `a durable consumer with ack_policy "explicit" (the server's "${t.consumer}" has "${config.ack_policy}"; it cannot be changed: use another consumer name)`,
    );
  }
  // No filter at all takes the whole work stream, which captures `subject` when declared here.
  const filter = config.filter_subjects?.join(',') || config.filter_subject || '';
  if (filter !== '' && filter !== t.subject) {
    invalidOption(
      'subject',
      t.subject,
      `the filter subject of the existing consumer "${t.consumer}" ("${filter}" on the server; a consumer's filter is not changed here: delete the consumer or use another name)`,
    );
  }
  const update: ConsumerUpdateConfig = {};
  if (t.ackWaitGiven && toMs(config.ack_wait) !== t.ackWait) update.ack_wait = nanos(t.ackWait);
  if (t.maxAckPendingGiven && config.max_ack_pending !== t.maxAckPending) {
    update.max_ack_pending = t.maxAckPending;
  }
  if (Object.keys(update).length === 0) return toMs(config.ack_wait);
  let updated: { config: ConsumerConfig };
  try {
    updated = await jsm.consumers.update(t.stream, t.consumer, update);
  } catch (error) {
    const option = update.ack_wait === undefined ? 'maxAckPending' : 'lease';
    return invalidOption(
      option,
      option === 'lease' ? t.ackWait : t.maxAckPending,
      `what the existing consumer "${t.consumer}" has, or a server that lets this account update it (it refused: ${(error as Error)?.message}); pass declare: false without ${option} to use the server's`,
    );
  }
  return toMs(updated.config.ack_wait);
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
