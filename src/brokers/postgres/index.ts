/**
 * `sluice/postgres`: a table queue in PostgreSQL for `consume()`, plus `migrate` and `enqueue`.
 *
 * How each guarantee maps onto PostgreSQL:
 * - claim: a `MATERIALIZED` CTE picks due rows `FOR UPDATE SKIP LOCKED` (LIMIT = free slots),
 *   and the same statement leases them: a fresh `lease_token`, `run_at = now() + lease`,
 *   `deliveries + 1`. An expired lease makes the row due again — that is crash recovery.
 * - waiting: `LISTEN` on a dedicated connection (an insert trigger notifies), with a polling
 *   fallback every `fetchWait` ms (and at the next retry's due time), so a lost notification
 *   or a dead listening connection only costs latency. `close()` interrupts the wait at once.
 * - completion (ack = `DELETE`, retry, release, dead letter) is fenced by the lease token and
 *   refused (an error, reported through `onError`) when another consumer re-claimed the row.
 *   Acks waiting when a fetch starts go in the claim's own statement (`orderedAcks`): one round
 *   trip per cycle, and the acked rows are gone before any row is claimed in their place.
 * - heartbeat: every `lease / 3` ms the leases of running messages are extended; a lost lease
 *   aborts the handler.
 *
 * Delivery is at-least-once (see `consume()`): a crash, a lost lease or an outage can run a
 * handler twice for one message, so handlers must be idempotent.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { LeaseLostError } from '../../errors.js';
import { argument, MAX_TIMER_MS } from '../../internal/options.js';
import { Batcher } from '../consumer-batch.js';
import { errorCode, errorMessage, errorName, errorText } from '../dead-letter.js';
import {
  type BrokerMessage,
  type BrokerSource,
  closedError,
  type MessagingTarget,
} from '../source.js';
import {
  BROKER_LIMITS,
  type CommonSourceOptions,
  resolveCommon,
  SOURCE_DEFAULTS,
} from '../source-options.js';
import {
  checkConnectionString,
  connectFailure,
  DEFAULT_CONNECTION_STRING,
} from './connect-timeout.js';
import { connectionError } from './connection-error.js';
import { PgListener } from './listen.js';
import { type QueueSql, queueSql } from './sql.js';

// The shared consumer, so that one subpath import is enough: `import { consume, … } from 'sluice/postgres'`.
export {
  type BackoffOptions,
  type BatchContext,
  type BatchHandler,
  type BatchItem,
  type BatchOptions,
  type BatchOutcomes,
  type ConsumeOptions,
  type Consumer,
  type ConsumerReport,
  type ConsumerStats,
  consume,
  type HandlerContext,
  jsonDecode,
  type MessageHandler,
} from '../consumer.js';
export type { EnqueueOptions, EnqueueResult } from '../enqueue-options.js';
export type { BrokerMessage, BrokerSource } from '../source.js';
export {
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterListOptions,
  type DeadLetterPage,
  type DeadLetterSelection,
  type DeadLetters,
  type PostgresDeadLettersOptions,
  postgresDeadLetters,
} from './dead-letters.js';
export { enqueue, enqueueMany, type PostgresTarget } from './enqueue.js';

/** Options of {@link postgresSource}. */
export interface PostgresSourceOptions extends CommonSourceOptions {
  /**
   * Connection string, used when `pool` is absent; one pg cannot parse is refused at once
   * (`ERR_INVALID_OPTION`, its password masked). @default 'postgres://postgres@127.0.0.1:5432/postgres'
   */
  connectionString?: string;
  /** A pg Pool to run queries on (the caller keeps ownership; a separate client is opened for LISTEN). */
  pool?: pg.Pool;
  /** The queue table (created by {@link migrate}); a plain lower-case identifier. */
  table: string;
  /** Run {@link migrate} before returning. @default true */
  migrate?: boolean;
  /**
   * Wait for the WAL flush on claims and completions (PostgreSQL's default). Off by default for
   * the pool this source opens: a completion lost in a server crash only means a redelivery,
   * which at-least-once already allows, and it is several times faster. A `pool` you pass in
   * keeps its own setting. @default false
   */
  synchronousCommit?: boolean;
}

/** A claimed row. */
export interface PostgresMessage extends BrokerMessage {
  /** The lease this delivery holds; completions carry it so a lost lease is refused. */
  readonly token: string;
  /** The headers it was enqueued with, if any. */
  readonly headers?: Record<string, string>;
}

interface Row {
  id: string;
  body: Buffer;
  deliveries: number;
  /** Null on a row `ackClaim` deleted (an ack that rode with the claim). */
  token: string | null;
  headers: Record<string, string> | null;
}

