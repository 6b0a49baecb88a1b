/**
 * Dead letters over the real broker on loopback: list, replay and purge (the shared cases in
 * dead-letter-cases.ts, SIGKILL mid-replay included).
 */
import { afterAll } from 'vitest';
import { postgresDeadLetters } from '../../src/brokers/postgres/index.js';
import { deadLetterCases } from '../fixtures/brokers/dead-letter-cases.js';
import { PG_URL, postgresUnderTest } from '../fixtures/brokers/postgres-helpers.js';

const broker = postgresUnderTest();
afterAll(() => broker.cleanup());

deadLetterCases(broker, (queue) => postgresDeadLetters({ connectionString: PG_URL, table: queue }));
