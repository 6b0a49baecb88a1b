/**
 * consume() over the PostgreSQL table queue, against the real server on loopback. The shared
 * conformance cases (consumer-cases.ts: throughput, retry and dead letter, close while waiting,
 * held bounded, malformed messages), with child processes (consumer-process-cases.ts: SIGKILL
 * recovery, two processes, SIGTERM drain) and the source contract (source-cases.ts).
 * PostgreSQL-only behaviour (NOTIFY wake-up, heartbeats past the lease, lease fencing) is in
 * postgres.test.ts; the restart in postgres.restart.test.ts.
 */
import { afterAll } from 'vitest';
import { consumerCases } from '../fixtures/brokers/consumer-cases.js';
import { consumerGateCases } from '../fixtures/brokers/consumer-gate-cases.js';
import { processCases } from '../fixtures/brokers/consumer-process-cases.js';
import { enqueueCases } from '../fixtures/brokers/enqueue-cases.js';
import { postgresUnderTest } from '../fixtures/brokers/postgres-helpers.js';
import { sourceCases } from '../fixtures/brokers/source-cases.js';

const broker = postgresUnderTest();
afterAll(() => broker.cleanup());

consumerCases(broker);
consumerGateCases(broker);
processCases(broker);
sourceCases(broker);
enqueueCases(broker);
