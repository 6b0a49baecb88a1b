/**
 * The SQL of the PostgreSQL table queue, built once per table name. One table holds the queue;
 * `run_at` is both "not before" (retry backoff) and the lease deadline of a claimed row, so a
 * single index answers "what can be claimed now" — an expired lease simply becomes due again.
 *
 * @module
 */

import { type Label, nonEmptyString } from '../../internal/options.js';

/** Statements for one queue table. */
export interface QueueSql {
  readonly channel: string;
  readonly migrate: string;
  /** One row `{ ready }`: true when the table, its dead-letter table and trigger all exist. */
  readonly migrated: string;
  readonly claim: string;
  /**
   * The fenced ack of $3 ids / $4 tokens and a claim of $1 rows for $2 ms, in one statement: acked
   * rows come back with a null `token`, claimed ones with theirs.
   */
  readonly ackClaim: string;
  readonly nextDue: string;
  readonly ack: string;
  readonly extend: string;
  readonly retry: string;
  readonly release: string;
  readonly deadLetter: string;
  /** One job: $1 body, $2 delay ms, $3 dedup key (or null), $4 headers (jsonb or null). */
  readonly enqueue: string;
  /** Many jobs due now: $1 bodies. */
  readonly enqueueMany: string;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,50}$/;

/**
 * @throws TypeError when `table` is not a plain lower-case identifier (it is spliced into SQL).
 */
