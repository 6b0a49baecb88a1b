/**
 * Options of `consume()`: validation with one message template, the retry backoff and the default
 * JSON decoder. Internal to the consumer; the public types are re-exported from `consumer.ts`.
 *
 * @module
 */
import { MalformedMessageError } from '../errors.js';
import { backoffDelays, type BackoffOptions as RetryBackoffOptions } from '../gates/backoff.js';
import { formatValue } from '../internal/format-value.js';
import { coded, invalidOption, numberAtLeast } from '../internal/options.js';
import type { BrokerMessage } from './source.js';

/**
 * Exponential backoff between deliveries of a failing message (all times in ms): the same
 * fields, defaults and checks as a pool's `retry.backoff` — 1 s doubling to 30 s, half of each
 * delay random; `max` defaults to `max(30_000, initial)` and may not be below `initial`.
 */
export type BackoffOptions = RetryBackoffOptions;

/** A function form: the delay (ms) after the `deliveryCount`-th failed delivery. */
export type BackoffFunction = (deliveryCount: number) => number;

/** Turns a message's raw body into the handler's payload; throw `MalformedMessageError` to reject it. */
export type Decoder<T> = (body: Uint8Array, message: BrokerMessage) => T;

/** Default `maxBodySize`: 1 MiB. */
export const DEFAULT_MAX_BODY_SIZE = 1024 * 1024;
/** Default `maxDeliveries`: a message is tried 5 times, then dead-lettered. */
export const DEFAULT_MAX_DELIVERIES = 5;
/** Default `drainTimeout` when the consumer's `signal` aborts: 30 s. */
export const DEFAULT_DRAIN_TIMEOUT = 30_000;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The default decoder: UTF-8 JSON. A body that is not UTF-8 or not JSON fails with
 * `MalformedMessageError` (and is dead-lettered at once, never retried).
 *
 * @example
 * ```ts
 * jsonDecode(new TextEncoder().encode('{"a":1}')); // { a: 1 }
 * ```
 */
export function jsonDecode(body: Uint8Array): unknown {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch (cause) {
    throw new MalformedMessageError('message body is not valid UTF-8', { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new MalformedMessageError(`message body is not JSON: ${(cause as Error).message}`, {
      cause,
    });
  }
}

/** Builds the delay function from the `backoff` option. */
export function backoffFunction(
  backoff: BackoffOptions | BackoffFunction | null | undefined,
): BackoffFunction {
  if (typeof backoff === 'function') return checkedDelays(backoff);
  // An optional option given as null means its default, as everywhere.
  if (backoff === null) backoff = undefined;
  if (backoff !== undefined && typeof backoff !== 'object') {
    invalidOption('backoff', backoff, 'an object or a function');
  }
  // One shape for every backoff of sluice: a pool's `retry.backoff` builds the same delays.
  const delays = backoffDelays('backoff', backoff);
  const unused = new Error('unused: the object form ignores the error');
  return (deliveryCount) => Math.round(delays(deliveryCount, unused));
}

/** The longest delay a timer (and so a retry) can take: 2^31 - 1 ms, about 24.8 days. */
const MAX_DELAY = 2_147_483_647;

/**
 * A user's backoff function, checked per call: NaN or a negative delay is a RangeError reported
 * as a failed retry (the broker's own error would be cryptic: "interval out of range"), and a
 * delay past what a timer can wait is capped.
 */
function checkedDelays(backoff: BackoffFunction): BackoffFunction {
  return (deliveryCount) => {
    const delay = backoff(deliveryCount);
    if (typeof delay !== 'number' || !(delay >= 0)) {
      throw coded(
        new RangeError(
          `backoff function returned ${formatValue(delay)} for delivery ${deliveryCount}: expected a number of ms >= 0`,
        ),
        'ERR_INVALID_RETURN_VALUE',
      );
    }
    return Math.min(delay, MAX_DELAY);
  };
}

/**
 * A time or size option: a finite number >= 0 (with `unit: 'ms'`, at most the longest delay a
 * timer keeps, 2147483647 ms).
 */
export function nonNegative(name: string, value: unknown, unit?: 'ms'): number {
  if (value == null) invalidOption(name, value, 'a finite number >= 0');
  return numberAtLeast(name, value as number, 0, unit ? { unit } : {});
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects): the shared {@link sleep}. */
export { sleep as pause } from './sleep.js';

/**
 * Refuses a source whose fixed `prefetch` exceeds the consumer's concurrency (its highest, for
 * `adaptive()`), naming both: checked by `consume()` at construction, so the mistake is not
 * found at the first fetch, reported once, with `done` resolving as after a clean stop.
 */
export function refusePrefetchAbove(
  sources: readonly { readonly prefetch?: number | undefined }[],
  concurrency: number,
): void {
  for (const { prefetch } of sources) {
    if (prefetch !== undefined && prefetch > concurrency) {
      invalidOption(
        'prefetch',
        prefetch,
        `at most the consumer's concurrency (${concurrency}): RabbitMQ would push messages that wait in this process without counting as held`,
        true,
      );
    }
  }
}
