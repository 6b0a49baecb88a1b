/**
 * Retry timing for the HTTP embedder: exponential backoff with jitter, and `Retry-After`.
 *
 * @module
 */

/**
 * Parses a `Retry-After` header: delay-seconds (decimals tolerated) or an HTTP-date.
 * Returns milliseconds from `now`, or undefined when absent or unparseable.
 *
 * @example
 * ```ts
 * parseRetryAfter('2'); // 2000
 * ```
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * Delay before retry number `attempt` (1 = first retry): `base * 2^(attempt-1)`, capped at `max`,
 * with "equal jitter" (half fixed, half random) so a burst of failed requests does not come back
 * in lockstep. A server's `Retry-After` wins over the computed delay, still capped at `max`.
 *
 * @example
 * ```ts
 * backoffDelay(3, { base: 250, max: 10_000 }); // between 500 and 1000 ms
 * ```
 */
export function backoffDelay(
  attempt: number,
  opts: { base: number; max: number; retryAfter?: number | undefined; random?: () => number },
): number {
  if (opts.retryAfter !== undefined) return Math.min(opts.retryAfter, opts.max);
  const exp = Math.min(opts.max, opts.base * 2 ** (attempt - 1));
  const random = opts.random ?? Math.random;
  return exp / 2 + random() * (exp / 2);
}

/**
 * Resolves after `ms`, or rejects with the signal's reason as soon as `signal` aborts.
 * The timer and the listener are both removed either way.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
