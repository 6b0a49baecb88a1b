/**
 * Issue 5, item 8 for RabbitMQ: the broker application is stopped and started mid-run; the
 * consumer reconnects (re-declaring its topology) and finishes, nothing is lost. Stops the
 * machine's real RabbitMQ: run serially, after the other suites. The broker is always left
 * running (afterAll) and accepting connections.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { type AmqpSource, amqpSource } from '../../src/brokers/amqp.js';
import { consume } from '../../src/brokers/consumer.js';
import {
  type AmqpAdmin,
  amqpAdmin,
  brokerCounts,
  uniqueQueue,
} from '../fixtures/brokers/amqp-helpers.js';
import { startRabbit, stopRabbit } from '../fixtures/brokers/amqp-server.js';

async function until(cond: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(20);
  }
}

let source: AmqpSource | undefined;
const queue = uniqueQueue('r');

afterAll(async () => {
  await startRabbit(); // whatever happened, leave the broker up
  await source?.close().catch(() => {});
  const admin: AmqpAdmin = await amqpAdmin();
  await admin.cleanup(queue);
});

describe('RabbitMQ broker restart', () => {
  it('8. the broker restarts mid-run: the consumer reconnects and finishes; nothing is lost', async () => {
    source = await amqpSource({ queue, heartbeat: 1 }); // declares the queue
    const admin = await amqpAdmin();
    await admin.publishMany(queue, 3000, (i) => JSON.stringify({ i }));
    await admin.conn.close();
    const seen = new Map<number, number>();
    const errors: string[] = [];
    const consumer = consume<{ i: number }>(
      source,
      async ({ i }) => {
        seen.set(i, (seen.get(i) ?? 0) + 1);
        await sleep(10);
      },
      { concurrency: 16, onError: (e, op) => void errors.push(`${op}: ${e.message}`) },
    );
    await until(() => consumer.stats().acked >= 300, 20_000);
    try {
      await stopRabbit();
      const ackedWhileDown = consumer.stats().acked;
      // The outage must hit mid-run, or this test proves nothing.
      expect(ackedWhileDown).toBeLessThan(3000);
      await sleep(1000);
      expect(consumer.stats().acked - ackedWhileDown).toBeLessThanOrEqual(16);
    } finally {
      await startRabbit();
    }
    await until(() => seen.size === 3000, 40_000);
    await until(async () => {
      const c = await brokerCounts(queue);
      return c.ready === 0 && c.unacked === 0;
    }, 10_000);
    const report = await consumer.close();
    const duplicates = [...seen.values()].reduce((a, b) => a + b, 0) - 3000;
    console.info(
      `amqp restart: ${report.stats.acked} acked, ${duplicates} duplicates, ${source.reconnects} reconnects, ${errors.length} broker errors reported`,
    );
    expect(source.reconnects).toBeGreaterThanOrEqual(1);
    expect(seen.size).toBe(3000);
    expect(await brokerCounts(queue)).toEqual({ ready: 0, unacked: 0 });
  }, 60_000);
});
