/**
 * {@link DeadLetters} over a PostgreSQL queue's dead-letter table (`<table>_dead`).
 *
 * - list: keyset pages ordered by `(failed_at, id)` descending; the cursor is the last row's
 *   `failed_at` (in microseconds) and id, so pages stay stable while letters are added or
 *   removed. The table has no index on `failed_at`: each page scans and sorts the dead letters
 *   (fine for thousands; add `CREATE INDEX ON <table>_dead (failed_at, id)` for millions).
 *   `firstFailedAt` is `first_failed_at`, which the source sets at a message's first retry (and
 *   to the dead-lettering time when it never was retried).
 * - replay: one statement per 100 letters, `DELETE … RETURNING` from the dead table feeding an
 *   `INSERT` into the queue table — one transaction, so a replay killed at any point neither
 *   loses nor duplicates a letter. The row goes back under its old id with `deliveries = 0`
 *   (the next claim makes it 1), `run_at = now()`, its original `created_at` and its producer's
 *   `headers` (kept in the dead table's `headers` column); the insert trigger wakes idle
 *   consumers.
 * - purge: `'all'` is one `DELETE` (atomic); ids one `DELETE … WHERE id = ANY(…)` per 100;
 *   a filter deletes the matching letters page by page (not atomic as a whole).
 *
 * @module
 */
import pg from 'pg';
import {
  badCursor,
  connectTimeoutOption,
  type DeadLetter,
  type DeadLetterListOptions,
  type DeadLetterPage,
  type DeadLetterSelection,
  type DeadLetters,
  eachSelected,
  listOptions,
  type PagedStore,
  selection,
} from '../dead-letters.js';
import {
  checkConnectionString,
  connectFailure,
  DEFAULT_CONNECTION_STRING,
} from './connect-timeout.js';
import { migrate } from './index.js';
import { queueSql } from './sql.js';

export type {
  DeadLetter,
  DeadLetterFilter,
  DeadLetterListOptions,
  DeadLetterPage,
  DeadLetterSelection,
  DeadLetters,
} from '../dead-letters.js';

/** Options of {@link postgresDeadLetters}. */
export interface PostgresDeadLettersOptions {
  /**
   * Connection string, used when `pool` is absent; one pg cannot parse is refused at once
   * (`ERR_INVALID_OPTION`, its password masked). @default 'postgres://postgres@127.0.0.1:5432/postgres'
   */
  connectionString?: string;
  /** A pg Pool to query with (left open by `close()`). */
  pool?: pg.Pool;
  /** Longest wait for a connection, ms. @default 10000 */
  connectTimeout?: number;
  /** The queue table (its dead letters are in `<table>_dead`). */
  table: string;
}

interface Row {
  id: string;
  body: Buffer;
  deliveries: number;
  error: string;
  code: string | null;
  first_failed_at: Date | null;
  failed_at: Date;
  us: string;
}

const COLUMNS = `id::text, body, deliveries, error, code, first_failed_at, failed_at,
  (extract(epoch FROM failed_at) * 1000000)::bigint::text AS us`;
const CURSOR = /^(\d+):(\d+)$/;
const ROW_ID = /^\d{1,19}$/;

/**
 * Opens the dead letters of a PostgreSQL queue table, creating the tables if missing (as
 * `migrate` does). See the module doc for how each operation maps onto SQL.
 *
 * @throws TypeError/RangeError `ERR_INVALID_OPTION` for a bad option (a `connectionString` that
 *   does not parse, shown with its password masked); the first connection's errors as
 *   `postgresSource`'s (`ERR_NOT_CONNECTED`, `ERR_CONNECT_CONFIG`, `ERR_CONNECT_TIMEOUT`).
 * @example
 * ```ts
 * const dead = await postgresDeadLetters({ connectionString: 'postgres://127.0.0.1/app', table: 'jobs' });
 * await dead.replay({ code: 'ECONNRESET' });
 * await dead.close();
 * ```
 */
