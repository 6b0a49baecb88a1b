/**
 * Dead letters over the real broker on loopback: list, replay and purge (the shared cases in
 * dead-letter-cases.ts, SIGKILL mid-replay included).
 */
import { afterAll } from 'vitest';
import { redisDeadLetters } from '../../src/brokers/redis.js';
import { deadLetterCases } from '../fixtures/brokers/dead-letter-cases.js';
import { redisUnderTest } from '../fixtures/brokers/redis-helpers.js';

const broker = await redisUnderTest();
afterAll(() => broker.cleanup());

deadLetterCases(broker, (queue) => redisDeadLetters({ stream: queue }));
