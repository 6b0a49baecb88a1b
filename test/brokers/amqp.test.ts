/**
 * The RabbitMQ adapter on its own, against the real broker on loopback: prefetch bound, ack,
 * retry through a delay queue, dead letter with the error, release, stale tags, topology
 * re-declare, quorum queues. Abort/close and enqueue(), shared by every adapter, are in
 * source-cases.ts (run by amqp.consume.test.ts).
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AmqpMessage, type AmqpSource, amqpSource } from '../../src/brokers/amqp/index.js';
import { LeaseLostError } from '../../src/errors.js';
import { type AmqpAdmin, amqpAdmin, uniqueQueue } from '../fixtures/brokers/amqp-helpers.js';
import { startFaultProxy } from '../fixtures/brokers/fault-proxy.js';

let admin: AmqpAdmin;
const queues: string[] = [];
const sources: AmqpSource[] = [];

async function setup(opts: { prefetch?: number } = {}) {
  const queue = uniqueQueue('a');
  queues.push(queue);
  const source = await amqpSource({ queue, ...opts });
  sources.push(source);
  return { queue, source };
}

beforeAll(async () => {
  admin = await amqpAdmin();
});
afterAll(async () => {
  for (const s of sources) await s.close();
  await admin.cleanup(...queues);
});

const never = new AbortController().signal;

/** The next message, asking with `free` slots (a new channel starts only with prefetch free). */
async function fetchOne(source: AmqpSource, free = 1): Promise<AmqpMessage> {
  for (;;) {
    const [m] = await source.fetch(free, never);
    if (m) return m;
  }
}

