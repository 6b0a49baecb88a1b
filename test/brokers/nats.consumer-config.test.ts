/**
 * An existing durable consumer and the options of a later natsSource: updated where JetStream
 * can, refused (naming the option, the value asked for and the server's) where it cannot —
 * never silently kept as it was.
 */
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsSource } from '../../src/brokers/nats/index.js';
import { type NatsAdmin, natsAdmin, uniqueStream } from '../fixtures/brokers/nats-helpers.js';

let admin: NatsAdmin;
const streams: string[] = [];

beforeAll(async () => {
  admin = await natsAdmin();
});
afterAll(async () => {
  await admin.cleanup(...streams);
});

function names(): { stream: string; consumer: string } {
  const stream = uniqueStream('CFG');
  streams.push(stream, `${stream}_DEAD`);
  return { stream, consumer: 'c' };
}

async function serverConfig(stream: string, consumer = 'c') {
  const { config } = await admin.jsm.consumers.info(stream, consumer);
  return {
    ackWait: (config.ack_wait ?? 0) / 1e6,
    maxDeliver: config.max_deliver,
    maxAckPending: config.max_ack_pending,
  };
}

async function opened(options: Parameters<typeof natsSource>[0]): Promise<void> {
  const source = await natsSource(options);
  await source.close();
}

describe('natsSource on a durable consumer that exists already', () => {
  it("sets the consumer's ack_wait to a lease given, and keeps the server's when none is given", async () => {
    const n = names();
    await opened(n);
    expect((await serverConfig(n.stream)).ackWait).toBe(30_000);
    await opened({ ...n, lease: 1000 });
    expect((await serverConfig(n.stream)).ackWait).toBe(1000);
    // No lease asked for: the consumer keeps the one it has (an operator's or another
    // deployment's), and heartbeats follow it.
    const source = await natsSource(n);
    expect(source.heartbeatInterval).toBe(Math.floor(1000 / 3));
    await source.close();
    expect((await serverConfig(n.stream)).ackWait).toBe(1000);
  });

  it("keeps an operator's max_deliver, and sets max_ack_pending only when maxAckPending is given", async () => {
    const n = names();
    await opened({ ...n, maxAckPending: 50 });
    await admin.jsm.consumers.update(n.stream, n.consumer, { max_deliver: 3 });
    await opened(n);
    expect(await serverConfig(n.stream)).toMatchObject({ maxDeliver: 3, maxAckPending: 50 });
    await opened({ ...n, maxAckPending: 70 });
    expect(await serverConfig(n.stream)).toMatchObject({ maxDeliver: 3, maxAckPending: 70 });
  });

  it('refuses a subject other than the consumer filter, naming both', async () => {
    const n = names();
    await opened(n);
    await expect(natsSource({ ...n, subject: `${n.stream}.other` })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(
        new RegExp(`"subject".*"${n.stream}\\.work" on the server.*got "${n.stream}\\.other"`),
      ),
    });
  });

  it('refuses a consumer whose ack policy is not explicit, naming it', async () => {
    const n = names();
    // A work-queue stream (as declared here) takes only explicit acks: a limits stream of the
    // operator's does not.
    await admin.jsm.streams.add({
      name: n.stream,
      subjects: [`${n.stream}.work`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
    });
    await admin.jsm.consumers.add(n.stream, {
      durable_name: n.consumer,
      ack_policy: AckPolicy.All,
      deliver_policy: DeliverPolicy.All,
      filter_subject: `${n.stream}.work`,
      ack_wait: nanos(30_000),
    });
    await expect(natsSource(n)).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(/"consumer".*ack_policy "explicit".*has "all"/),
    });
  });

  it('with declare: false, refuses a lease that differs from ack_wait and leaves the consumer as it is', async () => {
    const n = names();
    await opened({ ...n, lease: 2000 });
    await expect(natsSource({ ...n, declare: false, lease: 5000 })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(/"lease".*\(2000 ms\).*got 5000/),
    });
    expect((await serverConfig(n.stream)).ackWait).toBe(2000);
    // No lease given: the server's is used.
    const source = await natsSource({ ...n, declare: false });
    expect(source.heartbeatInterval).toBe(666);
    await source.close();
  });
});
