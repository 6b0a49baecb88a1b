/**
 * RabbitMQ publishes and their confirms, against the real broker on loopback: a broker that
 * never confirms (a stalled fault proxy between client and broker) fails the publish with
 * `PublishTimeoutError` (a consumer's retry or dead letter with `SettleTimeoutError`) instead of
 * hanging, and a broker that refuses the message (a nack, from a queue of our own declared with
 * `x-max-length: 0` and `x-overflow: reject-publish`, never a policy on the shared broker) fails it
 * with `UnroutableError`.
 */
import { type ChannelModel, type ConfirmChannel, connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { amqpDeadLetters } from '../../src/brokers/amqp/dead-letters.js';
import {
  type AmqpMessage,
  type AmqpSource,
  amqpSource,
  enqueue,
} from '../../src/brokers/amqp/index.js';
import {
  NotConnectedError,
  PublishTimeoutError,
  SettleTimeoutError,
  UnroutableError,
} from '../../src/errors.js';
import { type AmqpAdmin, amqpAdmin, uniqueQueue } from '../fixtures/brokers/amqp-helpers.js';
import { type FaultProxy, startFaultProxy } from '../fixtures/brokers/fault-proxy.js';

let admin: AmqpAdmin;
const queues: string[] = [];

beforeAll(async () => {
  admin = await amqpAdmin();
});
afterAll(async () => {
  await admin.conn.close().catch(() => {});
  const fresh = await amqpAdmin();
  await fresh.cleanup(...queues);
});

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as Error & { cause?: unknown },
  );

/** A queue that refuses every publish: RabbitMQ nacks it. */
async function fullQueue(tag: string): Promise<string> {
  const queue = uniqueQueue(tag);
  queues.push(queue);
  await admin.ch.assertQueue(queue, {
    durable: false,
    arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' },
  });
  return queue;
}

/** A confirm channel through a fault proxy, without heartbeats (a stall is never noticed). */
async function proxied(): Promise<{ proxy: FaultProxy; conn: ChannelModel; ch: ConfirmChannel }> {
  const proxy = await startFaultProxy({ port: 5672 });
  const conn = await connect(`amqp://guest:guest@127.0.0.1:${proxy.port}?heartbeat=0`);
  conn.on('error', () => {});
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => {});
  onTestFinished(async () => {
    vi.useRealTimers();
    proxy.cut();
    await proxy.close();
  });
  return { proxy, conn, ch };
}

