/**
 * A Redis connection the source owns and can replace: when it is out of step (a reply that
 * cannot be the one asked for) or stuck (commands waiting past a deadline with no reply and no
 * reconnect attempt), the source destroys it and carries on with a fresh duplicate.
 *
 * Why sluice does not rely on node-redis alone for this: a node-redis 5 connection that
 * reconnects with commands queued has been seen to come back out of step — a reply matched to
 * the wrong command, or a handshake waiting for a reply that never comes, after which the
 * connection is never ready again and nothing fails. Whatever the client library does, a
 * replaced connection starts with an empty queue and a fresh decoder; the commands it drops are
 * rejected, and every operation of the source is safe to repeat (acks are retried, delivered
 * entries are claimed again after the lease).
 *
 * A command ends at the latest with the first ready connection that fails after it was sent,
 * written or not (see `#strand`): a caller that finds the link up when it sends need not look
 * again. One sent during an outage waits for the reconnect; the source bounds those itself (a
 * fetch's abort replaces a reconnecting link, a settle gives up after a lease).
 *
 * @module
 */
import { setMaxListeners } from 'node:events';
import { NotConnectedError } from '../../errors.js';
import { rejectAfter } from '../connect-deadline.js';
import type { AnyRedisClient, CommandSender, ReplyOptions } from './source.js';

/** Makes a fresh, unconnected client (a duplicate of the first one's options). */
export type OpenClient = () => AnyRedisClient;

let probes = 0;

/** How long (ms) `close()` waits for a graceful close before it destroys the connection. */
const CLOSE_GRACE_MS = 2_000;

function destroy(client: AnyRedisClient): void {
  try {
    client.destroy();
  } catch {
    // already closed
  }
}

/**
 * node-redis's errors that mean the connection failed (by class name: a client from another
 * copy of node-redis has its own classes). A server's reply error (`ErrorReply`: NOGROUP, …)
 * and anything else pass through as they are.
 */
const CONNECTION_ERRORS = new Set([
  'SocketClosedUnexpectedlyError',
  'ClientClosedError',
  'ClientOfflineError',
  'DisconnectsClientError',
  'ConnectionTimeoutError',
  'SocketTimeoutError',
  'ReconnectStrategyError',
]);

