/**
 * The delay before a retry: one shape for every pool kind's `retry.backoff` (and the same fields
 * as `consume()`'s redelivery `backoff`).
 *
 * @module
 */
import { formatValue } from '../internal/format-value.js';
import { coded, invalidOption, MAX_TIMER_MS, numberAtLeast } from '../internal/options.js';

/**
 * Exponential backoff with jitter, all times in ms: the n-th retry waits
 * `min(max, initial * factor ** (n - 1))`, of which the fraction `jitter` is random.
 */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter. @default 1000 */
  initial?: number;
  /** Upper bound of any delay, before jitter. @default 30_000 */
  max?: number;
  /** Growth per retry, >= 1. @default 2 */
  factor?: number;
  /**
   * Fraction of each delay that is random, 0..1 (0 = none, 1 = "full jitter"). Jitter spreads
   * the retries of jobs that failed together, e.g. during an outage. @default 0.5
   */
  jitter?: number;
}

/**
 * The function form: the delay in ms before retry number `attempt` (1 = the first retry) after
 * `error`. It must return a number of ms >= 0; longer than 2147483647 ms is capped.
 */
export type BackoffFunction = (attempt: number, error: Error) => number;

/** Builds the delay function for the option `name` (`retry.backoff`). @throws on a bad option. */
export function backoffDelays(name: string, backoff: unknown): BackoffFunction {
  if (typeof backoff === 'function') return checked(name, backoff as BackoffFunction);
  if (backoff != null && typeof backoff !== 'object') {
    invalidOption(name, backoff, 'an object { initial, max, factor, jitter } or a function');
  }
  const b = (backoff ?? {}) as BackoffOptions;
  const initial = ms(`${name}.initial`, b.initial ?? 1000);
  const max = ms(`${name}.max`, b.max ?? Math.max(30_000, initial));
  if (max < initial) {
    invalidOption(`${name}.max`, max, `a number of ms >= ${name}.initial (${initial})`, true);
  }
  const factor = numberAtLeast(`${name}.factor`, b.factor ?? 2, 1);
  const jitter = b.jitter ?? 0.5;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    invalidOption(`${name}.jitter`, jitter, 'a number from 0 to 1', true);
  }
  return (attempt) => {
    const base = Math.min(max, initial * factor ** Math.max(0, attempt - 1));
    return base - base * jitter * Math.random();
  };
}

function ms(name: string, value: unknown): number {
  if (typeof value !== 'number') invalidOption(name, value, 'a number of ms >= 0');
  return numberAtLeast(name, value, 0, { unit: 'ms' });
}

/** A user's function, checked per call: a bad delay is a RangeError that fails the job. */
function checked(name: string, backoff: BackoffFunction): BackoffFunction {
  return (attempt, error) => {
    const delay = backoff(attempt, error);
    if (typeof delay !== 'number' || !(delay >= 0)) {
      throw coded(
        new RangeError(
          `${name} returned ${formatValue(delay)} for retry ${attempt}: expected a number of ms >= 0`,
        ),
        'ERR_INVALID_RETURN_VALUE',
      );
    }
    return Math.min(delay, MAX_TIMER_MS);
  };
}
