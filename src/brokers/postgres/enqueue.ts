/**
 * `enqueue` and `enqueueMany` for the PostgreSQL table queue (see `sluice/postgres`).
 *
 * @module
 */
import type pg from 'pg';
import { invalidArgument } from '../../internal/options.js';
import { tracedEnqueue } from '../../observability/enqueue-channel.js';
import {
  checkEnqueue,
  type EnqueueOptions,
  type EnqueueResult,
  encodePayload,
} from '../enqueue-options.js';
import { queueSql } from './sql.js';

/** Where a PostgreSQL job goes. */
export interface PostgresTarget {
  /** A pg `Pool`, `Client` or checked-out client (inside your transaction, if you like). */
  db: pg.Pool | pg.ClientBase;
  /** The queue table (created by `migrate`). */
  table: string;
}

/**
 * Inserts one job (objects as JSON, strings as UTF-8, bytes as they are). Run it on a client
 * inside your own transaction and the job exists only if that transaction commits.
 *
 * - `delay`: the row's `run_at` is `now() + delay` (the server's clock). An idle source sleeps
 *   until the next `run_at` it knows of, so the job is handed out within milliseconds of it
 *   (at worst `fetchWait` after, when a source started sleeping before the insert committed).
 * - `key`: a unique `dedup_key` column (a partial index): the key is held while the row
 *   exists, i.e. until the job is acked (deleted) or dead-lettered (moved to `<table>_dead`).
 *   No time window. When the holder was committed by a concurrent producer after this
 *   statement began, `deduplicated` is true and `id` undefined.
 * - `headers`: the `headers` jsonb column, read back as `message.headers`.
 *
 * @returns the new row id, or, deduplicated, the id of the pending row holding `key`.
 * @throws TypeError/RangeError `ERR_INVALID_OPTION` for a bad option; pg's error (a missing
 *   table: run `migrate` first).
 * @example
 * ```ts
 * await enqueue({ db: pool, table: 'jobs' }, { path: 'a.pdf' }, { delay: 2000, key: 'a.pdf' });
 * ```
 */
export async function enqueue(
  target: PostgresTarget,
  payload: unknown,
  options?: EnqueueOptions,
): Promise<EnqueueResult> {
  const { delay, key, headers: checked } = checkEnqueue(target, '{ db, table }', options);
  const sql = queueSql(target.table, 'target.table');
  const body = encodePayload(payload); // misuse fails here, before a traced enqueue
  return tracedEnqueue('postgresql', target.table, checked, async (headers) => {
    const { rows } = await target.db.query<{ id: string; deduplicated: boolean }>(sql.enqueue, [
      body,
      delay,
      key ?? null,
      headers.length === 0 ? null : JSON.stringify(Object.fromEntries(headers)),
    ]);
    const row = rows[0];
    return row === undefined
      ? { id: undefined, deduplicated: true }
      : { id: row.id, deduplicated: row.deduplicated };
  });
}

/**
 * Inserts many jobs due now in one statement (a PostgreSQL extra: no `delay`, `key` or
 * `headers`; use {@link enqueue} for those).
 *
 * @returns the new row ids, in order.
 * @example
 * ```ts
 * await enqueueMany({ db: pool, table: 'jobs' }, [{ path: 'a.pdf' }, { path: 'b.pdf' }]);
 * ```
 */
export async function enqueueMany(
  target: PostgresTarget,
  payloads: readonly unknown[],
): Promise<string[]> {
  checkEnqueue(target, '{ db, table }', undefined);
  if (!Array.isArray(payloads)) invalidArgument('payloads', payloads, 'an array of payloads');
  const { rows } = await target.db.query<{ id: string }>(
    queueSql(target.table, 'target.table').enqueueMany,
    [payloads.map((payload, i) => encodePayload(payload, `payloads[${i}]`))],
  );
  return rows.map((r) => r.id);
}
