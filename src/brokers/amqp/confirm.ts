/**
 * Waiting for RabbitMQ's publisher confirm within a bound, with its failures coded (internal):
 * `enqueue`, a source's `publish`, and a dead-letter `replay`.
 *
 * @module
 */
import type { ConfirmChannel } from 'amqplib';
import { NotConnectedError, PublishTimeoutError, UnroutableError } from '../../errors.js';
import { rejectAfter } from '../connect-deadline.js';

/**
 * The longest wait for a publish's confirm when none is given, ms: the same as NATS's wait for
 * a PubAck (nats.js's default).
 */
export const PUBLISH_TIMEOUT = 5000;

/** amqplib's error for a publish the broker refused (`basic.nack`). */
export function isNack(error: unknown): error is Error {
  return error instanceof Error && error.message === 'message nacked';
}

/**
 * amqplib's errors for a publish on a closed (or closing) channel — an `IllegalOperationError`
 * thrown by `publish` — and for a confirm lost when the channel closed under it.
 */
export function isChannelClosed(error: unknown): error is Error {
  return (
    error instanceof Error &&
    (error.name === 'IllegalOperationError' || error.message === 'channel closed')
  );
}

/**
 * `confirmed` (a publish's confirm, or `waitForConfirms()`), within `timeout` ms, its failures
 * coded: no confirm in time → `PublishTimeoutError`; a nack → `UnroutableError` (the broker
 * refused the message: a queue it routes to is full with `x-overflow: reject-publish`, or could
 * not store it); the channel closed → `NotConnectedError`. amqplib's error is the `cause`.
 * `queue` is the destination named in the messages; `then`, what became of the message(s),
 * ends a nack's. The confirm may still come after a timeout (it is then ignored): the message
 * may have been stored all the same.
 */
export async function confirmWithin<T>(
  confirmed: () => Promise<T>,
  queue: string,
  timeout: number,
  then = '',
): Promise<T> {
  const where = `RabbitMQ queue ${JSON.stringify(queue)}`;
  try {
    return await rejectAfter(confirmed(), timeout, () => new PublishTimeoutError(where, timeout));
  } catch (error) {
    if (error instanceof PublishTimeoutError) throw error;
    if (isNack(error)) {
      throw new UnroutableError(
        `RabbitMQ refused (nacked) the publish to queue ${JSON.stringify(queue)}: the queue is full (x-overflow reject-publish) or could not store it${then}`,
        { cause: error },
      );
    }
    if (isChannelClosed(error)) {
      throw new NotConnectedError(
        'RabbitMQ',
        `the channel publishing to queue ${JSON.stringify(queue)} is closed: ${error.message}`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** One persistent message to `queue` through `channel`, and its confirm (see {@link confirmWithin}). */
export function sendConfirmed(
  channel: ConfirmChannel,
  queue: string,
  body: Buffer,
  options: Parameters<ConfirmChannel['sendToQueue']>[2],
  timeout: number,
): Promise<void> {
  return confirmWithin(
    () =>
      new Promise<void>((resolve, reject) => {
        channel.sendToQueue(queue, body, options, (err) => (err ? reject(err) : resolve()));
      }),
    queue,
    timeout,
  );
}
