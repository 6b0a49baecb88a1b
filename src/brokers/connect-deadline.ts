/**
 * A deadline for a broker client's first connection. A TCP connect timeout is not enough: a
 * server (or a proxy, or the wrong service on the port) that accepts the connection and never
 * answers the handshake would leave `await source(...)` pending forever. Internal.
 *
 * @module
 */

/** Default for the sources' `connectTimeout` option, ms. */
export const DEFAULT_CONNECT_TIMEOUT = 10_000;

/**
 * The error of a connection that missed its deadline: code ETIMEDOUT, as Node and amqplib name a
 * connection that timed out. `what` names the broker and its URL (without a password).
 */
export function connectTimeoutError(what: string, ms: number, cause?: unknown): Error {
  const error = new Error(`${what} did not complete its connection handshake within ${ms} ms`, {
    cause,
  });
  return Object.assign(error, { code: 'ETIMEDOUT' });
}

/**
 * Resolves with `connecting`, or rejects after `ms` with `timeoutError()` (by default
 * {@link connectTimeoutError} for `what`) and calls `abandon` (to destroy the half-open client,
 * so that no socket or timer keeps the process alive).
 */
export async function connectWithin<T>(
  connecting: Promise<T>,
  ms: number,
  what: string,
  abandon: () => void,
  timeoutError: () => Error = () => connectTimeoutError(what, ms),
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abandon();
      reject(timeoutError());
    }, ms);
  });
  try {
    return await Promise.race([connecting, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** `url` without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparsable URL>';
  }
}
