/**
 * A deadline for a broker client's first connection. A TCP connect timeout is not enough: a
 * server (or a proxy, or the wrong service on the port) that accepts the connection and never
 * answers the handshake would leave `await source(...)` pending forever. Internal.
 *
 * @module
 */

import { ConnectTimeoutError, NotConnectedError } from '../errors.js';
import { invalidOption } from '../internal/options.js';

/**
 * The error of a connection that missed its deadline (`ERR_CONNECT_TIMEOUT`). `what` names the
 * broker and its URL (without a password).
 */
export function connectTimeoutError(what: string, ms: number, cause?: unknown): Error {
  return new ConnectTimeoutError(what, ms, cause === undefined ? undefined : { cause });
}

/** Node's codes of a host name that did not resolve. */
const UNRESOLVED = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL']);

/**
 * A first connection's socket or DNS failure — Node's system error, with a `syscall` and a
 * string `code` (`ECONNREFUSED`, `ENOTFOUND`, `EHOSTUNREACH`, `ECONNRESET`, …) — as
 * `NotConnectedError` (`ERR_NOT_CONNECTED`, retryable: the server may be starting, or its name
 * not in DNS yet) naming the server (`where`, without a password), the system error as `cause`
 * (its `code` is there); anything else as it is. One code for "cannot reach it", whichever the
 * broker and however its client reports it, as an outage later in the run is reported.
 */
export function unreachable(error: unknown, broker: string, where: string, hint = ''): unknown {
  try {
    if (!(error instanceof Error)) return error;
    const { code, syscall } = error as { code?: unknown; syscall?: unknown };
    if (typeof code !== 'string' || typeof syscall !== 'string') return error;
    const what = UNRESOLVED.has(code)
      ? `the host name of ${where} did not resolve (${error.message}): check the host, or wait for it to be known`
      : `${where} could not be reached (${error.message}): check that it is running, and the host and port`;
    return new NotConnectedError(broker, `${what}${hint}`, { cause: error });
  } catch {
    return error; // a hostile value: as it is
  }
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
 * and the last `@` (a lone NATS token whole), and the value of a `password` or `sslpassword`
 * query parameter (pg reads both from a connection string's query). Not the parser's view of
 * the password: a password may hold `/`, `?`, `#` or `@` unencoded (`amqp://u:12/ab@host` parses as host `u`, port 12 and
 * a path, which would print its tail). Masking too much (an `@` in a path) only hides more; an
 * AMQP URL with no `:`, `?` or `#` before its last `@` (no password: a user alone, or an `@`
 * in the vhost), and a PostgreSQL URL with no `:` before it (a user alone, or an `@` in the
 * database name or query), keep it as it is.
 */
export function maskUserinfo(text: string): string {
  return maskUserinfoPart(text).replace(/([?&](?:ssl)?password=)[^&#]*/gi, '$1***');
}

function maskUserinfoPart(text: string): string {
  return text.replace(
    /^([a-z][a-z0-9+.-]*:\/\/)?([\s\S]*)@/i,
    (whole, scheme = '', info: string) => {
      const colon = info.indexOf(':');
      // No `:`, `?` or `#` before an AMQP URL's last `@`: no password in any reading, and the
      // `@` is most likely the virtual host's (`amqp://host/tenant@prod`), shown as it is.
      if (colon < 0 && !/[?#]/.test(info) && /^amqps?:\/\/$/i.test(scheme)) return whole;
      // No `:` before a PostgreSQL URL's last `@`: a user without a password (its password, if
      // any, is in the query, masked below), or an `@` in the database name or the query.
      if (colon < 0 && /^postgres(?:ql)?:\/\/$/i.test(scheme)) return whole;
      // `user:password` keeps the user (before the first `:`); a lone token (NATS) is masked whole.
      return `${scheme}${colon < 0 ? '' : `${info.slice(0, colon)}:`}***@`;
    },
  );
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
 * An AMQP URL whose vhost holds an `@` after a port and no user info (`amqp://host:5672/a@b`):
 * valid, and taken as the parser reads it, but it also reads as a password cut short at `/`
 * (`amqp://u:12/ab@host`, meant as user `u`, password `12/ab`). Messages mask it as a password
 * (`amqp://host:***@b`), and a connection that cannot be made says to percent-encode.
 */
export function readsAsCutPassword(url: string): boolean {
  const match = /^amqps?:\/\/([^/?#]*)(\/[^?#]*)/i.exec(url);
  if (match === null) return false;
  const [, authority = '', path = ''] = match;
  return !authority.includes('@') && authority.includes(':') && path.includes('@');
}

/**
 * A password (or NATS token) cut short by an unencoded `/`, `?` or `#`: the parser ends the
 * authority there, so `redis://u:12/ab@host` parses as host `u`, port 12 and a path — the
 * connection would then fail naming that host — and `redis://u:a@b/c@host` (a password holding
 * `@` and `/`) as user `u`, password `a`, host `b`. Told by a bare `@` past the authority (the
 * text up to the first `/`, `?` or `#` after the scheme's `//`, or from the start of a
 * scheme-less `host:port`) where the broker's URL carries none: in a Redis path (a database
 * number), a NATS URL's path, and anywhere in the query or fragment. An AMQP path is the
 * virtual host, which may hold one (`amqp://host/tenant@prod`, `amqp://host:5672/tenant@prod`):
 * taken as the parser reads it — `amqp://u:12/ab@host` then connects to host `u`, port 12, and
 * fails saying to percent-encode (see {@link readsAsCutPassword}) — unless the port is empty
 * (`amqp://u:/ab@host`), which reads only as a cut password. Refused masked, telling to
 * percent-encode.
 * Not used for PostgreSQL, whose database name (the path, not percent-decoded for `@` by pg)
 * and query parameters (`?user=a@b`) may hold one.
 *
 * @throws TypeError `ERR_INVALID_OPTION` naming `name`.
 */
export function refuseCutPassword(name: string, url: string, expected: string): void {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  const rest = url.slice(scheme.length);
  const end = rest.search(/[/?#]/);
  if (end < 0) return;
  const authority = rest.slice(0, end);
  const tail = rest.slice(end);
  if (!tail.includes('@')) return;
  // The path runs to the first `?` or `#`: the query and fragment follow it.
  const pathEnd = tail.search(/[?#]/);
  const afterPath = pathEnd < 0 ? '' : tail.slice(pathEnd);
  const vhost = /^amqps?:\/\/$/i.test(scheme);
  if (vhost && !afterPath.includes('@')) {
    // Only the vhost holds an `@`: taken as the URL parser, amqplib and Go's net/url read it —
    // `amqp://host:5672/tenant@prod` is a valid URL. Only an empty port (`amqp://u:/ab@host`)
    // reads as nothing but a password cut short at "/".
    if (authority.includes('@') || !authority.endsWith(':')) return;
    invalidOption(
      name,
      maskUserinfo(url),
      `${expected} with any "/", "?" or "#" in its password percent-encoded (%2F, %3F, %23): an empty port, then a virtual host holding "@", reads only as a password cut short at "/"`,
    );
  }
  invalidOption(
    name,
    maskUserinfo(url),
    `${expected} with any "/", "?", "#" or "@" in its password percent-encoded (%2F, %3F, %23, %40): an "@" after the host part says the password was cut short, and the text before it read as the host`,
  );
}
