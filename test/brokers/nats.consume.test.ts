/**
 * consume() over NATS JetStream, against the real server on loopback. The shared conformance
 * cases: issue 5 items 1, 2, 5 (close while waiting), 6 and 9 (consumer-cases.ts); with child
 * processes, 3, 4 and 5 (SIGTERM drain; consumer-process-cases.ts); the source contract
 * (source-cases.ts). Item 7 (heartbeats past ack_wait) is NATS's own and stays here; the
 * restart (8) is in nats.restart.test.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { until } from '../fixtures/brokers/broker-under-test.js';
import { consumerCases } from '../fixtures/brokers/consumer-cases.js';
import { processCases } from '../fixtures/brokers/consumer-process-cases.js';
import { natsUnderTest } from '../fixtures/brokers/nats-helpers.js';
import { sourceCases } from '../fixtures/brokers/source-cases.js';

const broker = await natsUnderTest();
afterAll(() => broker.cleanup());

consumerCases(broker);
processCases(broker);
sourceCases(broker);

describe('consume() over NATS JetStream, broker-specific', () => {
  it('item 7: a slow but alive handler (3 x ack_wait) is not handed to a second consumer', async () => {
    const stream = broker.unique('C7');
    const source = await broker.source(stream, { recoverAfter: 1000 });
    const other = await broker.source(stream);
    await broker.fill(stream, [{ k: 'slow' }]);
    const calls: string[] = [];
    const slow = consume(
      source,
      async () => {
        calls.push('slow');
        await sleep(3000);
      },
      { concurrency: 1 },
    );
    await until(() => calls.length === 1, 'the slow handler started');
    const second = consume(other, async () => void calls.push('other'), { concurrency: 1 });
    await until(() => slow.stats().acked === 1, 'the slow handler acked', 10_000);
    await Promise.all([slow.close(), second.close()]);
    expect(calls).toEqual(['slow']);
    expect(await broker.unacked(stream)).toBe(0);
  }, 15_000);
});
