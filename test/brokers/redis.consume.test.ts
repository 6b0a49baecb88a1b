/**
 * consume() over Redis Streams, against the real server on loopback. The shared conformance
 * cases (consumer-cases.ts: throughput, retry and dead letter, close while blocked, held
 * bounded, malformed messages), with child processes (consumer-process-cases.ts: SIGKILL
 * recovery, two processes, SIGTERM drain) and the source contract (source-cases.ts). Redis-only
 * behaviour (heartbeats past the lease, XAUTOCLAIM, deleteOnAck) is in redis.test.ts; the
 * restart in redis.restart.test.ts.
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
