/**
 * consume() over Redis Streams, against the real server on loopback. The shared conformance
 * cases: issue 5 items 1, 2, 5 (close while blocked), 6 and 9 (consumer-cases.ts); with child
 * processes, 3, 4 and 5 (SIGTERM drain; consumer-process-cases.ts); the source contract
 * (source-cases.ts). Redis-only behaviour (item 7, XAUTOCLAIM, deleteOnAck) is in
 * redis.test.ts; the restart (8) in redis.restart.test.ts.
 */
import { afterAll } from 'vitest';
import { consumerCases } from '../fixtures/brokers/consumer-cases.js';
import { consumerGateCases } from '../fixtures/brokers/consumer-gate-cases.js';
import { processCases } from '../fixtures/brokers/consumer-process-cases.js';
import { enqueueCases } from '../fixtures/brokers/enqueue-cases.js';
import { redisUnderTest } from '../fixtures/brokers/redis-helpers.js';
import { sourceCases } from '../fixtures/brokers/source-cases.js';

const broker = await redisUnderTest();
afterAll(() => broker.cleanup());

consumerCases(broker);
consumerGateCases(broker);
processCases(broker);
sourceCases(broker);
enqueueCases(broker);
