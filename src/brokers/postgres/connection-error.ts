/**
 * Which failures of a PostgreSQL query mean its connection failed, and the coded error the
 * source reports for them. Internal to `sluice/postgres`.
 *
 * pg has no error classes for a lost connection: its own are plain `Error`s told apart only by
 * their text, the server's carry a SQLSTATE, and the socket's a Node system-error code.
 *
 * @module
 */
import { NotConnectedError } from '../../errors.js';

/** pg's and pg-pool's own texts for a connection that failed or could not be made. */
const PG_CONNECTION_TEXT =
  /^(Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect)/;

/**
 * SQLSTATE of a server ending or refusing the session: class 08, admin/crash shutdown and
 * "cannot connect now" (57P01–03), an idle session timed out (57P05), too many connections
 * (53300).
 */
const SESSION_ENDED = new Set(['57P01', '57P02', '57P03', '57P05', '53300']);
function connectionState(code: string): boolean {
  return code.startsWith('08') || SESSION_ENDED.has(code);
}

/**
 * A query's rejection as the source reports it: a failed connection (see the module doc)
 * becomes `NotConnectedError` (`ERR_NOT_CONNECTED`) with the original as `cause`, so that
 * `onError` sees one code for an outage; anything else (a constraint, a syntax error, a sluice
 * error) is returned as it is.
 */
export function connectionError(error: unknown): unknown {
  try {
    if (!(error instanceof Error)) return error;
    const { code, syscall, severity } = error as {
      code?: unknown;
      syscall?: unknown;
      severity?: unknown;
    };
    const socket = typeof code === 'string' && typeof syscall === 'string';
    const server =
      typeof code === 'string' && typeof severity === 'string' && connectionState(code);
    const client = code === undefined && PG_CONNECTION_TEXT.test(error.message);
    if (!socket && !server && !client) return error;
    return new NotConnectedError('PostgreSQL', `the connection failed: ${error.message}`, {
      cause: error,
    });
  } catch {
    return error; // a hostile value: reported as it is
  }
}