export function queueSql(table: string, label: Label = 'table'): QueueSql {
  nonEmptyString(label, table, {
    test: IDENTIFIER,
    expected: `a plain lower-case identifier matching ${IDENTIFIER}`,
  });
  const t = `"${table}"`;
  const dead = `"${table}_dead"`;
  const channel = `${table}_ready`;
  // The (id, token) pairs of a batched ack or lease extension match as `id = ANY($1) AND
  // lease_token = ANY($2)`: primary-key lookups instead of a join on `unnest` of the pairs, about
  // half the server time per batch (measured, BENCHMARKS.md). It matches exactly the pairs: each
  // token is generated for one row's claim (`gen_random_uuid()` per row), so a row holding a
  // token of the list is the row that token was paired with.
  const pairs = `id = ANY($1::bigint[]) AND lease_token = ANY($2::uuid[])`;
  return {
    channel,
    migrated: `
      SELECT to_regclass('${t}') IS NOT NULL AND to_regclass('${dead}') IS NOT NULL
        AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass('${t}')
                    AND tgname = '${table}_notify')
        AND (SELECT count(*) FROM pg_attribute WHERE attname = 'first_failed_at' AND NOT attisdropped
             AND attrelid IN (to_regclass('${t}'), to_regclass('${dead}'))) = 2
        AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('${t}')
                    AND attname = 'dedup_key' AND NOT attisdropped)
        AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('${dead}')
                    AND attname = 'headers' AND NOT attisdropped) AS ready`,
    migrate: `
      SELECT pg_advisory_xact_lock(hashtext('sluice.migrate.${table}'));
      CREATE TABLE IF NOT EXISTS ${t} (
        id          bigserial PRIMARY KEY,
        body        bytea       NOT NULL,
        run_at      timestamptz NOT NULL DEFAULT now(),
        deliveries  integer     NOT NULL DEFAULT 0,
        lease_token uuid,
        last_error  text,
        created_at  timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX IF NOT EXISTS "${table}_run_at" ON ${t} (run_at, id);
      -- Added in 0.2 (tables of 0.1 get them here): a job's deduplication key, held while its
      -- row exists (until acked or dead-lettered), and the producer's headers.
      ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS dedup_key text;
      ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS headers jsonb;
      CREATE UNIQUE INDEX IF NOT EXISTS "${table}_dedup_key" ON ${t} (dedup_key)
        WHERE dedup_key IS NOT NULL;
      CREATE TABLE IF NOT EXISTS ${dead} (
        id          bigint      PRIMARY KEY,
        body        bytea       NOT NULL,
        deliveries  integer     NOT NULL,
        error       text        NOT NULL,
        code        text,
        created_at  timestamptz NOT NULL,
        failed_at   timestamptz NOT NULL DEFAULT now()
      );
      -- When a message first failed (kept through retries, for the dead letter): added to tables
      -- made before it existed too.
      ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS first_failed_at timestamptz;
      ALTER TABLE ${dead} ADD COLUMN IF NOT EXISTS first_failed_at timestamptz;
      -- The producer's headers, kept by a dead letter and given back by its replay (a nullable
      -- column without a default: adding it rewrites nothing).
      ALTER TABLE ${dead} ADD COLUMN IF NOT EXISTS headers jsonb;
      CREATE OR REPLACE FUNCTION "${table}_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('${channel}', ''); RETURN NULL; END $$;
      DROP TRIGGER IF EXISTS "${table}_notify" ON ${t};
      CREATE TRIGGER "${table}_notify" AFTER INSERT ON ${t}
        FOR EACH STATEMENT EXECUTE FUNCTION "${table}_notify"();`,
    // MATERIALIZED: the row set is locked and fixed once, before the UPDATE runs; without it the
    // planner may inline the CTE and re-evaluate LIMIT/SKIP LOCKED per join (over-claiming).
    claim: `
      WITH next AS MATERIALIZED (
        SELECT id FROM ${t} WHERE run_at <= now() ORDER BY run_at, id LIMIT $1 FOR UPDATE SKIP LOCKED
      )
      UPDATE ${t} q SET run_at = now() + $2 * interval '1 millisecond',
        deliveries = q.deliveries + 1, lease_token = gen_random_uuid()
      FROM next WHERE q.id = next.id
      RETURNING q.id::text AS id, q.body, q.deliveries, q.lease_token::text AS token, q.headers`,
    // One round trip per cycle: the acks issued since the last claim ride with the next one. The
    // DELETE is the first branch of the UNION ALL, so it runs (and takes its row locks) before the
    // claim locks anything: a statement that waits on a lock is never holding claimed rows, as
    // with two statements. The claim skips the acked ids: a row whose lease ran out is then
    // deleted by its ack, never both deleted and claimed again in one statement (whose
    // sub-statements all see the snapshot from before the DELETE).
    ackClaim: `
      WITH acked AS (
        DELETE FROM ${t} WHERE id = ANY($3::bigint[]) AND lease_token = ANY($4::uuid[]) RETURNING id
      ), next AS MATERIALIZED (
        SELECT id FROM ${t} WHERE run_at <= now() AND id <> ALL($3::bigint[])
        ORDER BY run_at, id LIMIT $1 FOR UPDATE SKIP LOCKED
      ), claimed AS (
        UPDATE ${t} q SET run_at = now() + $2 * interval '1 millisecond',
          deliveries = q.deliveries + 1, lease_token = gen_random_uuid()
        FROM next WHERE q.id = next.id
        RETURNING q.id, q.body, q.deliveries, q.lease_token, q.headers
      )
      SELECT id::text AS id, NULL::bytea AS body, NULL::integer AS deliveries, NULL::text AS token,
        NULL::jsonb AS headers FROM acked
      UNION ALL
      SELECT id::text, body, deliveries, lease_token::text, headers FROM claimed`,
    nextDue: `SELECT extract(epoch FROM min(run_at) - now()) * 1000 AS ms FROM ${t}`,
    // Every completion is fenced by the lease token: a row re-claimed by another consumer
    // (after our lease expired) has a new token, so our late completion matches nothing.
    ack: `DELETE FROM ${t} WHERE ${pairs} RETURNING id::text AS id`,
    extend: `UPDATE ${t} SET run_at = now() + $3 * interval '1 millisecond' WHERE ${pairs}
      RETURNING id::text AS id`,
    retry: `UPDATE ${t} SET run_at = now() + $3 * interval '1 millisecond', lease_token = NULL,
      last_error = $4, first_failed_at = coalesce(first_failed_at, now())
      WHERE id = $1 AND lease_token = $2`,
    // Released rows are due at once: notify, so an idle consumer elsewhere picks them up now.
    release: `WITH r AS (UPDATE ${t} SET run_at = now(), lease_token = NULL,
        deliveries = greatest(deliveries - 1, 0) WHERE id = $1 AND lease_token = $2 RETURNING id)
      SELECT pg_notify('${channel}', '') FROM r`,
    deadLetter: `
      WITH gone AS (DELETE FROM ${t} WHERE id = $1 AND lease_token = $2
                    RETURNING id, body, deliveries, created_at, first_failed_at, headers)
      INSERT INTO ${dead} (id, body, deliveries, error, code, created_at, first_failed_at, headers)
      SELECT id, body, deliveries, $3, $4, created_at, coalesce(first_failed_at, now()), headers
      FROM gone
      ON CONFLICT (id) DO UPDATE SET error = EXCLUDED.error, failed_at = now()`,
    // A key held by a row that a concurrent producer has just committed is not visible to this
    // statement's snapshot: then no id comes back, and the result is deduplicated, id unknown.
    enqueue: `
      WITH ins AS (
        INSERT INTO ${t} (body, run_at, dedup_key, headers)
        VALUES ($1, now() + $2 * interval '1 millisecond', $3, $4::jsonb)
        ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING
        RETURNING id::text AS id)
      SELECT id, false AS deduplicated FROM ins
      UNION ALL
      SELECT id::text, true FROM ${t} WHERE dedup_key = $3 AND NOT EXISTS (SELECT 1 FROM ins)`,
    enqueueMany: `INSERT INTO ${t} (body) SELECT unnest($1::bytea[]) RETURNING id::text AS id`,
  };
}
