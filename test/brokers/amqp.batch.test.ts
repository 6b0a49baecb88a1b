/**
 * Batch handlers over RabbitMQ, against the real server on loopback (the shared cases in
 * fixtures/brokers/batch-cases.ts).
 */
import { afterAll } from 'vitest';
import { amqpUnderTest } from '../fixtures/brokers/amqp-helpers.js';
import { batchCases } from '../fixtures/brokers/batch-cases.js';

const broker = await amqpUnderTest();
afterAll(() => broker.cleanup());

batchCases(broker);