export async function postgresDeadLetters(
  options: PostgresDeadLettersOptions,
): Promise<DeadLetters> {
  queueSql(options?.table); // checks the name (it is spliced into SQL)
  const connectTimeout = connectTimeoutOption(options.connectTimeout);
  const owns = options.pool == null;
  if (owns) checkConnectionString(options.connectionString);
  const pool =
    options.pool ??
    new pg.Pool({
      connectionString: options.connectionString ?? DEFAULT_CONNECTION_STRING,
      max: 2,
      connectionTimeoutMillis: connectTimeout,
    });
  if (owns) pool.on('error', () => {});
  try {
    await migrate(pool, options.table);
  } catch (error) {
    if (owns) await pool.end().catch(() => {});
    throw connectFailure(error, options.connectionString, connectTimeout);
  }
  return new PostgresDeadLetters(pool, owns, options.table);
}

class PostgresDeadLetters implements DeadLetters, PagedStore {
  readonly #pool: pg.Pool;
  readonly #owns: boolean;
  #closing: Promise<void> | undefined;
  readonly #queue: string;
  readonly #dead: string;

  constructor(pool: pg.Pool, owns: boolean, table: string) {
    this.#pool = pool;
    this.#owns = owns;
    this.#queue = `"${table}"`;
    this.#dead = `"${table}_dead"`;
  }

  async list(options?: DeadLetterListOptions): Promise<DeadLetterPage> {
    const { limit, cursor } = listOptions(options);
    if (cursor !== undefined && !CURSOR.test(cursor)) badCursor(cursor);
    return this.page(limit, cursor);
  }

  async page(limit: number, cursor: string | undefined): Promise<DeadLetterPage> {
    const [, us, id] = cursor === undefined ? [] : CURSOR.exec(cursor)!;
    const { rows } = await this.#pool.query<Row>(
      `SELECT ${COLUMNS} FROM ${this.#dead}
       WHERE $2::bigint IS NULL
          OR (failed_at, id) < ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $3::bigint)
       ORDER BY failed_at DESC, id DESC LIMIT $1`,
      [limit + 1, us ?? null, id ?? null],
    );
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      letters: page.map(toLetter),
      next: rows.length > limit && last ? `${last.us}:${last.id}` : undefined,
    };
  }

  async byIds(ids: string[]): Promise<DeadLetter[]> {
    const { rows } = await this.#pool.query<Row>(
      `SELECT ${COLUMNS} FROM ${this.#dead} WHERE id = ANY($1::bigint[])`,
      [rowIds(ids)],
    );
    return rows.map(toLetter);
  }

  async replay(which: DeadLetterSelection): Promise<number> {
    return eachSelected(this, selection(which), async (letters) => {
      // One statement: the rows leave the dead table only together with their insert.
      const { rowCount } = await this.#pool.query(
        `WITH moved AS (DELETE FROM ${this.#dead} WHERE id = ANY($1::bigint[])
                        RETURNING id, body, created_at, headers)
         INSERT INTO ${this.#queue} (id, body, created_at, headers)
         SELECT id, body, created_at, headers FROM moved`,
        [letters.map((l) => l.id)],
      );
      return rowCount ?? 0;
    });
  }

  async purge(which: DeadLetterSelection): Promise<number> {
    const chosen = selection(which);
    if (chosen.kind === 'all') {
      return (await this.#pool.query(`DELETE FROM ${this.#dead}`)).rowCount ?? 0;
    }
    return eachSelected(this, chosen, async (letters) => {
      const { rowCount } = await this.#pool.query(
        `DELETE FROM ${this.#dead} WHERE id = ANY($1::bigint[])`,
        [letters.map((l) => l.id)],
      );
      return rowCount ?? 0;
    });
  }

  /** Ends the pool it opened (not one the caller passed in). Idempotent: a second call gets the first's promise. */
  close(): Promise<void> {
    this.#closing ??= this.#owns ? this.#pool.end() : Promise.resolve();
    return this.#closing;
  }
}

/** Ids that can be row ids (others cannot exist; `bigint[]` would refuse the whole call). */
function rowIds(ids: string[]): string[] {
  return ids.filter((id) => ROW_ID.test(id) && BigInt(id) <= 9223372036854775807n);
}

function toLetter(r: Row): DeadLetter {
  return {
    id: r.id,
    messageId: r.id,
    body: r.body,
    error: r.error,
    code: r.code ?? undefined,
    attempts: r.deliveries,
    firstFailedAt: r.first_failed_at ?? undefined,
    lastFailedAt: r.failed_at,
  };
}
