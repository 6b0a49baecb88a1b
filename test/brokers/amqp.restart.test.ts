/**
 * RabbitMQ restart (restart-case.ts): a private RabbitMQ node (amqp-server.ts: its own node
 * name, ports and data folder) is stopped and started mid-run; the consumer reconnects
 * (re-declaring its topology) and finishes, nothing is lost. The machine's RabbitMQ is never
 * touched. The node is removed at the end, also when the test fails.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { type AmqpSource, amqpSource } from '../../src/brokers/amqp/index.js';
import { amqpAdmin, brokerCounts, uniqueQueue } from '../fixtures/brokers/amqp-helpers.js';
import { privateRabbit } from '../fixtures/brokers/amqp-server.js';
import { restartCase } from '../fixtures/brokers/restart-case.js';

let rabbit: Awaited<ReturnType<typeof privateRabbit>>;
let source: AmqpSource | undefined;
const queue = uniqueQueue('r');

beforeAll(async () => {
  rabbit = await privateRabbit();
  await rabbit.start();
}, 180_000);

afterAll(async () => {
  await source?.close().catch(() => {});
  await rabbit?.remove();
}, 60_000);

describe('RabbitMQ broker restart (private node)', () => {
  restartCase({
    name: 'amqp',
    async setup(count) {
      source = await amqpSource({ url: rabbit.url, queue, heartbeat: 1 }); // declares the queue
      // Its own connection, closed before the outage: only the source has to live through it.
      const admin = await amqpAdmin(rabbit.url);
      await admin.publishMany(queue, count, (i) => JSON.stringify({ i }));
      await admin.conn.close();
      return source;
    },
    stop: () => rabbit.stop(),
    start: () => rabbit.start(),
    unacked: async () => {
      const c = await brokerCounts(queue, rabbit.ctl);
      return c.ready + c.unacked;
    },
    reconnects: () => source?.reconnects ?? 0,
    timeout: 180_000, // a RabbitMQ node takes 5-20 s to start
  });
});
