/**
 * Batch handlers over Redis Streams, against the real server on loopback (the shared cases in
 * fixtures/brokers/batch-cases.ts).
 */
import { afterAll } from 'vitest';
import { batchCases } from '../fixtures/brokers/batch-cases.js';
import { redisUnderTest } from '../fixtures/brokers/redis-helpers.js';

const broker = await redisUnderTest();
afterAll(() => broker.cleanup());

batchCases(broker);