describe('amqpSource (adapter)', () => {
  it("turns Nagle's algorithm off on its connection: small frames (acks, cancel) go out at once", async () => {
    // amqplib calls setNoDelay(false) unless told otherwise; then a frame written behind an
    // unacknowledged one waits for the broker's delayed ACK (a 40 ms basic.cancel at close).
    const spy = vi.spyOn(net.Socket.prototype, 'setNoDelay');
    try {
      await setup();
      expect(spy).toHaveBeenCalled();
      expect(spy.mock.calls.every(([on]) => on === true)).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  it('prefetch bounds what the broker pushes; acked messages leave the queue', async () => {
    const { queue, source } = await setup({ prefetch: 8 });
    await admin.publishMany(queue, 50, (i) => `m${i}`);
    const got: string[] = [];
    while (got.length < 50) {
      const batch = await source.fetch(20, never);
      // Only 8 unacked deliveries may exist at once, however much we ask for.
      expect(batch.length).toBeLessThanOrEqual(8);
      for (const m of batch) {
        expect(m.deliveryCount).toBe(1);
        got.push(Buffer.from(m.body).toString());
        await source.ack(m);
      }
    }
    expect(new Set(got).size).toBe(50);
    await source.close();
    expect(await admin.depth(queue)).toMatchObject({ messageCount: 0 });
  });

  it("settles a message only on the source that handed it out: another source's tag is refused", async () => {
    // Delivery tags count per channel: tag 1 of one source's channel is some other delivery on
    // another's. Each source recognises only its own messages (and their producer headers).
    const a = await setup();
    const b = await setup();
    await admin.publishMany(a.queue, 1, () => 'from a');
    await admin.publishMany(b.queue, 1, () => 'from b');
    const fromA = await fetchOne(a.source);
    const fromB = await fetchOne(b.source);
    expect(fromA.id).toBe(fromB.id);
    await expect(b.source.ack(fromA)).rejects.toMatchObject({ code: 'ERR_LEASE_LOST' });
    expect('headers' in fromA).toBe(false);
    await a.source.ack(fromA);
    await b.source.ack(fromB);
    await a.source.close();
    await b.source.close();
    expect(await admin.depth(a.queue)).toMatchObject({ messageCount: 0 });
    expect(await admin.depth(b.queue)).toMatchObject({ messageCount: 0 });
  });

  it('retry comes back after the delay with deliveryCount + 1', async () => {
    const { source, queue } = await setup();
    await admin.publishMany(queue, 1, () => 'again');
    const first = await fetchOne(source);
    const t0 = Date.now();
    await source.retry(first, 300, new Error('boom'));
    const second = await fetchOne(source);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(Buffer.from(second.body).toString()).toBe('again');
    expect(second.deliveryCount).toBe(2);
    await source.retry(second, 0, new Error('boom'));
    const third = await fetchOne(source);
    expect(third.deliveryCount).toBe(3);
    await source.ack(third);
  });

  it('deadLetter moves body + error to <queue>.dead', async () => {
    const { queue, source } = await setup();
    await admin.publishMany(queue, 1, () => '{"bad"');
    const m = await fetchOne(source);
    const err = Object.assign(new Error('body is not JSON\nat all'), {
      code: 'ERR_MESSAGE_MALFORMED',
    });
    await source.deadLetter(m, err);
    const dead = await admin.drainQueue(`${queue}.dead`);
    expect(dead).toHaveLength(1);
    expect(dead[0]?.body).toBe('{"bad"');
    expect(dead[0]?.headers).toMatchObject({
      'x-sluice-error': 'body is not JSON at all',
      'x-sluice-error-code': 'ERR_MESSAGE_MALFORMED',
      'x-sluice-deliveries': 1,
    });
    await source.close();
    expect(await admin.depth(queue)).toMatchObject({ messageCount: 0 });
  });

  it('release requeues at once; the redelivery is flagged', async () => {
    const { source, queue } = await setup();
    await admin.publishMany(queue, 1, () => 'x');
    const m = await fetchOne(source);
    await source.release(m);
    const again = await fetchOne(source);
    expect(again.redelivered).toBe(true);
    expect(again.deliveryCount).toBe(1); // a release is not a failed delivery
    await source.ack(again);
  });

  it('never settles a tag from a dead channel (a lost lease): the broker redelivers instead', async () => {
    const { source, queue } = await setup();
    await admin.publishMany(queue, 2, (i) => `m${i}`);
    const held: AmqpMessage[] = [];
    while (held.length < 2) held.push(...(await source.fetch(2, never)));
    const [m1, m2] = held as [AmqpMessage, AmqpMessage];
    const before = source.reconnects;
    // Acking a tag twice is a channel error (406 unknown delivery tag): the broker closes the
    // channel, requeues m2, and the source reconnects.
    await source.ack(m1);
    await source.ack(m1);
    while (source.reconnects === before) await new Promise((r) => setTimeout(r, 10));
    await expect(source.ack(m2)).rejects.toMatchObject({
      code: 'ERR_LEASE_LOST',
      message: expect.stringMatching(/channel closed/),
    });
    await expect(source.retry(m2, 0, new Error('x'))).rejects.toMatchObject({
      code: 'ERR_LEASE_LOST',
    });
    await expect(source.deadLetter(m2, new Error('x'))).rejects.toMatchObject({
      code: 'ERR_LEASE_LOST',
    });
    await source.release(m2); // a no-op, not an error, on a dead channel
    // m1 is acked and m2 settled: both slots are free, so the new channel may start consuming.
    const again = await fetchOne(source, 2);
    expect(Buffer.from(again.body).toString()).toBe(Buffer.from(m2.body).toString());
    expect(again.redelivered).toBe(true);
    await source.ack(again);
    await source.close();
    expect(await admin.depth(queue)).toMatchObject({ messageCount: 0 });
  });

  it('re-declares its topology when the queue vanishes under it, and goes on consuming', async () => {
    const { source, queue } = await setup();
    await admin.publishMany(queue, 1, () => 'first');
    await source.ack(await fetchOne(source));
    const before = source.reconnects;
    // The broker cancels our consumer when its queue is deleted: the source rebuilds everything.
    await admin.ch.deleteQueue(queue);
    while (source.reconnects === before) await source.fetch(1, AbortSignal.timeout(50));
    // publish() needs the rebuilt link (it throws while reconnecting); the queue exists again
    // once it works, since topology is declared before the link counts as open.
    for (;;) {
      const ok = await source.publish('second').then(
        () => true,
        () => false,
      );
      if (ok) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const m = await fetchOne(source);
    expect(Buffer.from(m.body).toString()).toBe('second');
    await source.ack(m);
  });

  it('quorum queue: broker redeliveries (crash, release) count toward deliveryCount', async () => {
    const queue = uniqueQueue('quorum');
    queues.push(queue);
    const source = await amqpSource({ queue, queueType: 'quorum' });
    sources.push(source);
    await admin.publishMany(queue, 1, () => 'poison');
    const first = await fetchOne(source);
    expect(first.deliveryCount).toBe(1);
    await source.release(first); // as a crash would: the broker gets it back unacked
    const second = await fetchOne(source);
    expect(second.deliveryCount).toBe(2);
    await source.retry(second, 0, new Error('boom')); // republished: our header takes over
    const third = await fetchOne(source);
    expect(third.deliveryCount).toBe(3);
    await source.ack(third);
  });
});

describe('RabbitMQ connection failures', () => {
  it.each(['retry', 'deadLetter'] as const)(
    "a %s in flight when the connection drops fails with a coded error (the lost lease: RabbitMQ redelivers it), amqplib's own error as cause",
    async (op) => {
      const queue = uniqueQueue('cut');
      queues.push(queue);
      const proxy = await startFaultProxy({ port: 5672 });
      const source = await amqpSource({ queue, url: `amqp://guest:guest@127.0.0.1:${proxy.port}` });
      try {
        await admin.publishMany(queue, 1, () => '{}');
        const message = await fetchOne(source);
        // The copy is published and its confirm held back; then the connection drops.
        proxy.stall();
        const settle =
          op === 'retry'
            ? source.retry(message, 0, new Error('failed'))
            : source.deadLetter(message, new Error('failed'));
        proxy.refuse();
        proxy.cut();
        const failure = await settle.then(
          () => undefined,
          (error: unknown) => error as Error,
        );
        expect(failure).toBeInstanceOf(LeaseLostError);
        expect(failure).toMatchObject({ code: 'ERR_LEASE_LOST' });
        expect(failure?.cause).toBeInstanceOf(Error);
        expect(failure?.cause).not.toBeInstanceOf(LeaseLostError);
      } finally {
        proxy.accept();
        proxy.resume();
        await source.close();
        await proxy.close();
      }
    },
  );
});
