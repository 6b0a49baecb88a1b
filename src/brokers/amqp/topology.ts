/**
 * The RabbitMQ objects an AMQP source uses, declared (idempotently) on every (re)connect.
 * Internal to `sluice/amqp`.
 *
 *   work queue ──(handler failed)──► publish to `<queue>.retry.<ms>` (TTL = ms) ──(expired)──► work queue
 *        └──(dead letter: published with the error, or rejected by anyone)──► `<queue>.dlx` ──► `<queue>.dead`
 *
 * Why one delay queue per delay value: RabbitMQ expires messages only at the head of a queue,
 * so a 10 s retry in front of a 100 ms retry would hold the short one back. Delays are rounded
 * up to two significant digits to keep the number of such queues small; each deletes itself
 * (`x-expires`) a minute after its last use.
 *
 * @module
 */
import type { Channel } from 'amqplib';

export interface AmqpTopology {
  queue: string;
  /** `quorum` queues count every delivery (`x-delivery-count`), crashes included. */
  queueType: 'classic' | 'quorum';
  deadLetterExchange: string;
  deadLetterQueue: string;
}

/** Unused delay queues are deleted this long (ms) after their last declaration. */
const RETRY_QUEUE_IDLE = 60_000;
/** Re-declare a delay queue at least this often (ms) so `x-expires` never fires under use. */
export const RETRY_REDECLARE = 30_000;

export async function declareAmqpTopology(ch: Channel, t: AmqpTopology): Promise<void> {
  await ch.assertExchange(t.deadLetterExchange, 'direct', { durable: true });
  await ch.assertQueue(t.deadLetterQueue, { durable: true });
  await ch.bindQueue(t.deadLetterQueue, t.deadLetterExchange, t.queue);
  await ch.assertQueue(t.queue, {
    durable: true,
    arguments: {
      'x-dead-letter-exchange': t.deadLetterExchange,
      'x-dead-letter-routing-key': t.queue,
      ...(t.queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : {}),
    },
  });
}

/** Rounds a delay up to two significant digits (1234 → 1300), at least 1 ms. */
export function retryBucket(delayMs: number): number {
  const ms = Math.max(1, Math.ceil(delayMs));
  const scale = 10 ** Math.max(0, Math.floor(Math.log10(ms)) - 1);
  return Math.ceil(ms / scale) * scale;
}

/** Declares the delay queue for `ms` and returns its name. */
export async function declareRetryQueue(ch: Channel, queue: string, ms: number): Promise<string> {
  const name = `${queue}.retry.${ms}`;
  await ch.assertQueue(name, {
    durable: true,
    arguments: {
      'x-message-ttl': ms,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': queue,
      'x-expires': ms + RETRY_QUEUE_IDLE,
    },
  });
  return name;
}
