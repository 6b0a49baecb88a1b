import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/brokers/postgres/index.js';
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
});
