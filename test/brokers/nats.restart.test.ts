/**
 * NATS restart (restart-case.ts): a private nats-server with JetStream (nats-server.ts: its own
 * port and store folder) is stopped and started mid-run; the consumer reconnects and finishes,
 * nothing is lost. The machine's nats-server is never touched. The server is removed at the
 * end, also when the test fails.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { type NatsSource, natsSource } from '../../src/brokers/nats/index.js';
import { type NatsAdmin, natsAdmin, uniqueStream } from '../fixtures/brokers/nats-helpers.js';
import { privateNats } from '../fixtures/brokers/nats-server.js';
import { restartCase } from '../fixtures/brokers/restart-case.js';

let nats: Awaited<ReturnType<typeof privateNats>>;
let admin: NatsAdmin | undefined;
let source: NatsSource | undefined;
const stream = uniqueStream('R');

beforeAll(async () => {
  nats = await privateNats();
  await nats.start();
});

afterAll(async () => {
  await source?.close().catch(() => {});
  await admin?.nc.close().catch(() => {});
  await nats?.remove();
});

describe('NATS broker restart (private server)', () => {
  restartCase({
    name: 'nats',
    async setup(count) {
      admin = await natsAdmin(nats.url);
      source = await natsSource({
        servers: nats.url,
        stream,
        consumer: 'workers',
        lease: 2000,
      });
      await admin.publishMany(`${stream}.work`, count, (i) => JSON.stringify({ i }));
      return source;
    },
    stop: () => nats.stop(),
    start: () => nats.start(),
    unacked: async () => {
      const p = await admin!.pending(stream, 'workers');
      return p.pending + p.ackPending;
    },
  });
});
