/**
 * The first connection to NATS within a deadline, shared by the source and the dead letters
 * (internal).
 *
 * @module
 */

import { createConnection, type Socket } from 'node:net';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ConnectConfigError, ConnectTimeoutError, NotConnectedError } from '../../errors.js';
import { invalidOption } from '../../internal/options.js';
import {
  connectTimeoutError,
  connectWithin,
  maskUserinfo,
  refuseCutPassword,
  unreachable,
} from '../connect-deadline.js';

/**
 * Connects with reconnects forever once up; the first connection must complete within
 * `connectTimeout`. The client's own `timeout` rejects a silent server but leaves its socket
 * open (and a pending connect cannot be canceled), so a probe goes first: a plain TCP
 * connection that must read the server's `INFO` line in time, then is closed.
 */
export async function connectNats(servers: string | string[], ms: number): Promise<NatsConnection> {
  const list = (Array.isArray(servers) ? servers : [servers]).map(parseServer);
  const where = `NATS at ${list.map((s) => s.shown).join(',')}`;
  const started = Date.now();
  const probes = list.map((server) => probeInfo(server));
  const abandon = () => {
    for (const probe of probes) probe.socket.destroy();
  };
  try {
    await connectWithin(Promise.any(probes.map((p) => p.answered)), ms, where, abandon);
  } catch (error) {
    throw unreachable(error instanceof AggregateError ? error.errors[0] : error, 'NATS', where);
  } finally {
    abandon();
  }
  try {
    return await connect({
      servers,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: Math.max(1, ms - (Date.now() - started)),
      // An Error (for its stack) per request costs more than the request itself on a hot path
      // of one confirmed ack per message.
      noAsyncTraces: true,
    });
  } catch (error) {
    if (isClientTimeout(error)) throw connectTimeoutError(where, ms, error);
    throw connectRefusal(error, where);
  }
}

/**
 * nats.js's uncoded errors of a first connection the server refused, naming what to check: the
 * login (`AuthorizationError`, `UserAuthenticationExpiredError`) as `ConnectConfigError`
 * (`ERR_CONNECT_CONFIG`), its other `ConnectionError`s as `NotConnectedError`
 * (`ERR_NOT_CONNECTED`), the client's error as `cause`; a socket or DNS failure as
 * `NotConnectedError` too (see `unreachable`).
 * Told by name (a connection from another copy of nats.js has its own classes).
 */
function connectRefusal(error: unknown, where: string): unknown {
  const name = (error as { name?: unknown } | null)?.name;
  const message = String((error as Error | null)?.message);
  if (name === 'AuthorizationError' || name === 'UserAuthenticationExpiredError') {
    return new ConnectConfigError(
      'NATS',
      `${where} refused the login (${message}): check the user and password, or token, in servers`,
      { cause: error },
    );
  }
  if (name === 'ConnectionError') {
    return new NotConnectedError('NATS', `${where}: ${message}`, { cause: error });
  }
  return unreachable(error, 'NATS', where);
}

/** A server of the `servers` option: where to probe, and how to name it in messages. */
interface Server {
  url: URL;
  /** As given, with the credentials masked. */
  shown: string;
}

/**
 * Parses one entry of `servers` (`host:port`, with or without a scheme and user info) as the
 * client does. Messages name it with its password, or its token (a user with no password is a
 * token to NATS), replaced by `***`.
 * @throws TypeError `ERR_INVALID_OPTION` for an entry that does not parse, or whose password
 *   holds an unencoded "/", "?" or "#" (shown masked too).
 */
export function parseServer(server: string): Server {
  const schemed = /^[a-z][a-z0-9+.-]*:\/\//i.test(server);
  let url: URL;
  try {
    url = new URL(schemed ? server : `nats://${server}`);
  } catch {
    return invalidOption('servers', maskUserinfo(server), 'a "host:port" string or a nats:// URL');
  }
  refuseCutPassword('servers', server, 'a "host:port" string or a nats:// URL');
  const masked = new URL(url);
  if (masked.password) masked.password = '***';
  else if (masked.username) masked.username = '***';
  const text = masked.toString();
  return { url, shown: schemed ? text : text.slice('nats://'.length) };
}

/** A TCP connection to `server` and its `INFO` line. */
function probeInfo({ url, shown }: Server): { socket: Socket; answered: Promise<void> } {
  const socket = createConnection({
    host: url.hostname || '127.0.0.1',
    port: Number(url.port || 4222),
  });
  const answered = new Promise<void>((resolve, reject) => {
    socket.once('data', (chunk) => {
      // String(): the chunk is a Buffer (no encoding set); typed `string | Buffer` in newer @types/node.
      if (String(chunk).startsWith('INFO')) resolve();
      else {
        reject(
          new ConnectConfigError(
            'NATS',
            `${shown} is not a NATS server: its first line is not INFO — check the host and port in servers`,
          ),
        );
      }
    });
    socket.once('error', reject);
    socket.once('close', () =>
      reject(
        new NotConnectedError(
          'NATS',
          `${shown} closed the connection before sending INFO — check the host and port in servers, and that the server accepts this client`,
        ),
      ),
    );
  });
  answered.catch(() => {}); // read through Promise.any; never unhandled
  return { socket, answered };
}

/** The client's own connect timeout, reported as ours (`ERR_CONNECT_TIMEOUT`). */
function isClientTimeout(error: unknown): boolean {
  if (error instanceof ConnectTimeoutError) return false;
  const name = (error as { name?: unknown } | null)?.name;
  return name === 'TimeoutError' || /timeout/i.test(String((error as Error)?.message));
}

/**
 * `jetstreamManager(nc)`, its "no responders" (JetStream not enabled on the server or for the
 * account: nats.js's uncoded `JetStreamNotEnabled`) as `ConnectConfigError` (`ERR_CONNECT_CONFIG`,
 * the client's error as `cause`) naming what to check.
 */
export async function jetstreamManagerOf(nc: NatsConnection): Promise<JetStreamManager> {
  try {
    return await jetstreamManager(nc);
  } catch (error) {
    if ((error as { name?: unknown } | null)?.name !== 'JetStreamNotEnabled') throw error;
    throw new ConnectConfigError(
      'NATS',
      `JetStream is not enabled on the server at ${nc.getServer()} (${(error as Error).message}): start nats-server with -js (--jetstream), or enable JetStream for this account`,
      { cause: error },
    );
  }
}
