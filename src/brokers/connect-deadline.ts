/**
 * A deadline for a broker client's first connection. A TCP connect timeout is not enough: a
 * server (or a proxy, or the wrong service on the port) that accepts the connection and never
 * answers the handshake would leave `await source(...)` pending forever. Internal.
 *
 * @module
 */

import { ConnectTimeoutError } from '../errors.js';
import { invalidOption } from '../internal/options.js';

/**
 * The error of a connection that missed its deadline (`ERR_CONNECT_TIMEOUT`). `what` names the
 * broker and its URL (without a password).
 */
export function connectTimeoutError(what: string, ms: number, cause?: unknown): Error {
  return new ConnectTimeoutError(what, ms, cause === undefined ? undefined : { cause });
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
  return rejectAfter(connecting, ms, () => {
    abandon();
    return timeoutError();
  });
}

/**
 * `work`, or a rejection with `timeoutError()` once `ms` have passed first; the timer is cleared
 * either way. Internal: every deadline on a broker operation goes through here.
 */
export function rejectAfter<T>(
  work: Promise<T>,
  ms: number,
  timeoutError: () => Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError()), ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/**
 * `text` (a URL, parsable or not) with its password masked: everything between the user's `:`
 * and the last `@` (a lone NATS token whole). Not the parser's view of the password: a password
 * may hold `/`, `?`, `#` or `@` unencoded (`amqp://u:12/ab@host` parses as host `u`, port 12 and
 * a path, which would print its tail). Masking too much (an `@` in a path) only hides more.
 */
export function maskUserinfo(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)?([\s\S]*)@/i, (_, scheme = '', info: string) => {
    // `user:password` keeps the user (before the first `:`); a lone token (NATS) is masked whole.
    const colon = info.indexOf(':');
    return `${scheme}${colon < 0 ? '' : `${info.slice(0, colon)}:`}***@`;
  });
}

/** Schemes of the `url` options. */
export const REDIS_URL = /^rediss?:\/\//;
export const AMQP_URL = /^amqps?:\/\//;

/**
 * The `url` option, checked as its client will parse it (a WHATWG URL with a scheme `scheme`
 * matches), so that a malformed one fails naming the option, shown with its user info masked —
 * and not as the client's `ERR_INVALID_URL`, whose `input` property prints the whole URL,
 * password included. A password cut short by an unencoded `/`, `?` or `#` is refused too (see
 * {@link refuseCutPassword}).
 */
export function checkUrl(url: unknown, scheme: RegExp, expected: string): void {
  if (typeof url !== 'string' || !scheme.test(url)) {
    invalidOption('url', typeof url === 'string' ? maskUserinfo(url) : url, expected);
  }
  try {
    new URL(url);
  } catch {
    invalidOption('url', maskUserinfo(url), `${expected} that parses`);
  }
  refuseCutPassword('url', url, expected);
}

/**
 * An `@` after the authority (past the first `/`, `?` or `#` that follows the scheme's `//`, or
 * the start of a scheme-less `host:port`) while the authority itself has none: the user info of
 * a password holding an unencoded `/`, `?` or `#` (`redis://u:12/ab@host`), which the parser
 * reads as host `u`, port 12 and a path — the connection would then fail naming that host.
 * Nothing a Redis, RabbitMQ or NATS URL carries there holds a bare `@` (a Redis path is a
 * database number; a RabbitMQ vhost takes `%40`, which amqplib decodes), so it is refused,
 * masked, telling to percent-encode. Not used for PostgreSQL, whose database name (the path,
 * not percent-decoded for `@` by pg) and query parameters (`?user=a@b`) may hold one.
 *
 * @throws TypeError `ERR_INVALID_OPTION` naming `name`.
 */
export function refuseCutPassword(name: string, url: string, expected: string): void {
  const authority = url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const end = authority.search(/[/?#]/);
  if (end < 0 || authority.slice(0, end).includes('@')) return;
  if (!authority.includes('@', end)) return;
  invalidOption(
    name,
    maskUserinfo(url),
    `${expected} whose password has any "/", "?" or "#" percent-encoded (%2F, %3F, %23): the "@" after them shows the text before it was read as the host`,
  );
}
