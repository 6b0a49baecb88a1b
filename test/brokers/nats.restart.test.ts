/**
 * Issue 5, item 8 for NATS (restart-case.ts): the server is stopped and started mid-run; the
 * consumer reconnects and finishes, nothing is lost. Stops the machine's real nats-server: run
 * serially, after the other suites. The server is always left running (afterAll) and accepting
 * connections.
 */
import { afterAll, describe } from 'vitest';
import { type NatsSource, natsSource } from '../../src/brokers/nats.js';
import { type NatsAdmin, natsAdmin, uniqueStream } from '../fixtures/brokers/nats-helpers.js';
import { startNats, stopNats } from '../fixtures/brokers/nats-server.js';
import { restartCase } from '../fixtures/brokers/restart-case.js';

let admin: NatsAdmin | undefined;
let source: NatsSource | undefined;
const stream = uniqueStream('R');

afterAll(async () => {
  await startNats(); // whatever happened, leave the server up
  await source?.close().catch(() => {});
  await admin?.cleanup(stream, `${stream}_DEAD`);
});

describe('NATS broker restart', () => {
  restartCase({
    name: 'nats',
    async setup(count) {
      admin = await natsAdmin();
      source = await natsSource({ stream, consumer: 'workers', ackWait: 2000 });
      await admin.publishMany(`${stream}.work`, count, (i) => JSON.stringify({ i }));
      return source;
    },
    stop: stopNats,
    start: startNats,
    unacked: async () => {
      const p = await admin!.pending(stream, 'workers');
      return p.pending + p.ackPending;
    },
  });
});
