/**
 * Issue 5, item 8 for RabbitMQ (restart-case.ts): the broker application is stopped and started
 * mid-run; the consumer reconnects (re-declaring its topology) and finishes, nothing is lost.
 * Stops the machine's real RabbitMQ: run serially, after the other suites. The broker is always
 * left running (afterAll) and accepting connections.
 */
import { afterAll, describe } from 'vitest';
import { type AmqpSource, amqpSource } from '../../src/brokers/amqp.js';
import { amqpAdmin, brokerCounts, uniqueQueue } from '../fixtures/brokers/amqp-helpers.js';
import { startRabbit, stopRabbit } from '../fixtures/brokers/amqp-server.js';
import { restartCase } from '../fixtures/brokers/restart-case.js';

let source: AmqpSource | undefined;
const queue = uniqueQueue('r');

afterAll(async () => {
  await startRabbit(); // whatever happened, leave the broker up
  await source?.close().catch(() => {});
  await (await amqpAdmin()).cleanup(queue);
});

describe('RabbitMQ broker restart', () => {
  restartCase({
    name: 'amqp',
    async setup(count) {
      source = await amqpSource({ queue, heartbeat: 1 }); // declares the queue
      // Its own connection, closed before the outage: only the source has to live through it.
      const admin = await amqpAdmin();
      await admin.publishMany(queue, count, (i) => JSON.stringify({ i }));
      await admin.conn.close();
      return source;
    },
    stop: stopRabbit,
    start: startRabbit,
    unacked: async () => {
      const c = await brokerCounts(queue);
      return c.ready + c.unacked;
    },
    reconnects: () => source?.reconnects ?? 0,
  });
});
