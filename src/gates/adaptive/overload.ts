/**
 * Which failures mean "the downstream is overloaded". Internal.
 */
import { TimeoutError } from '../../errors.js';

/** HTTP statuses that mean "too much": 429 Too Many Requests, 503 Service Unavailable. */
const OVERLOAD_STATUS = new Set([429, 503]);

/**
 * True when `error` is an overload signal: a {@link TimeoutError} (the job outran its pool
 * `timeout`), or an error whose `status` or `statusCode` is 429 or 503 (fetch wrappers, axios
 * `response.status`, got, Node's http errors). Every other failure (a bug, a 404, bad input) is
 * not: the adaptive limit ignores it, so a pool whose jobs fail fast for other reasons keeps
 * its limit instead of collapsing to `min`.
 * @example
 * isOverload(Object.assign(new Error('busy'), { status: 503 })); // true
 * isOverload(new TypeError('bad input')); // false
 */
export function isOverload(error: unknown): boolean {
  if (error instanceof TimeoutError) return true;
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { status?: unknown; statusCode?: unknown; response?: { status?: unknown } };
  return (
    OVERLOAD_STATUS.has(e.status as number) ||
    OVERLOAD_STATUS.has(e.statusCode as number) ||
    OVERLOAD_STATUS.has(e.response?.status as number)
  );
}
