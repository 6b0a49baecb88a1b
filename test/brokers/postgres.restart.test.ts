/**
 * PostgreSQL restart: a private server (postgres-server.ts: initdb in a temporary folder, its own
 * port) restarts mid-run; the consumer reconnects (pool and LISTEN connection) and finishes;
 * nothing is lost. Rows whose completion was lost in the outage keep their lease until it
 * expires and then run again — those duplicates are counted. The machine's PostgreSQL is never
 * touched. The server is removed at the end, also when the test fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { postgresSource } from '../../src/brokers/postgres/index.js';
import { Ledger, payloads } from '../fixtures/brokers/consumer-harness.js';
import { type PgAdmin, pgAdmin, uniqueTable } from '../fixtures/brokers/postgres-helpers.js';
import { privatePostgres } from '../fixtures/brokers/postgres-server.js';

let server: Awaited<ReturnType<typeof privatePostgres>>;
let admin: PgAdmin;

beforeAll(async () => {
  server = await privatePostgres();
  await server.start();
  admin = pgAdmin(server.url);
}, 120_000);

afterAll(async () => {
  await admin?.cleanup().catch(() => {});
  await server?.remove();
}, 60_000);

/** A fast shutdown and a start on the same data, as `pg_ctl restart -m fast` does. */
async function restart(): Promise<void> {
  await server.stop();
  await server.start();
}

describe('PostgreSQL restart mid-run', () => {
  it('the consumer reconnects and finishes; nothing is lost', async () => {
    const table = uniqueTable('restart');
    await admin.fill(table, payloads(2000));
    const ledger = new Ledger();
    const errors: string[] = [];
    const consumer = consume<{ k: string }>(
      await postgresSource({ connectionString: server.url, table, lease: 1000, fetchWait: 200 }),
      async ({ k }) => {
        await new Promise((r) => setTimeout(r, 1));
        ledger.add(k);
      },
      { concurrency: 16, onError: (e, op) => errors.push(`${op}: ${e.message}`) },
    );
    await ledger.until(500);
    await restart();
    await ledger.until(2000, 30_000);
    await waitEmpty(table);
    const report = await consumer.close();
    const lostAcks = errors.filter((e) => e.startsWith('ack:')).length;
    console.log(
      `postgres restart: ${ledger.runs.size} distinct, ${ledger.duplicates} duplicates, ${errors.length} broker errors (${lostAcks} lost acks)`,
    );
    expect(errors.length).toBeGreaterThan(0); // the outage was real
    expect(ledger.runs.size).toBe(2000);
    expect(report.stats.acked + lostAcks).toBe(2000 + ledger.duplicates);
    expect(await admin.remaining(table)).toBe(0);
    expect(await admin.deadLetters(table)).toEqual([]);
  });
});

/** The table empties once every row is acked (rows whose ack was lost run again after their lease). */
async function waitEmpty(table: string): Promise<void> {
  const end = Date.now() + 20_000;
  while ((await admin.remaining(table)) > 0) {
    if (Date.now() > end) throw new Error(`rows left in ${table}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
