/**
 * pg's connection timeout, reported as every other broker's, and the `connectionString` option's
 * check (internal to `sluice/postgres`).
 *
 * @module
 */
import pg from 'pg';
import { ConnectConfigError } from '../../errors.js';
import { invalidOption } from '../../internal/options.js';
import { connectTimeoutError, maskUserinfo, unreachable } from '../connect-deadline.js';

/** Where a factory connects when given no `connectionString` (and no pool). */
export const DEFAULT_CONNECTION_STRING = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * SQLSTATEs of a first connection refused for its configuration: a password or login refused
 * (`28P01` invalid_password, `28000` invalid_authorization_specification: no pg_hba.conf
 * entry, no such role), a database that does not exist (`3D000` invalid_catalog_name).
 */
const REFUSED_BY_CONFIG = new Set(['28P01', '28000', '3D000']);

/**
 * A first connection's failure, coded, the server named without its password and pg's error as
 * the `cause`: pg's connection timeout — pg says only "timeout expired" or "Connection
 * terminated due to connection timeout" — as `ConnectTimeoutError` (`ERR_CONNECT_TIMEOUT`); a
 * socket or DNS failure as `NotConnectedError` (`ERR_NOT_CONNECTED`, see `unreachable`); a
 * login or database refused ({@link REFUSED_BY_CONFIG}) and SSL asked of a server without it as
 * `ConnectConfigError` (`ERR_CONNECT_CONFIG`); else `error`.
 */
export function connectFailure(
  error: unknown,
  connectionString: string | undefined,
  ms: number,
): unknown {
  const message = String((error as Error | null)?.message);
  const where = `PostgreSQL at ${maskUserinfo(connectionString ?? DEFAULT_CONNECTION_STRING)}`;
  const failed = unreachable(error, 'PostgreSQL', where);
  if (failed !== error) return failed;
  const sqlState = (error as { code?: unknown; severity?: unknown } | null)?.code;
  if (
    typeof sqlState === 'string' &&
    typeof (error as { severity?: unknown }).severity === 'string' &&
    REFUSED_BY_CONFIG.has(sqlState)
  ) {
    return new ConnectConfigError(
      'PostgreSQL',
      `${where} refused the connection (${message}, SQLSTATE ${sqlState}): check the ${sqlState === '3D000' ? 'database name' : 'user and password'} in connectionString (or the pool's)`,
      { cause: error },
    );
  }
  if (message === 'The server does not support SSL connections') {
    return new ConnectConfigError(
      'PostgreSQL',
      `${where} does not support SSL connections: check sslmode in connectionString (or the pool's ssl option)`,
      { cause: error },
    );
  }
  if (!/timeout expired|connection timeout/i.test(message)) return error;
  return connectTimeoutError(where, ms, error);
}

/**
 * The `connectionString` option (when no `pool` is given), parsed by pg itself as its first
 * connection would parse it (a pg `Client` is built and dropped: it parses in its constructor
 * and connects only on `connect()`), so that one that does not parse fails naming the option,
 * shown with its user info masked (as every broker's `url`) — not later as pg's uncoded
 * `ERR_INVALID_URL`, or a `URIError` for a malformed percent-escape. Any other failure of that
 * parse (an `sslrootcert` file that cannot be read) is left for the connection to report.
 *
 * @throws TypeError `ERR_INVALID_OPTION` for a value that is not a string or does not parse.
 */
export function checkConnectionString(value: unknown): void {
  if (value == null) return;
  const expected = 'a PostgreSQL connection URL (postgres://user:password@host:port/database)';
  if (typeof value !== 'string') invalidOption('connectionString', value, expected);
  let unparsable = false;
  try {
    new pg.Client({ connectionString: value });
  } catch (error) {
    unparsable =
      error instanceof URIError || (error as { code?: unknown } | null)?.code === 'ERR_INVALID_URL';
  }
  if (unparsable) {
    invalidOption(
      'connectionString',
      maskUserinfo(value),
      `${expected} that parses, its reserved characters percent-encoded`,
    );
  }
}