/** The PostgreSQL {@link BrokerSource}; create it with {@link postgresSource}. */
export class PostgresQueueSource implements BrokerSource<PostgresMessage> {
  readonly table: string;
  readonly heartbeatInterval: number;
  readonly messaging: MessagingTarget;
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #sql: QueueSql;
  /** Prefix of this table's prepared-statement names (short: PostgreSQL truncates names at 63 bytes). */
  readonly #prefix: string;
  readonly #lease: number;
  readonly #fetchWait: number;
  readonly #listener: PgListener;
  readonly #acks: Batcher<PostgresMessage, Set<string>>;
  readonly #beats: Batcher<PostgresMessage, Set<string>>;
  /**
   * A fetch of ours runs. An ack issued while none does may have had its slot freed already by
   * the consumer (`orderedAcks`): it must be applied before the next claim.
   */
  #fetching = false;
  /** Acks were issued while no fetch ran since the ack batcher last sent (or gave up) its batch. */
  #ordered = false;
  /** Ack statements carrying such acks that have not answered yet: the next claim waits for them. */
  readonly #orderedFlushes = new Set<Promise<unknown>>();
  #closed = false;

  /**
   * Acks issued while no fetch runs reach PostgreSQL before the next claim: they go in the claim's
   * own statement (a data-modifying CTE), or, when the batcher sent them first, the claim waits
   * for their statement. So the consumer frees their slots at once and the acks and the next
   * claim share one round trip.
   */
  readonly orderedAcks = true;