/** The class name of `error` (node-redis's errors are told apart by it, see below). */
function errorClass(error: unknown): unknown {
  try {
    return (error as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  } catch {
    return undefined; // a hostile value
  }
}

/**
 * A command's rejection as the source reports it: a failed connection — one of node-redis's
 * connection errors, or the socket's own (`ECONNRESET`, …), none with a sluice code — becomes
 * `NotConnectedError` (`ERR_NOT_CONNECTED`) with the original as `cause`, so that `onError`
 * sees one code for an outage; anything else is returned as it is.
 */
export function connectionError(error: unknown): unknown {
  try {
    if (typeof error !== 'object' || error === null) return error;
    const { code, syscall } = error as { code?: unknown; syscall?: unknown };
    const name = errorClass(error);
    const socket = typeof syscall === 'string' && typeof code === 'string';
    if (!socket && !(typeof name === 'string' && CONNECTION_ERRORS.has(name))) return error;
    const what = error instanceof Error ? error.message : String(code);
    return new NotConnectedError('Redis', `the connection failed: ${what}`, { cause: error });
  } catch {
    return error; // a hostile value: reported as it is
  }
}

/** node-redis's internal write gate (see holdStaleWrite); absent in other versions. */
interface Pausable {
  _pause?: () => void;
  _unpause?: () => void;
}

/**
 * Works around a node-redis 5 bug (seen on 5.12.1): a write it scheduled (`setImmediate`) while
 * the connection was ready can run after the socket failed in the same event-loop turn. It then
 * writes to the dead socket, which drops the bytes, yet the commands move from the offline queue
 * to the queue of commands awaiting a reply; the socket's error was handled already, so nothing
 * rejects them, and the next connection's replies are handed to them first: out of step (or a
 * handshake waiting for ever). Traced on the reading connection: ECONNRESET with TIME and
 * XREADGROUP queued, the scheduled write on the destroyed socket, then HELLO written behind two
 * stale entries. The client emits 'error' synchronously when the socket fails, before that
 * write runs: its write gate is closed until the stale write has run (the next `setImmediate`)
 * or a new socket has connected (its 'connect' comes before the handshake is written),
 * whichever is first. The link withdraws the commands sent before the failure (see
 * `RedisLink.#strand`); those sent after it, during the outage, stay queued for the new
 * connection, as intended. The link's ECHO, shape checks and deadline still catch whatever
 * this misses.
 */
function holdStaleWrites(client: AnyRedisClient): void {
  const gate = client as unknown as Pausable;
  if (typeof gate._pause !== 'function' || typeof gate._unpause !== 'function') return;
  let held = false;
  const release = () => {
    if (!held) return;
    held = false;
    gate._unpause?.();
  };
  client.on('error', () => {
    if (held) return;
    held = true;
    gate._pause?.();
    setImmediate(release);
  });
  client.on('connect', release);
}

/** The signal of one connection's commands (see `RedisLink.#strand`), and their options. */
function connectionEpoch() {
  const controller = new AbortController();
  // One listener per unwritten command (node-redis's): a burst of them is no leak.
  setMaxListeners(0, controller.signal);
  const { signal } = controller;
  return {
    signal,
    options: { abortSignal: signal },
    abort: (reason: unknown) => controller.abort(reason),
  };
}

/** The rejection of a command withdrawn because its connection failed before writing it. */
function stranded(reason: unknown): NotConnectedError {
  const what = reason instanceof Error ? reason.message : String(reason);
  return new NotConnectedError(
    'Redis',
    `the connection failed before the command was sent: ${what}`,
    {
      cause: reason,
    },
  );
}

export class RedisLink implements CommandSender {
  #client: AnyRedisClient;
  /** The first client, when the caller owns it: never closed or destroyed here. */
  readonly #borrowed: AnyRedisClient | undefined;
  readonly #open: OpenClient;
  readonly #deadline: number;
  readonly #onOpen: ((client: AnyRedisClient) => void) | undefined;
  /**
   * The rejections of commands sent on the current client that have not settled: a replacement
   * rejects them itself, not trusting the destroyed client to settle every promise it gave.
   */
  #inflight = new Set<(error: unknown) => void>();
  /**
   * The signal of every command sent on the current client since its last ready connection
   * failed (see `#strand`): aborted when the next one that gets ready fails, which withdraws
   * from node-redis's queue whatever of them it had not written yet.
   */
  #epoch = connectionEpoch();
  /** Last sign of life (performance.now()): a reply, a reconnect attempt, or the first send. */
  #alive = 0;
  #closed = false;
  /** Connections replaced so far (for tests and diagnostics). */
  replaced = 0;
  /** Why the last connection was replaced. */
  lastReason: string | undefined;

  /**
   * `client` is connected already (closed here unless `owned` is false); `open` makes
   * replacements, always owned. `deadline` (ms): how long commands
   * may wait with no reply and no reconnect attempt before the connection counts as stuck.
   * `onOpen` runs for the first client and every replacement (to attach listeners).
   */
  constructor(
    client: AnyRedisClient,
    owned: boolean,
    open: OpenClient,
    deadline: number,
    onOpen?: (client: AnyRedisClient) => void,
  ) {
    this.#open = open;
    this.#deadline = deadline;
    this.#onOpen = onOpen;
    this.#client = client;
    this.#borrowed = owned ? undefined : client;
    this.#watch(client);
  }

  /** The current client: read it at each use, it changes when the connection is replaced. */
  get client(): AnyRedisClient {
    return this.#client;
  }

  /**
   * `sendCommand` on the current client, counted, so that `check()` can tell a stuck connection.
   * A client that gave up (its reconnect strategy returned an error) is replaced first. A
   * failed connection rejects with `NotConnectedError` (see `connectionError`).
   */
  sendCommand(args: (string | Buffer)[], options?: ReplyOptions): Promise<unknown> {
    if (!this.#client.isOpen && !this.#closed) this.replace('the connection was closed');
    const inflight = this.#inflight;
    if (inflight.size === 0) this.#alive = performance.now();
    // The caller's client gets no listeners (see #watch), so nothing would abort the signal.
    const epoch = this.#client === this.#borrowed ? undefined : this.#epoch;
    let sent: Promise<unknown>;
    try {
      sent = this.#client.sendCommand(
        args,
        epoch === undefined
          ? options
          : options === undefined
            ? epoch.options
            : { ...options, abortSignal: epoch.signal },
      );
    } catch (error) {
      return Promise.reject(connectionError(error));
    }
    return new Promise((resolve, reject) => {
      inflight.add(reject);
      sent.then(
        (reply: unknown) => {
          // A sign of life matters only while other commands still wait (see check()).
          if (inflight.delete(reject) && inflight.size > 0) this.#alive = performance.now();
          resolve(reply);
        },
        (error: unknown) => {
          if (inflight.delete(reject) && inflight.size > 0) this.#alive = performance.now();
          // Withdrawn (node-redis's AbortError): by the failure, the signal's reason. A command
          // it had written is rejected by the failure too, after the signal was aborted.
          reject(
            epoch?.signal.aborted && errorClass(error) === 'AbortError'
              ? stranded(epoch.signal.reason)
              : connectionError(error),
          );
        },
      );
    });
  }

  /**
   * A ready connection of `client` failed. node-redis rejects the commands it had written on it,
   * but keeps those it had not for the reconnect: a command sent in the turn of the failure (it
   * writes at the next `setImmediate`, and the failure may be handled first), or one queued
   * during an earlier outage whose write was still scheduled. During an outage that is a wait
   * for the outage, which a caller that looked at `reconnecting` when it sent the command (the
   * connection was up) does not expect; a close or an abort would wait for it. Those are
   * withdrawn here (node-redis drops an aborted command it has not written, and no longer
   * listens to the signal of one it has) and rejected as the written ones are: every command
   * ends at the latest with the first ready connection that fails after it was sent. One
   * signal for all of them, not a timer or a signal per command.
   */
  #strand(client: AnyRedisClient, error: unknown): void {
    if (client !== this.#client) return;
    const epoch = this.#epoch;
    this.#epoch = connectionEpoch();
    epoch.abort(error);
  }

  /**
   * Replaces the connection when commands have waited past the deadline with no reply and no
   * reconnect attempt. Returns true when it did. Called by the source's watchdog timer.
   */
  check(now = performance.now()): boolean {
    if (this.#closed || this.#inflight.size === 0 || now - this.#alive <= this.#deadline)
      return false;
    this.replace(`no reply within ${this.#deadline} ms`);
    return true;
  }

  /**
   * A reply could not be the one asked for: the connection is out of step. Replaces it and
   * returns the error the caller throws.
   */
  outOfStep(what: string): NotConnectedError {
    const reason = `a reply out of step (${what}); the connection was replaced`;
    if (!this.#closed) this.replace(reason);
    return new NotConnectedError('Redis', reason);
  }

  /**
   * Destroys the current client (its pending commands are rejected) and starts a fresh one;
   * commands sent from now on wait in the new client's queue until it is ready.
   */
  replace(reason: string): AnyRedisClient {
    if (this.#closed) return this.#client;
    const old = this.#client;
    this.replaced++;
    this.lastReason = reason;
    const client = this.#open();
    this.#client = client;
    const dropped = this.#inflight;
    this.#inflight = new Set();
    // Destroyed below: node-redis rejects what the old client still holds.
    this.#epoch = connectionEpoch();
    this.#watch(client);
    const error = new NotConnectedError('Redis', reason);
    for (const reject of dropped) reject(error);
    // Not awaited: it reconnects with backoff on its own; until then commands wait in its queue.
    client.connect().catch(() => {});
    if (old !== this.#borrowed) {
      try {
        old.destroy();
      } catch {
        // already closed
      }
    }
    return client;
  }

  /**
   * Closes the current client: gracefully (pending replies first) within `CLOSE_GRACE_MS`, then
   * destroyed. During an outage a graceful close waits for the connection to come back (its
   * queued commands must be sent first), so a shutdown would hang for the outage; whatever is
   * still waiting for a reply then is rejected here.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    if (client === this.#borrowed) return;
    const pending = this.#inflight;
    this.#inflight = new Set();
    // Not ready (an outage): a graceful close would wait for the reconnect; nothing to flush.
    if (client.isOpen && client.isReady) {
      const late = () => new Error(`not closed within ${CLOSE_GRACE_MS} ms`);
      const closed = await rejectAfter(client.close(), CLOSE_GRACE_MS, late).then(
        () => true,
        () => false,
      );
      if (!closed) destroy(client);
    } else if (client.isOpen) {
      destroy(client);
    }
    const error = new NotConnectedError('Redis', 'the source was closed');
    for (const reject of pending) reject(error);
  }

  /**
   * A command sent now would wait for a reconnect: the client is open but not ready (an outage,
   * or a handshake in progress).
   */
  get reconnecting(): boolean {
    return this.#client.isOpen && !this.#client.isReady;
  }

  #watch(client: AnyRedisClient): void {
    // The caller's client is watched too, but not given listeners: replacing it is enough.
    if (client === this.#borrowed) {
      this.#onOpen?.(client);
      return;
    }
    // A reconnect attempt is a sign of life: node-redis is handling an outage, not stuck.
    const alive = () => {
      if (client === this.#client) this.#alive = performance.now();
    };
    client.on('error', alive);
    client.on('reconnecting', alive);
    // 'error' comes for a failed reconnect too, and for a reply that could not be parsed (the
    // socket still up): only the failure of a connection that was ready strands commands.
    let up = client.isReady;
    client.on('ready', () => {
      up = true;
    });
    client.on('error', (error?: unknown) => {
      if (!up || client.isReady) return;
      up = false;
      this.#strand(client, error);
    });
    holdStaleWrites(client);
    // After a reconnect, one ECHO of a fresh token: a connection that came back out of step
    // answers it with another command's reply (once per reconnect, never in the steady state).
    // The commands queued ahead of it may have had wrong replies already; most fail the shape
    // checks of the source, this catches the rest before more go wrong.
    let reconnected = false;
    client.on('reconnecting', () => {
      reconnected = true;
    });
    client.on('ready', () => {
      if (!reconnected || client !== this.#client) return;
      reconnected = false;
      const token = `sluice-probe-${++probes}`;
      this.sendCommand(['ECHO', token]).then(
        (reply) => {
          if (client === this.#client && String(reply) !== token) this.outOfStep('ECHO');
        },
        () => {},
      );
    });
    this.#onOpen?.(client);
  }
}
