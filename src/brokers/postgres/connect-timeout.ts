/**
 * pg's connection timeout, reported as every other broker's (internal to `sluice/postgres`).
 *
 * @module
 */
import { connectTimeoutError, maskUserinfo } from '../connect-deadline.js';

/** Where a factory connects when given no `connectionString` (and no pool). */
export const DEFAULT_CONNECTION_STRING = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * `error` as `ConnectTimeoutError` (`ERR_CONNECT_TIMEOUT`, the server named without its
 * password, pg's error as the `cause`) when it is pg's connection timeout — pg says only
 * "timeout expired" or "Connection terminated due to connection timeout" — else `error`.
 */
export function connectFailure(
  error: unknown,
  connectionString: string | undefined,
  ms: number,
): unknown {
  if (!/timeout expired|connection timeout/i.test(String((error as Error | null)?.message))) {
    return error;
  }
  const where = `PostgreSQL at ${maskUserinfo(connectionString ?? DEFAULT_CONNECTION_STRING)}`;
  return connectTimeoutError(where, ms, error);
}
