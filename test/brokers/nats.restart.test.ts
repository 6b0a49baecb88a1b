/**
 * Issue 5, item 8 for NATS: the server is stopped and started mid-run; the consumer reconnects
 * and finishes, nothing is lost. Stops the machine's real nats-server: run serially, after the
 * other suites. The server is always left running (afterAll) and accepting connections.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { type NatsSource, natsSource } from '../../src/brokers/nats.js';
import { type NatsAdmin, natsAdmin, uniqueStream } from '../fixtures/brokers/nats-helpers.js';
import { startNats, stopNats } from '../fixtures/brokers/nats-server.js';

async function until(cond: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(20);
  }
}

let admin: NatsAdmin | undefined;
let source: NatsSource | undefined;
const stream = uniqueStream('R');

afterAll(async () => {
  await startNats(); // whatever happened, leave the server up
  await source?.close().catch(() => {});
  await admin?.cleanup(stream, `${stream}_DEAD`);
});

describe('NATS broker restart', () => {
  it('8. the server restarts mid-run: the consumer reconnects and finishes; nothing is lost', async () => {
    admin = await natsAdmin();
    source = await natsSource({ stream, consumer: 'workers', ackWait: 2000 });
    await admin.publishMany(`${stream}.work`, 3000, (i) => JSON.stringify({ i }));
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
      await stopNats();
      const ackedWhileDown = consumer.stats().acked;
      // The outage must hit mid-run, or this test proves nothing.
      expect(ackedWhileDown).toBeLessThan(3000);
      await sleep(1000);
      expect(consumer.stats().acked - ackedWhileDown).toBeLessThanOrEqual(16);
    } finally {
      await startNats();
    }
    await until(
      async () => seen.size === 3000 && (await admin!.count(stream).catch(() => -1)) === 0,
      40_000,
    );
    const report = await consumer.close();
    const duplicates = [...seen.values()].reduce((a, b) => a + b, 0) - 3000;
    console.info(
      `nats restart: ${report.stats.acked} acked, ${duplicates} duplicates, ${errors.length} broker errors reported`,
    );
    expect(seen.size).toBe(3000);
    expect(await admin.pending(stream, 'workers')).toMatchObject({ ackPending: 0, pending: 0 });
  }, 60_000);
});
