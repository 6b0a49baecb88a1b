/**
 * The channels of `consume()`'s message outcomes, the same for every broker (the consumer loop
 * in brokers/consumer.ts is the one place that settles a message with its broker).
 *
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import { errorStringCode } from '../brokers/dead-letter.js';
import type { PoolEventBase } from './channels.js';

/**
 * How the consumer settled a message with its broker: `acked` after success, `retried` (handed
 * back for a later delivery), `deadLettered`, `released` (fetched, never started: handed back
 * at a drain), `canceled` (running at a drain deadline or abort: handed back), `leaseLost`
 * (another consumer owns it now: a heartbeat said so, or the broker refused the settle),
 * `unsettled` (its handler finished but the ack, retry or dead letter failed for another reason —
 * an outage, a settle timeout: the broker delivers it again).
 */
export type MessageOutcome =
  | 'acked'
  | 'retried'
  | 'deadLettered'
  | 'released'
  | 'canceled'
  | 'leaseLost'
  | 'unsettled';

/** What every message event carries. `kind` is always `'consume'`. */
export interface MessageEventBase extends PoolEventBase {
  /** The broker's message id (a stream entry id, a NATS sequence, a row id, a delivery tag). */
  readonly id: string;
  /** This delivery's count, from 1. */
  readonly deliveryCount: number;
}

/**
 * On {@link SLUICE_MESSAGE_SETTLED}: the broker confirmed the consumer's settle (for
 * `leaseLost`: the loss was detected; for `unsettled`: the settle failed, `error` says why, and
 * it went to `onError` too). Published once per delivery.
 */
export interface MessageSettledMessage extends MessageEventBase {
  readonly outcome: MessageOutcome;
  /**
   * The handler's failure for `retried` and `deadLettered` (malformed: `MalformedMessageError`);
   * for `unsettled`, the settle's failure (e.g. `SettleTimeoutError`, `NotConnectedError`).
   */
  readonly error: Error | undefined;
}

/** On {@link SLUICE_MESSAGE_DEAD_LETTERED}: a message was moved to the dead letter. */
export interface MessageDeadLetteredMessage extends MessageEventBase {
  readonly error: Error;
  /** True for a message that could not be decoded (or was too big): it never ran. */
  readonly malformed: boolean;
}

/** On {@link SLUICE_MESSAGE_LEASE_LOST}: the consumer stopped settling a message it lost. */
export interface MessageLeaseLostMessage extends MessageEventBase {
  /** `'heartbeat'`: a heartbeat reported the loss; `'settle'`: the broker refused the settle. */
  readonly detectedBy: 'heartbeat' | 'settle';
}

/** Channel name: every message outcome, message {@link MessageSettledMessage}. */
export const SLUICE_MESSAGE_SETTLED = 'sluice:message:settled';
/** Channel name: dead-lettered messages, message {@link MessageDeadLetteredMessage}. */
export const SLUICE_MESSAGE_DEAD_LETTERED = 'sluice:message:dead-lettered';
/** Channel name: lost leases, message {@link MessageLeaseLostMessage}. */
export const SLUICE_MESSAGE_LEASE_LOST = 'sluice:message:lease-lost';

export const messageSettledChannel = diagnostics.channel(SLUICE_MESSAGE_SETTLED);
export const deadLetteredChannel = diagnostics.channel(SLUICE_MESSAGE_DEAD_LETTERED);
export const leaseLostChannel = diagnostics.channel(SLUICE_MESSAGE_LEASE_LOST);

/** What the consumer passes to identify a message. */
interface MessageRef {
  readonly id: string;
  readonly deliveryCount: number;
}

/** Publishes an outcome (and its dedicated channel's event), only when someone listens. */
export function publishMessageOutcome(
  name: string,
  message: MessageRef,
  outcome: MessageOutcome,
  error: Error | undefined,
  detectedBy: 'heartbeat' | 'settle' = 'settle',
): void {
  const settled = messageSettledChannel.hasSubscribers;
  const dead = outcome === 'deadLettered' && deadLetteredChannel.hasSubscribers;
  const lost = outcome === 'leaseLost' && leaseLostChannel.hasSubscribers;
  if (!settled && !dead && !lost) return;
  // Read once, in a try: a custom source's message (or a handler's error) whose getter throws
  // must not throw out of the consumer's settle (an unhandled rejection).
  let id: string;
  let deliveryCount: number;
  try {
    ({ id, deliveryCount } = message);
  } catch {
    id = '';
    deliveryCount = Number.NaN;
  }
  const kind = 'consume';
  if (settled) {
    messageSettledChannel.publish({
      name,
      kind,
      id,
      deliveryCount,
      outcome,
      error,
    } satisfies MessageSettledMessage);
  }
  if (dead) {
    const failure = error ?? new Error('dead-lettered');
    deadLetteredChannel.publish({
      name,
      kind,
      id,
      deliveryCount,
      error: failure,
      malformed: errorStringCode(failure) === 'ERR_MESSAGE_MALFORMED',
    } satisfies MessageDeadLetteredMessage);
  }
  if (lost) {
    leaseLostChannel.publish({
      name,
      kind,
      id,
      deliveryCount,
      detectedBy,
    } satisfies MessageLeaseLostMessage);
  }
}
