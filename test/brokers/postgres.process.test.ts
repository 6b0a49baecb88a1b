/** consume() over the PostgreSQL queue with child processes: issue 5 items 3 (SIGKILL), 4 (two processes), 5 (SIGTERM). */
import { postgresSource } from '../../src/brokers/postgres.js';
import { processCases } from '../fixtures/brokers/consumer-process-cases.js';
import { PG_URL, pgAdmin, uniqueTable } from '../fixtures/brokers/postgres-helpers.js';

const admin = pgAdmin();

processCases({
  name: 'postgres',
  unique: (tag) => uniqueTable(tag),
  fill: (table, items) => admin.fill(table, items),
  unacked: (table) => admin.remaining(table),
  deadLetters: async (table) => (await admin.deadLetters(table)).length,
  source: (table, lease) =>
    postgresSource({ connectionString: PG_URL, table, ...(lease ? { lease } : {}) }),
  childConfig: (table, lease) => ({
    broker: 'postgres',
    name: table,
    url: PG_URL,
    ...(lease ? { lease } : {}),
  }),
  cleanup: () => admin.cleanup(),
});
