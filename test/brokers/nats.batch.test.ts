/**
 * Batch handlers over NATS JetStream, against the real server on loopback (the shared cases in
 * fixtures/brokers/batch-cases.ts).
 */
import { afterAll } from 'vitest';
import { batchCases } from '../fixtures/brokers/batch-cases.js';
import { natsUnderTest } from '../fixtures/brokers/nats-helpers.js';

const broker = await natsUnderTest();
afterAll(() => broker.cleanup());

batchCases(broker);
