/**
 * `enqueue` for RabbitMQ (see `sluice/amqp`).
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { ConfirmChannel } from 'amqplib';
import { invalidOption, numberAtLeast } from '../../internal/options.js';
import { tracedEnqueue } from '../../observability/enqueue-channel.js';
import {
  checkEnqueue,
  type EnqueueOptions,
  type EnqueueResult,
  encodePayload,
} from '../enqueue-options.js';
import { confirmWithin, PUBLISH_TIMEOUT } from './confirm.js';
import { declareRetryQueue, RETRY_REDECLARE, retryBucket } from './topology.js';

/** Where a RabbitMQ job goes. */
export interface AmqpTarget {
  /** A confirm channel (`connection.createConfirmChannel()` of amqplib). */
  channel: ConfirmChannel;
  /** The work queue (declared: an `amqpSource` does it; RabbitMQ drops messages to a missing queue). */
  queue: string;
  /**
   * Longest wait for the broker's confirm, ms (then `PublishTimeoutError`), a delayed job's
   * delay-queue declaration included: a broker that never confirms (stalled, or blocking
   * publishers under a resource alarm) fails the call instead of holding it for ever.
   * @default 5000
   */
  timeout?: number;
}

/** When each delay queue was last declared, per channel (ms epoch). */
const declared = new WeakMap<ConfirmChannel, Map<string, number>>();

/**
 * Sends one persistent job and waits for the broker's confirm (objects as JSON with
 * `contentType: application/json`, strings as UTF-8, bytes as they are).
 *
 * - `delay`: per-message TTL through a dead-letter exchange, the mechanism the source's retries
 *   use: the job goes to `<queue>.retry.<ms>` (a queue whose TTL is `ms` and whose dead-letter
 *   target is the work queue), `ms` being the delay rounded up to two significant digits
 *   (2000 → 2000, 2345 → 2400): it is handed out up to 10% late, plus the broker's expiry
 *   sweep (milliseconds). One queue per delay value, so a long delay never holds a short one
 *   back; each deletes itself a minute after its last use. The delayed-message exchange plugin
 *   is not used (it is not installed by default, and keeps its timers in Mnesia on one node).
 * - `key`: RabbitMQ has no deduplication (only a third-party plugin); passing `key` fails with
 *   `ERR_INVALID_OPTION` rather than being silently ignored. Deduplicate in the handler (it
 *   must be idempotent anyway) or use another broker.
 * - `headers`: AMQP message headers.
 *
 * @returns the message id it set (`properties.messageId`, a UUID); `deduplicated` is always false.
 * @throws TypeError/RangeError `ERR_INVALID_OPTION` for a bad option or `key`;
 *   `PublishTimeoutError` (`ERR_PUBLISH_TIMEOUT`) when no confirm came within `timeout` (the
 *   message may have been stored all the same); `UnroutableError` (`ERR_UNROUTABLE`) when the
 *   broker refused it (a nack: the queue is full with `x-overflow: reject-publish`, or could
 *   not store it); `NotConnectedError` (`ERR_NOT_CONNECTED`) when the channel is closed or
 *   closes before the confirm — amqplib's error as `cause`.
 * @example
 * ```ts
 * const channel = await conn.createConfirmChannel();
 * await enqueue({ channel, queue: 'jobs' }, { path: 'a.pdf' }, { delay: 2000 });
 * ```
 */
export async function enqueue(
  target: AmqpTarget,
  payload: unknown,
  options?: EnqueueOptions,
): Promise<EnqueueResult> {
  const { delay, key, headers: checked } = checkEnqueue(target, '{ channel, queue }', options);
  if (key !== undefined) {
    invalidOption('key', key, 'nothing: RabbitMQ has no message deduplication');
  }
  const { channel, queue } = target;
  const timeout = numberAtLeast('timeout', target.timeout, 1, { unit: 'ms' }) ?? PUBLISH_TIMEOUT;
  const body = encodePayload(payload); // misuse fails here, before a traced enqueue
  return tracedEnqueue('rabbitmq', queue, checked, async (headers) => {
    const messageId = randomUUID();
    const json = !(payload instanceof Uint8Array) && typeof payload !== 'string';
    // One deadline for the delay queue's declaration (an RPC: a stalled broker never answers it
    // either) and the publish's confirm; a declaration answered after it publishes nothing.
    let expired = false;
    await confirmWithin(
      async () => {
        const to = delay > 0 ? await delayQueue(channel, queue, retryBucket(delay)) : queue;
        if (expired) return;
        await new Promise<void>((resolve, reject) => {
          channel.sendToQueue(
            to,
            body,
            {
              persistent: true,
              messageId,
              ...(json ? { contentType: 'application/json' } : {}),
              ...(headers.length > 0 ? { headers: Object.fromEntries(headers) } : {}),
            },
            (err) => (err ? reject(err) : resolve()),
          );
        });
      },
      queue,
      timeout,
    ).finally(() => {
      expired = true;
    });
    return { id: messageId, deduplicated: false };
  });
}

async function delayQueue(channel: ConfirmChannel, queue: string, ms: number): Promise<string> {
  const seen = declared.get(channel) ?? new Map<string, number>();
  declared.set(channel, seen);
  const name = `${queue}.retry.${ms}`;
  const last = seen.get(name);
  if (last === undefined || Date.now() - last > RETRY_REDECLARE) {
    await declareRetryQueue(channel, queue, ms);
    seen.set(name, Date.now());
  }
  return name;
}
