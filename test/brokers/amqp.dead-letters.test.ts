/**
 * Dead letters over the real broker on loopback: list, replay and purge (the shared cases in
 * dead-letter-cases.ts, SIGKILL mid-replay included).
 */
import { afterAll } from 'vitest';
import { amqpDeadLetters } from '../../src/brokers/amqp/index.js';
import { amqpUnderTest } from '../fixtures/brokers/amqp-helpers.js';
import { deadLetterCases } from '../fixtures/brokers/dead-letter-cases.js';

const broker = await amqpUnderTest();
afterAll(() => broker.cleanup());

deadLetterCases(broker, (queue) => amqpDeadLetters({ queue }));
