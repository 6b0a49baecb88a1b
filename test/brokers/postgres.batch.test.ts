/**
 * Batch handlers over a PostgreSQL table queue, against the real server on loopback (the shared
 * cases in fixtures/brokers/batch-cases.ts).
 */
import { afterAll } from 'vitest';
import { batchCases } from '../fixtures/brokers/batch-cases.js';
import { postgresUnderTest } from '../fixtures/brokers/postgres-helpers.js';

const broker = postgresUnderTest();
afterAll(() => broker.cleanup());

batchCases(broker);