  /** @internal use {@link postgresSource} */
  constructor(pool: pg.Pool, ownsPool: boolean, listener: PgListener, o: PostgresSourceOptions) {
    this.#pool = pool;
    this.#ownsPool = ownsPool;
    this.#listener = listener;
    this.table = o.table;
    this.messaging = { system: 'postgresql', destination: o.table };
    this.#sql = queueSql(o.table);
    this.#lease = o.lease ?? SOURCE_DEFAULTS.lease;
    this.#fetchWait = o.fetchWait ?? SOURCE_DEFAULTS.fetchWait;
    this.heartbeatInterval = Math.max(10, Math.floor(this.#lease / 3));
    this.#prefix = `sluice_${createHash('sha1').update(o.table).digest('hex').slice(0, 12)}_`;
    this.#acks = new Batcher((batch) => this.#flushAcks(batch));
    this.#beats = new Batcher((batch) => this.#fenced('extend', batch, [this.#lease]));
  }

  async fetch(max: number, signal: AbortSignal): Promise<PostgresMessage[]> {
    if (this.#closed) throw closedError('PostgreSQL');
    if (signal.aborted) return [];
    this.#fetching = true;
    try {
      return await this.#fetch(max, signal);
    } finally {
      this.#fetching = false;
    }
  }

  async #fetch(max: number, signal: AbortSignal): Promise<PostgresMessage[]> {
    this.#listener.notified = false;
    const first = await this.#claim(max);
    if (first.length > 0 || signal.aborted) return first;
    // Nothing due: sleep until a notification, the next retry's due time, `fetchWait` or abort.
    const due = await this.#query<{ ms: number | null }>('nextDue', []);
    const nextDue = due.rows[0]?.ms;
    const wait = nextDue === null || nextDue === undefined ? this.#fetchWait : Math.max(0, nextDue);
    if (!this.#listener.notified)
      await this.#listener.wait(Math.min(wait, this.#fetchWait), signal);
    if (signal.aborted) return [];
    return this.#claim(max);
  }

  async ack(message: PostgresMessage): Promise<void> {
    if (!this.#fetching) this.#ordered = true;
    const done = await this.#acks.add(message);
    if (!done.has(message.id)) throw leaseLost(message, 'ack');
  }

  /**
   * Acks a batch handler's successful messages: they join this turn's one fenced `DELETE … = ANY`
   * with a single promise. A message whose lease token no longer matches (re-claimed by another
   * consumer) is not deleted and gets a `LeaseLostError` at its index.
   */
  async ackMany(messages: readonly PostgresMessage[]): Promise<(Error | undefined)[] | undefined> {
    if (!this.#fetching) this.#ordered = true;
    const done = await this.#acks.addMany(messages);
    let out: (Error | undefined)[] | undefined;
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]!;
      if (done.has(message.id)) continue;
      out ??= new Array<Error | undefined>(messages.length).fill(undefined);
      out[i] = leaseLost(message, 'ack');
    }
    return out;
  }

  async heartbeat(message: PostgresMessage): Promise<boolean> {
    return (await this.#beats.add(message)).has(message.id);
  }

  async retry(message: PostgresMessage, delayMs: number, error: Error): Promise<void> {
    await this.#one('retry', message, 'retry', [delayMs, storable(errorMessage(error))]);
    // A fetch may be sleeping a whole poll interval; wake it when this row becomes due.
    // Capped at the longest timer: past it Node would fire after 1 ms.
    setTimeout(() => this.#listener.poke(), Math.min(delayMs, MAX_TIMER_MS)).unref();
  }

  async release(message: PostgresMessage): Promise<void> {
    await this.#one('release', message, 'release');
  }

  async deadLetter(message: PostgresMessage, error: Error): Promise<void> {
    const code = errorCode(error) ?? errorName(error);
    await this.#one('deadLetter', message, 'dead-letter', [
      storable(errorMessage(error)),
      storable(code),
    ]);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#listener.close();
    if (this.#ownsPool) await this.#pool.end();
  }

  /**
   * Claims up to `max` rows; the acks waiting in the batcher go in the same statement (their
   * waiters get its outcome, exactly as from their own `DELETE`: the ids deleted, or its error).
   */
  async #claim(max: number): Promise<PostgresMessage[]> {
    // Acks the batcher already sent while no fetch ran: the claim must not overtake them.
    while (this.#orderedFlushes.size > 0) await Promise.allSettled(this.#orderedFlushes);
    const acks = this.#acks.take();
    this.#ordered = false;
    let rows: Row[];
    if (acks === undefined) {
      rows = (await this.#query<Row>('claim', [max, this.#lease])).rows;
    } else {
      const ids = acks.items.map((m) => m.id);
      const tokens = acks.items.map((m) => m.token);
      const reply = this.#query<Row>('ackClaim', [max, this.#lease, ids, tokens]);
      const acked = new Set<string>();
      acks.settle(
        reply.then(
          (result) => {
            for (const r of result.rows) if (r.token === null) acked.add(r.id);
            return acked;
          },
          // The statement failed as a whole (the claim's side too: a statement or lock timeout,
          // a cancel), so none of its DELETE was applied: the acks go on their own, as the
          // batcher's flush would have sent them, and get that reply; only the fetch fails with
          // the combined statement's error. (A reply lost with its connection after a commit:
          // the resend finds the rows gone and reports those acks refused — reported, not lost.)
          // Their slots are free already: the next claim waits for this DELETE too.
          () => this.#ordering(this.#fenced('ack', acks.items)),
        ),
      );
      rows = (await reply).rows;
    }
    const messages: PostgresMessage[] = [];
    for (const r of rows) {
      if (r.token === null) continue; // an acked row
      messages.push({
        id: r.id,
        body: r.body,
        deliveryCount: r.deliveries,
        token: r.token,
        ...(r.headers === null ? {} : { headers: r.headers }),
      });
    }
    return messages;
  }

  /**
   * The ack batcher's own send (at the turn's `setImmediate`, when no fetch took the acks first).
   * A batch holding acks issued while no fetch ran is tracked until it answers (see `#claim`).
   */
  #flushAcks(batch: PostgresMessage[]): Promise<Set<string>> {
    const sent = this.#fenced('ack', batch);
    if (!this.#ordered) return sent;
    this.#ordered = false;
    return this.#ordering(sent);
  }

  /** `sent`, an ack statement the next claim must not overtake, tracked until it answers. */
  #ordering(sent: Promise<Set<string>>): Promise<Set<string>> {
    const forget = (): void => {
      this.#orderedFlushes.delete(flush);
    };
    const flush: Promise<void> = sent.then(forget, forget);
    this.#orderedFlushes.add(flush);
    return sent;
  }

  /** Runs a batched statement fenced by (id, token) pairs; returns the ids it matched. */
  async #fenced(
    statement: 'ack' | 'extend',
    batch: PostgresMessage[],
    extra: unknown[] = [],
  ): Promise<Set<string>> {
    const ids = batch.map((m) => m.id);
    const tokens = batch.map((m) => m.token);
    const { rows } = await this.#query<{ id: string }>(statement, [ids, tokens, ...extra]);
    return new Set(rows.map((r) => r.id));
  }

  /**
   * Runs one of the queue's statements as a named (prepared) statement: pg prepares it once per
   * connection, so the hot claim/ack path skips parsing and planning. A failed connection
   * rejects with `NotConnectedError` (see `connection-error.ts`).
   */
  #query<R extends pg.QueryResultRow>(
    statement: Exclude<keyof QueueSql, 'channel' | 'migrate' | 'enqueue' | 'enqueueMany'>,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.#pool
      .query<R>({
        name: `${this.#prefix}${statement}`,
        text: this.#sql[statement],
        values,
      })
      .catch((error: unknown) => {
        throw connectionError(error);
      });
  }

  async #one(
    statement: 'retry' | 'release' | 'deadLetter',
    message: PostgresMessage,
    what: string,
    extra: unknown[] = [],
  ): Promise<void> {
    const result = await this.#query(statement, [message.id, message.token, ...extra]);
    if (result.rowCount === 0) throw leaseLost(message, what);
  }
}

function leaseLost(message: PostgresMessage, what: string): Error {
  return new LeaseLostError(message.id, what);
}

/**
 * Creates the queue table, its dead-letter table (`<table>_dead`), the index and the insert
 * trigger that notifies listeners. Idempotent and safe to run from several processes at once.
 *
 * @example
 * ```ts
 * await migrate(pool, 'jobs');
 * ```
 */
export async function migrate(db: pg.Pool | pg.Client, table: string): Promise<void> {
  const sql = queueSql(table, argument('table'));
  const client = db instanceof pg.Pool ? await db.connect() : db;
  try {
    // Already migrated: take no lock at all. Re-running the DDL on a live queue would queue for
    // table locks behind (and ahead of) consumers' claims and acks, and could deadlock with them.
    const { rows } = await client.query<{ ready: boolean }>(sql.migrated);
    if (rows[0]?.ready) return;
    await client.query('BEGIN');
    await client.query(sql.migrate);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    if (db instanceof pg.Pool) (client as pg.PoolClient).release();
  }
}

/**
 * Connects, runs {@link migrate} (unless `migrate: false`), starts listening and returns a
 * source for `consume()`.
 *
 * @throws TypeError/RangeError `ERR_INVALID_OPTION` for bad options (a `connectionString` that
 *   does not parse, shown with its password masked); `NotConnectedError` (`ERR_NOT_CONNECTED`,
 *   retryable) when PostgreSQL cannot be reached; `ConnectConfigError` (`ERR_CONNECT_CONFIG`, not
 *   retryable) when it refuses the login or the database, or lacks the SSL asked for;
 *   `ConnectTimeoutError` past `connectTimeout`.
 * @example
 * ```ts
 * const source = await postgresSource({ connectionString: 'postgres://127.0.0.1/app', table: 'jobs' });
 * const consumer = consume(source, handle, { concurrency: 16 });
 * ```
 */
export async function postgresSource(options: PostgresSourceOptions): Promise<PostgresQueueSource> {
  const sql = queueSql(options?.table);
  const { connectTimeout } = resolveCommon(options, BROKER_LIMITS.postgres);
  const owns = options.pool == null;
  if (owns) checkConnectionString(options.connectionString);
  const pool =
    options.pool ??
    new pg.Pool({
      connectionString: options.connectionString ?? DEFAULT_CONNECTION_STRING,
      max: 4,
      // The deadline goes on each connection, not the pool: pg-pool would also apply its
      // connectionTimeoutMillis to a query waiting for a free client, and under load acks
      // queued behind busy clients would fail (and their rows be delivered again).
      Client: timedClient(connectTimeout),
      // Claims and completions need no fsync wait: a completion lost in a crash only means the
      // row is delivered again, which at-least-once allows. (Producers keep their own setting.)
      ...(options.synchronousCommit === true ? {} : { options: '-c synchronous_commit=off' }),
    });
  // An idle pooled connection dropped by a server restart is discarded; the next query reconnects.
  if (owns) pool.on('error', () => {});
  try {
    if (options.migrate !== false) await migrate(pool, options.table);
    // Without migrate, open the pool's first connection now too (migrate leaves its connection
    // in the pool): the first claim then does not wait for a connection to be set up.
    else if (owns) (await pool.connect()).release();
    const listener = await PgListener.start(
      { ...pool.options, connectionTimeoutMillis: connectTimeout },
      sql.channel,
    );
    return new PostgresQueueSource(pool, owns, listener, options);
  } catch (error) {
    if (owns) await pool.end().catch(() => {});
    throw connectFailure(error, options.connectionString, connectTimeout);
  }
}

/**
 * PostgreSQL text cannot hold U+0000: an error message with one made both the retry and the
 * dead-letter statements fail, so the row came back after every lease and its handler ran
 * forever. Shown as the escape U+0000 spells in JSON.
 */
function storable(text: string): string {
  const bounded = errorText(text);
  return bounded.includes('\0') ? bounded.replaceAll('\0', '\\u0000') : bounded;
}

/** A pg Client class whose every connection attempt (TCP and startup) gives up after `ms`. */
function timedClient(ms: number): new () => pg.ClientBase {
  return class extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(
        typeof config === 'string'
          ? { connectionString: config, connectionTimeoutMillis: ms }
          : { ...config, connectionTimeoutMillis: ms },
      );
    }
  } as unknown as new () => pg.ClientBase;
}
