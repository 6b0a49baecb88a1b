/**
 * Dead letters over the real broker on loopback: list, replay and purge (the shared cases in
 * dead-letter-cases.ts, SIGKILL mid-replay included).
 */
import { afterAll } from 'vitest';
import { natsDeadLetters } from '../../src/brokers/nats/index.js';
import { deadLetterCases } from '../fixtures/brokers/dead-letter-cases.js';
import { natsUnderTest } from '../fixtures/brokers/nats-helpers.js';

const broker = await natsUnderTest();
afterAll(() => broker.cleanup());

deadLetterCases(broker, (queue) => natsDeadLetters({ stream: queue }));
