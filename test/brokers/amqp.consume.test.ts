/**
 * consume() over RabbitMQ, against the real broker on loopback. The shared conformance cases
 * (consumer-cases.ts: throughput, retry and dead letter, close while waiting, held bounded,
 * malformed messages), with child processes (consumer-process-cases.ts: SIGKILL recovery, two
 * processes, SIGTERM drain) and the source contract (source-cases.ts). A slow handler kept from
 * a second consumer is RabbitMQ's own (no heartbeat: the broker holds a delivery for its
 * channel) and stays here; the broker restart is in amqp.restart.test.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { amqpUnderTest, brokerCounts } from '../fixtures/brokers/amqp-helpers.js';
import { until } from '../fixtures/brokers/broker-under-test.js';
import { consumerCases } from '../fixtures/brokers/consumer-cases.js';
import { consumerGateCases } from '../fixtures/brokers/consumer-gate-cases.js';
import { processCases } from '../fixtures/brokers/consumer-process-cases.js';
import { enqueueCases } from '../fixtures/brokers/enqueue-cases.js';
import { sourceCases } from '../fixtures/brokers/source-cases.js';

const broker = await amqpUnderTest();
afterAll(() => broker.cleanup());

consumerCases(broker);
consumerGateCases(broker);
processCases(broker);
sourceCases(broker);
enqueueCases(broker);

describe('consume() over RabbitMQ, broker-specific', () => {
  it('a slow but alive handler is not handed to a second consumer (RabbitMQ holds it for the channel)', async () => {
    const queue = broker.unique('c7');
    const source = await broker.source(queue);
    const other = await broker.source(queue);
    await broker.fill(queue, [{ k: 'slow' }]);
    const calls: string[] = [];
    const slow = consume(
      source,
      async () => {
        calls.push('slow');
        await sleep(2000);
      },
      { concurrency: 1 },
    );
    await until(() => calls.length === 1, 'the slow handler started');
    const second = consume(other, async () => void calls.push('other'), { concurrency: 1 });
    await until(() => slow.stats().acked === 1, 'the slow handler acked', 10_000);
    await Promise.all([slow.close(), second.close()]);
    expect(calls).toEqual(['slow']);
    expect(await brokerCounts(queue)).toEqual({ ready: 0, unacked: 0 });
  }, 15_000);
});
