/**
 * consume() over NATS JetStream, against the real server on loopback. The shared conformance
 * cases (consumer-cases.ts: throughput, retry and dead letter, close while waiting, held
 * bounded, malformed messages), with child processes (consumer-process-cases.ts: SIGKILL
 * recovery, two processes, SIGTERM drain) and the source contract (source-cases.ts). Heartbeats
 * past ack_wait are NATS's own and stay here; the restart is in nats.restart.test.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { until } from '../fixtures/brokers/broker-under-test.js';
import { consumerCases } from '../fixtures/brokers/consumer-cases.js';
import { consumerGateCases } from '../fixtures/brokers/consumer-gate-cases.js';
import { processCases } from '../fixtures/brokers/consumer-process-cases.js';
import { enqueueCases } from '../fixtures/brokers/enqueue-cases.js';
import { NATS_URL, natsUnderTest } from '../fixtures/brokers/nats-helpers.js';
import { sourceCases } from '../fixtures/brokers/source-cases.js';

const broker = await natsUnderTest();
const MAX_PAYLOAD = await (async () => {
  const nc = await connect({ servers: NATS_URL });
  try {
    return nc.info!.max_payload;
  } finally {
    await nc.close();
  }
})();
afterAll(() => broker.cleanup());

consumerCases(broker);
consumerGateCases(broker);
processCases(broker);
sourceCases(broker);
enqueueCases(broker);

describe('consume() over NATS JetStream, broker-specific', () => {
  it('a slow but alive handler (2 x ack_wait) is not handed to a second consumer', async () => {
    const stream = broker.unique('C7');
    // ack_wait 2 s (the second source keeps it): heartbeats every 667 ms leave 1.3 s of slack
    // for a late timer on a loaded machine (with 1 s, 667 ms).
    const source = await broker.source(stream, { recoverAfter: 2000 });
    const other = await broker.source(stream);
    await broker.fill(stream, [{ k: 'slow' }]);
    const calls: string[] = [];
    const slow = consume(
      source,
      async () => {
        calls.push('slow');
        await sleep(4000);
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

  it('close() while messages are being published hands back everything it fetched: none waits out ack_wait (x5)', async () => {
    for (let round = 0; round < 5; round++) {
      const stream = broker.unique('CPUB');
      await broker.fill(stream, []);
      let publishing = true;
      const publisher = (async () => {
        let i = 0;
        while (publishing) {
          await Promise.all(
            Array.from({ length: 20 }, () => broker.enqueue(stream, { k: `p${i++}` })),
          );
        }
      })();
      let handled = 0;
      const first = consume(await broker.source(stream), () => void handled++, {
        concurrency: 8,
      });
      await until(() => handled >= 50 + round * 20, 'messages flowing');
      await first.close();
      publishing = false;
      await publisher;
      // A nak'd message still counts as ack-pending until redelivered, so ask a second
      // consumer: what close() handed back comes at once; a message left delivered and
      // unacked would come only after ack_wait (30 s).
      const second = consume(await broker.source(stream), () => {}, { concurrency: 8 });
      try {
        await until(
          async () => (await broker.unacked(stream)) === 0,
          `round ${round}: all back`,
          10_000,
        );
      } finally {
        await second.close();
      }
    }
  }, 90_000);

  it.each([0, 40, 300])(
    'a poison message of max_payload - %i bytes whose handler always throws reaches the dead letter',
    async (less) => {
      const stream = broker.unique('CMAX');
      const source = await broker.source(stream);
      // A JSON body of exactly `size` bytes (the largest the server takes when less = 0).
      const size = MAX_PAYLOAD - less;
      const body = JSON.stringify({ k: 'x'.repeat(size - 8) });
      expect(Buffer.byteLength(body)).toBe(size);
      await broker.fill(stream, [body]);
      const errors: string[] = [];
      const consumer = consume(
        source,
        () => {
          throw new Error(`poison: ${'e'.repeat(5000)}`);
        },
        {
          concurrency: 1,
          maxDeliveries: 1,
          maxBodySize: size,
          onError: (e) => void errors.push(e.message),
        },
      );
      await until(async () => (await broker.deadLetters(stream)).length === 1, 'the dead letter');
      const report = await consumer.close();
      const [letter] = await broker.deadLetters(stream);
      expect(letter!.body.length).toBe(size);
      // What fits of the error is kept, cut.
      if (less >= 300) expect(letter!.error).toMatch(/^poison: e+…$/);
      expect(errors).toEqual([]);
      expect(report.stats).toMatchObject({ deadLettered: 1, errors: 0 });
      expect(await broker.unacked(stream)).toBe(0);
    },
  );
});
