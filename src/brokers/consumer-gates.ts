/**
 * The scheduler gates of `consume()`, in the consumer's terms: `retry` (the pools' shape) onto
 * the broker's redelivery, `key` over consumer jobs, and which gates a batch handler can take.
 * Internal to the consumer.
 *
 * @module
 */
import { fn, invalidOption, optionsObject, positiveInt } from '../internal/options.js';
import type { ConsumerJob } from './consumer-job.js';
import {
  type BackoffFunction,
  type BackoffOptions,
  backoffFunction,
  DEFAULT_MAX_DELIVERIES,
} from './consumer-options.js';
import type { ConsumeOptions } from './consumer-types.js';
import type { BrokerMessage } from './source.js';

/**
 * With `batch`, the pool runs whole batches, so gates that order single messages have nothing
 * to act on: `key`, `perKey` and `priority` are refused (ERR_INVALID_OPTION); `rate` is allowed
 * and counts batch starts.
 */
export function refuseOrderingGates(options: {
  key?: unknown;
  perKey?: unknown;
  priority?: unknown;
}): void {
  for (const name of ['key', 'perKey', 'priority'] as const) {
    if (options[name] != null) {
      invalidOption(name, options[name], 'absent with batch (a batch has no one key or priority)');
    }
  }
}

/** Resolves `retry` or `maxDeliveries`/`backoff` (one or the other) into the consumer's terms. */
export function retryShape<T, M extends BrokerMessage>(
  options: ConsumeOptions<T, M>,
): {
  maxDeliveries: number;
  backoff: BackoffFunction;
  retryIf: ((error: Error, attempt: number) => boolean) | undefined;
} {
  const retry = optionsObject<NonNullable<ConsumeOptions<T, M>['retry']>>('retry', options.retry);
  if (retry == null) {
    return {
      maxDeliveries: positiveInt('maxDeliveries', options.maxDeliveries ?? DEFAULT_MAX_DELIVERIES),
      backoff: backoffFunction(options.backoff),
      retryIf: undefined,
    };
  }
  if (options.maxDeliveries != null || options.backoff != null) {
    invalidOption('retry', retry, 'to come without maxDeliveries and backoff (it replaces them)');
  }
  return {
    maxDeliveries: positiveInt('retry.attempts', retry.attempts),
    backoff: backoffFunction(retry.backoff as BackoffOptions | BackoffFunction | undefined),
    retryIf:
      retry.retryIf == null
        ? undefined
        : fn<(error: Error, attempt: number) => boolean>('retry.retryIf', retry.retryIf),
  };
}

/** The Pool's key function over consumer jobs, from `key(payload, message)`. */
export function keyOfJob<T, M extends BrokerMessage>(
  key: ((payload: T, message: M) => string) | undefined,
): ((work: ConsumerJob<T, M> | readonly ConsumerJob<T, M>[]) => string) | undefined {
  if (key == null) return undefined;
  const checked = fn<(payload: T, message: M) => string>('key', key);
  // Only single messages reach it: `key` is refused with `batch`.
  return (work) => {
    const job = work as ConsumerJob<T, M>;
    return checked(job.payload, job.message);
  };
}
