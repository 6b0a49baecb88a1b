import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { enqueue, migrate } from '../../src/brokers/postgres/index.js';
import { PG_URL, uniqueTable } from '../fixtures/brokers/postgres-helpers.js';

const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
afterAll(() => pool.end());

describe('postgres migrate()', () => {
  it('on a live queue takes no table lock (was: re-ran the DDL and deadlocked with consumers in CI)', async () => {
    const table = uniqueTable('migrate');
    await migrate(pool, table);
    // A consumer-like transaction holding a row lock on the queue, left open during migrate().
    const busy = await pool.connect();
    try {
      await busy.query('BEGIN');
      await busy.query(`INSERT INTO "${table}" (body) VALUES ($1)`, [Buffer.from('{}')]);
      await busy.query("SET LOCAL lock_timeout = '2s'");
      const other = await pool.connect();
      try {
        // Fails with a lock timeout if migrate() wants a lock the open transaction blocks.
        await other.query("SET lock_timeout = '1s'");
        await expect(migrate(other, table)).resolves.toBeUndefined();
        // Concurrent migrations of the same live table all return at once too.
        await expect(Promise.all([1, 2, 3].map(() => migrate(pool, table)))).resolves.toHaveLength(
          3,
        );
      } finally {
        await other.query('RESET lock_timeout');
        other.release();
      }
      await busy.query('ROLLBACK');
    } finally {
      busy.release();
    }
  });

  it('a table made by 0.1 (no dedup_key or headers columns) gains them, keeping its rows', async () => {
    const table = uniqueTable('migrate01');
    await migrate(pool, table);
    await pool.query(`DROP INDEX "${table}_dedup_key"`);
    await pool.query(`ALTER TABLE "${table}" DROP COLUMN dedup_key, DROP COLUMN headers`);
    await pool.query(`INSERT INTO "${table}" (body) VALUES ($1)`, [Buffer.from('{"old":1}')]);
    await migrate(pool, table);
    expect((await enqueue({ db: pool, table }, { n: 1 }, { key: 'k' })).deduplicated).toBe(false);
    expect((await enqueue({ db: pool, table }, { n: 2 }, { key: 'k' })).deduplicated).toBe(true);
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${table}"`);
    expect(rows[0].n).toBe(2);
    await pool.query(`DROP TABLE "${table}", "${table}_dead"`);
  });

  it('a dead-letter table without the headers column gains it, keeping its letters', async () => {
    const table = uniqueTable('migratedlh');
    await migrate(pool, table);
    await pool.query(`ALTER TABLE "${table}_dead" DROP COLUMN headers`);
    await pool.query(
      `INSERT INTO "${table}_dead" (id, body, deliveries, error, created_at) VALUES (7, $1, 1, 'old', now())`,
      [Buffer.from('{"old":1}')],
    );
    await migrate(pool, table);
    const { rows } = await pool.query(`SELECT id::int, headers FROM "${table}_dead"`);
    expect(rows).toEqual([{ id: 7, headers: null }]);
    await pool.query(`DROP TABLE "${table}", "${table}_dead"`);
  });
});