describe('RabbitMQ enqueue: the confirm is waited for within a bound, its failures coded', () => {
  it('a broker that never confirms fails it with PublishTimeoutError after the target timeout', async () => {
    const queue = uniqueQueue('stall');
    queues.push(queue);
    await admin.ch.assertQueue(queue);
    const { proxy, ch } = await proxied();
    proxy.stall(); // the publish goes nowhere, and no confirm comes back
    const error = await rejection(enqueue({ channel: ch, queue, timeout: 200 }, { n: 1 }));
    expect(error).toBeInstanceOf(PublishTimeoutError);
    expect(error).toMatchObject({ code: 'ERR_PUBLISH_TIMEOUT', timeout: 200 });
    expect(error?.message).toContain(`RabbitMQ queue "${queue}"`);
  });

  it('a delayed job: the delay queue declaration counts within the same timeout', async () => {
    const queue = uniqueQueue('stalldelay');
    queues.push(queue);
    const { proxy, ch } = await proxied();
    proxy.stall(); // the declaration of <queue>.retry.2000 is never answered
    const error = await rejection(
      enqueue({ channel: ch, queue, timeout: 200 }, { n: 1 }, { delay: 2000 }),
    );
    expect(error).toBeInstanceOf(PublishTimeoutError);
    expect(error).toMatchObject({ code: 'ERR_PUBLISH_TIMEOUT', timeout: 200 });
  });

  it('waits 5000 ms by default', async () => {
    const queue = uniqueQueue('stall5');
    queues.push(queue);
    await admin.ch.assertQueue(queue);
    const { proxy, ch } = await proxied();
    proxy.stall();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let settled = false;
    const pending = rejection(enqueue({ channel: ch, queue }, 'x')).finally(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(4999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await pending).toMatchObject({ code: 'ERR_PUBLISH_TIMEOUT', timeout: 5000 });
  });

  it('refuses a timeout that is not a number of ms >= 1 as a bad option, before publishing', async () => {
    for (const timeout of [0, -1, Number.NaN, '100', 2 ** 31]) {
      const error = await rejection(
        enqueue({ channel: admin.ch, queue: 'never-published', timeout: timeout as number }, 'x'),
      );
      expect(error).toMatchObject({ code: 'ERR_INVALID_OPTION' });
      expect(error?.message).toMatch(/^Invalid option "timeout"/);
    }
  });

  it("a message the broker refuses (nack) fails with UnroutableError, amqplib's error as cause", async () => {
    const queue = await fullQueue('nack');
    const error = await rejection(enqueue({ channel: admin.ch, queue }, { n: 1 }));
    expect(error).toBeInstanceOf(UnroutableError);
    expect(error).toMatchObject({
      code: 'ERR_UNROUTABLE',
      message: expect.stringContaining(`refused (nacked) the publish to queue "${queue}"`),
    });
    expect(error?.cause).toBeInstanceOf(Error);
  });

  it.each([0, 2000])(
    'a closed channel fails it with NotConnectedError (delay %i)',
    async (delay) => {
      const ch = await admin.conn.createConfirmChannel();
      await ch.close();
      const error = await rejection(
        enqueue({ channel: ch, queue: 'never-published' }, 'x', { delay }),
      );
      expect(error).toBeInstanceOf(NotConnectedError);
      expect(error).toMatchObject({ code: 'ERR_NOT_CONNECTED' });
      expect(error?.cause).toBeInstanceOf(Error);
    },
  );
});

describe('RabbitMQ source: a publish or republish the broker never confirms fails after 5000 ms', () => {
  async function stalledSource(): Promise<{
    source: AmqpSource;
    proxy: FaultProxy;
    queue: string;
  }> {
    const queue = uniqueQueue('srcstall');
    queues.push(queue);
    const proxy = await startFaultProxy({ port: 5672 });
    const source = await amqpSource({
      queue,
      url: `amqp://guest:guest@127.0.0.1:${proxy.port}`,
      heartbeat: 0,
    });
    onTestFinished(async () => {
      vi.useRealTimers();
      proxy.resume();
      await source.close();
      await proxy.close();
    });
    return { source, proxy, queue };
  }

  async function fetchOne(source: AmqpSource): Promise<AmqpMessage> {
    for (;;) {
      const [m] = await source.fetch(1, new AbortController().signal);
      if (m) return m;
    }
  }

  it('publish: PublishTimeoutError', async () => {
    const { source, proxy } = await stalledSource();
    proxy.stall();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const pending = rejection(source.publish('x'));
    await vi.advanceTimersByTimeAsync(5000);
    const error = await pending;
    expect(error).toBeInstanceOf(PublishTimeoutError);
    expect(error).toMatchObject({ code: 'ERR_PUBLISH_TIMEOUT', timeout: 5000 });
  });

  it.each(['retry', 'deadLetter'] as const)('%s: SettleTimeoutError', async (op) => {
    const { source, proxy, queue } = await stalledSource();
    await admin.publishMany(queue, 1, () => '{}');
    const message = await fetchOne(source);
    proxy.stall();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const pending = rejection(
      op === 'retry'
        ? source.retry(message, 0, new Error('failed'))
        : source.deadLetter(message, new Error('failed')),
    );
    await vi.advanceTimersByTimeAsync(5000);
    const error = await pending;
    expect(error).toBeInstanceOf(SettleTimeoutError);
    expect(error).toMatchObject({
      code: 'ERR_SETTLE_TIMEOUT',
      operation: op === 'retry' ? 'retry' : 'dead-letter',
      timeout: 5000,
    });
  });
});

describe('RabbitMQ dead letters: a replay the broker refuses', () => {
  it('fails with UnroutableError; the letters stay in the dead queue', async () => {
    const queue = await fullQueue('replaynack');
    const dead = `${queue}.dead`;
    queues.push(dead);
    await admin.ch.assertQueue(dead, { durable: false });
    await admin.publishMany(dead, 2, (i) => `letter ${i}`);
    const letters = await amqpDeadLetters({ queue });
    const error = await rejection(letters.replay('all'));
    await letters.close(); // after its requeues of the letters
    expect(error).toBeInstanceOf(UnroutableError);
    expect(error).toMatchObject({
      code: 'ERR_UNROUTABLE',
      message: expect.stringContaining(`the letters stay in "${dead}"`),
    });
    expect((await admin.depth(dead)).messageCount).toBe(2);
  });
});
