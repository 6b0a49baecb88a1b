/**
 * RabbitMQ failures found by attacking the consumers, against the real broker on loopback:
 * republishes routed nowhere (a deleted dead-letter or delay queue), a `prefetch` above the
 * consumer's concurrency, and a peer that accepts TCP but never speaks AMQP.
 */
import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  type AmqpMessage,
  type AmqpSource,
  amqpDeadLetters,
  amqpSource,
  consume,
} from '../../src/brokers/amqp/index.js';
import {
  type AmqpAdmin,
  amqpAdmin,
  brokerCounts,
  closeConnectionNamed,
  uniqueQueue,
} from '../fixtures/brokers/amqp-helpers.js';
import { until } from '../fixtures/brokers/broker-under-test.js';
import { loopStopwatch } from '../helpers.js';

let admin: AmqpAdmin;
const queues: string[] = [];
const extraQueues: string[] = [];
const sources: AmqpSource[] = [];

beforeAll(async () => {
  admin = await amqpAdmin();
});
afterAll(async () => {
  for (const s of sources) await s.close();
  // A fresh connection: a failed assertion may have left `admin`'s channel closed (a 404).
  await admin.conn.close().catch(() => {});
  const fresh = await amqpAdmin();
  for (const q of extraQueues) await fresh.ch.deleteQueue(q).catch(() => {});
  await fresh.cleanup(...queues);
});

async function setup(tag: string, opts: { prefetch?: number } = {}) {
  const queue = uniqueQueue(tag);
  queues.push(queue);
  const source = await amqpSource({ queue, ...opts });
  sources.push(source);
  return { queue, source };
}

/** Ready messages in `queue`, or undefined when it does not exist (a 404 closes the channel). */
async function readyIn(queue: string): Promise<number | undefined> {
  const ch = await admin.conn.createChannel();
  ch.on('error', () => {});
  try {
    return (await ch.checkQueue(queue)).messageCount;
  } catch {
    return undefined;
  } finally {
    await ch.close().catch(() => {});
  }
}

/** The next delivery, or undefined if none arrives within `ms`. */
async function fetchWithin(source: AmqpSource, ms: number): Promise<AmqpMessage | undefined> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const [m] = await source.fetch(1, AbortSignal.timeout(Math.max(1, end - Date.now())));
    if (m) return m;
  }
  return undefined;
}

const text = (m: AmqpMessage | undefined) => (m ? Buffer.from(m.body).toString() : undefined);

/**
 * Routes `queue`'s dead letters to a queue that takes nothing instead of `<queue>.dead`, with
 * queue arguments of our own (never a policy on the shared broker): RabbitMQ nacks their publish.
 */
async function refuseDeadLetters(queue: string): Promise<void> {
  await admin.ch.unbindQueue(`${queue}.dead`, `${queue}.dlx`, queue);
  const full = `${queue}.full`;
  extraQueues.push(full);
  await admin.ch.assertQueue(full, {
    durable: false,
    arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' },
  });
  await admin.ch.bindQueue(full, `${queue}.dlx`, queue);
}

describe('amqpSource: republishes are acked away only once routed to a queue', () => {
  it('dead letters to a deleted <queue>.dead re-declare it and land there (x20)', async () => {
    const { queue, source } = await setup('dlqgone');
    await admin.ch.deleteQueue(`${queue}.dead`);
    await admin.publishMany(queue, 2, (i) => (i === 0 ? '{"k":"fails"}' : 'not json'));
    const errors: string[] = [];
    const consumer = consume(
      source,
      async () => {
        throw new Error('handler failed');
      },
      { concurrency: 2, maxDeliveries: 1, onError: (e, op) => errors.push(`${op}: ${e.message}`) },
    );
    await until(() => consumer.stats().deadLettered + consumer.stats().errors >= 2, 'both settled');
    const report = await consumer.close();
    expect(errors).toEqual([]);
    expect(report.stats.deadLettered).toBe(2);
    expect(await readyIn(`${queue}.dead`)).toBe(2);
    const dead = await admin.drainQueue(`${queue}.dead`);
    expect(dead.map((d) => d.body).sort()).toEqual(['not json', '{"k":"fails"}']);
    expect(await readyIn(queue)).toBe(0);
  });

  it('a dead letter that cannot be routed is not acked: the call rejects and the message stays in the queue', async () => {
    const { queue, source } = await setup('dlqbogus');
    const deadQueue = `${queue}.dead`;
    // An unbound, non-durable stand-in: the dead letter routes nowhere, and re-declaring the
    // durable queue fails (PRECONDITION_FAILED), so the topology cannot be repaired.
    await admin.ch.deleteQueue(deadQueue);
    await admin.ch.assertQueue(deadQueue, { durable: false });
    await admin.publishMany(queue, 1, () => 'precious');
    const m = await fetchWithin(source, 5000);
    expect(text(m)).toBe('precious');
    await expect(source.deadLetter(m!, new Error('poison'))).rejects.toThrow();
    // Not acked: back in the work queue (the source cannot consume while its topology is broken).
    await until(async () => (await readyIn(queue)) === 1, 'the message is back in the queue');
    expect(await readyIn(deadQueue)).toBe(0);
    // Once the stand-in is gone the source reconnects, re-declares, and the dead letter lands.
    await admin.ch.deleteQueue(deadQueue);
    const again = await fetchWithin(source, 15_000);
    expect(text(again)).toBe('precious');
    await source.deadLetter(again!, new Error('poison'));
    const dead = await admin.drainQueue(deadQueue);
    expect(dead.map((d) => [d.body, d.headers['x-sluice-error']])).toEqual([
      ['precious', 'poison'],
    ]);
    expect(await readyIn(queue)).toBe(0);
  }, 30_000);

  it("a dead letter the broker refuses (its exchange deleted: 404) names the broker's reason; the next delivery dead-letters", async () => {
    const { queue, source } = await setup('dlxgone');
    await admin.publishMany(queue, 1, () => 'precious');
    const m = await fetchWithin(source, 5000);
    expect(text(m)).toBe('precious');
    const before = source.reconnects;
    // A publish to an exchange that does not exist is a channel error: RabbitMQ closes the
    // publishing channel (404 NOT_FOUND), the source rebuilds its link, and amqplib fails the
    // publish in flight with a bare "channel closed".
    await admin.ch.deleteExchange(`${queue}.dlx`);
    const error = await source.deadLetter(m!, new Error('poison')).then(
      () => undefined,
      (e: unknown) => e as Error & { cause?: unknown },
    );
    expect(error).toMatchObject({ code: 'ERR_LEASE_LOST', messageId: m!.id });
    expect(error?.message).toMatch(/channel closed/);
    expect(error?.message).toMatch(/404/);
    expect(error?.message).toMatch(/NOT_FOUND - no exchange '[^']*\.dlx'/);
    expect(error?.cause).toMatchObject({ code: 404, message: expect.stringMatching(/NOT_FOUND/) });
    // Nothing lost: the rebuilt link re-declared the exchange, and the redelivery dead-letters.
    await until(() => source.reconnects > before, 'the link rebuilt');
    const again = await fetchWithin(source, 15_000);
    expect(text(again)).toBe('precious');
    await source.deadLetter(again!, new Error('poison'));
    const dead = await admin.drainQueue(`${queue}.dead`);
    expect(dead.map((d) => [d.body, d.headers['x-sluice-error']])).toEqual([
      ['precious', 'poison'],
    ]);
    expect(await readyIn(queue)).toBe(0);
  }, 30_000);

  it('a dead letter RabbitMQ refuses (nacks: a full queue with reject-publish) is UnroutableError; the message stays', async () => {
    const { queue, source } = await setup('dlqnack');
    await refuseDeadLetters(queue); // RabbitMQ nacks the dead letter's publish
    await admin.publishMany(queue, 1, () => 'precious');
    const m = await fetchWithin(source, 5000);
    const error = await source.deadLetter(m!, new Error('poison')).then(
      () => undefined,
      (e: unknown) => e as Error & { cause?: unknown },
    );
    expect(error).toMatchObject({
      code: 'ERR_UNROUTABLE',
      message: expect.stringMatching(/refused \(nacked\)/),
    });
    expect(error?.cause).toBeInstanceOf(Error);
    // Not acked: handed back to the work queue after the backoff, and delivered again.
    const again = await fetchWithin(source, 10_000);
    expect(text(again)).toBe('precious');
    expect(again?.redelivered).toBe(true);
    await source.ack(again!);
    expect(await readyIn(`${queue}.dead`)).toBe(0);
  }, 20_000);

  it('a dead letter that keeps failing does not loop: the original comes back after a backoff', async () => {
    const { queue, source } = await setup('dlqloop');
    // Nacked, nothing is returned: nothing to repair, and the channel stays up.
    await refuseDeadLetters(queue);
    await admin.publishMany(queue, 1, () => '{"k":"poison"}');
    const failedAt: number[] = [];
    let runs = 0;
    const consumer = consume(
      source,
      async () => {
        runs++;
        throw new Error('handler failed');
      },
      {
        concurrency: 1,
        maxDeliveries: 1,
        onError: (_, op) => {
          if (op === 'deadLetter') failedAt.push(performance.now());
        },
      },
    );
    await until(() => failedAt.length >= 2, 'two failed dead-letterings', 15_000);
    await consumer.close();
    // Handed back at once it looped ~2,500 times a second; now the first comes back after 1 s.
    expect(failedAt[1]! - failedAt[0]!).toBeGreaterThanOrEqual(900);
    // A classic queue does not count a redelivery, so the handler may run again — once per
    // backoff, not in a loop (it ran ~5,000 times in 2 s).
    expect(runs).toBeLessThanOrEqual(failedAt.length);
  }, 30_000);

  it('a retry to a deleted delay queue re-declares it; the message comes back', async () => {
    const { queue, source } = await setup('retrygone');
    const delayQueue = `${queue}.retry.300`;
    extraQueues.push(delayQueue);
    await admin.publishMany(queue, 1, () => 'again');
    const first = await fetchWithin(source, 5000);
    await source.retry(first!, 300, new Error('boom'));
    const second = await fetchWithin(source, 5000);
    expect(second?.deliveryCount).toBe(2);
    // The source declared this delay queue moments ago and will not declare it again for 30 s.
    await admin.ch.deleteQueue(delayQueue);
    await source.retry(second!, 300, new Error('boom'));
    const third = await fetchWithin(source, 5000);
    expect(text(third)).toBe('again');
    expect(third?.deliveryCount).toBe(3);
    await source.ack(third!);
    expect(await readyIn(queue)).toBe(0);
  });
});

describe('amqpDeadLetters: a replay to a deleted work queue', () => {
  it('fails with UnroutableError (ERR_UNROUTABLE) and the letter stays in the dead queue', async () => {
    const queue = uniqueQueue('replaygone');
    queues.push(queue);
    await admin.ch.assertQueue(queue, { durable: true });
    await admin.ch.assertQueue(`${queue}.dead`, { durable: true });
    await admin.publishMany(`${queue}.dead`, 1, () => 'letter');
    const dead = await amqpDeadLetters({ queue });
    onTestFinished(() => dead.close());
    await admin.ch.deleteQueue(queue);
    await expect(dead.replay('all')).rejects.toMatchObject({
      code: 'ERR_UNROUTABLE',
      message: expect.stringContaining(`the work queue ${JSON.stringify(queue)} is gone`),
    });
    expect(await readyIn(`${queue}.dead`)).toBe(1);
  });
});

describe('amqpSource: prefetch never exceeds the consumer concurrency (x13)', () => {
  it('consume() throws for a prefetch above concurrency (ERR_INVALID_OPTION naming both), before anything is consumed', async () => {
    const { queue, source } = await setup('pfbig', { prefetch: 50 });
    expect(source.prefetch).toBe(50);
    await admin.publishMany(queue, 10, (i) => JSON.stringify({ i }));
    // Was: refused only at the first fetch, reported to onError (stderr by default), and `done`
    // resolved with an all-zero report, as after a clean stop.
    let thrown: unknown;
    try {
      consume(source, async () => {}, { concurrency: 2 });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RangeError);
    expect(thrown).toMatchObject({
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(/^Invalid option "prefetch".*concurrency \(2\).*got 50/),
    });
    // Nothing was pushed to this process: no broker consumer, every message still ready.
    expect(await admin.depth(queue)).toEqual({ messageCount: 10, consumerCount: 0 });
    // Several sources share one concurrency: each source's prefetch is checked against it.
    const small = await setup('pfsmall', { prefetch: 2 });
    expect(() => consume([small.source, source], async () => {}, { concurrency: 4 })).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_OPTION',
        message: expect.stringMatching(/"prefetch".*\(4\).*got 50/),
      }),
    );
    expect(await readyIn(queue)).toBe(10);
  });

  it('a first fetch smaller than prefetch (the backstop: a direct fetch, or a lane of several sources) is refused the same way', async () => {
    const { source } = await setup('pfdirect', { prefetch: 8 });
    const never = new AbortController().signal;
    await expect(source.fetch(2, never)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    await expect(source.fetch(20, never)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
  });

  it('a prefetch at or below concurrency works and bounds what is held', async () => {
    for (const [prefetch, concurrency] of [
      [2, 2],
      [1, 4],
    ] as const) {
      const { queue, source } = await setup('pfok', { prefetch });
      await admin.publishMany(queue, 20, (i) => JSON.stringify({ i }));
      let running = 0;
      let peakRunning = 0;
      const consumer = consume(
        source,
        async () => {
          peakRunning = Math.max(peakRunning, ++running);
          await new Promise((r) => setImmediate(r));
          running--;
        },
        { concurrency },
      );
      await until(() => consumer.stats().acked === 20, 'all acked');
      const report = await consumer.close();
      expect(report.stats.peakHeld).toBeLessThanOrEqual(prefetch);
      expect(peakRunning).toBeLessThanOrEqual(prefetch);
      expect(await readyIn(queue)).toBe(0);
    }
  });
});

describe('amqpSource: connectTimeout (x8)', () => {
  // Silent: says nothing. Trickling: starts a frame and sends a byte every 50 ms, which keeps
  // resetting a socket idle timer (amqplib's own `timeout`), so only a deadline ends it.
  for (const peer of ['silent', 'trickling'] as const) {
    it(`a ${peer} peer that accepts TCP but never completes the handshake fails after connectTimeout, naming the URL without its password`, async () => {
      const sockets = new Set<Socket>();
      const server = createServer((s) => {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => sockets.delete(s));
        // Reading is what lets this side see the client's FIN (a paused socket never ends).
        s.resume();
        if (peer === 'trickling') {
          s.write(Buffer.from([1, 0, 0, 0, 0, 0, 100]));
          const drip = setInterval(() => s.write(Buffer.from([0])), 50);
          s.on('close', () => clearInterval(drip));
        }
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const { port } = server.address() as { port: number };
      try {
        const t0 = Date.now();
        // Its upper bound in event-loop time (loopStopwatch): on a loaded machine the
        // connectTimeout timer fires any amount late in wall time.
        const watch = loopStopwatch();
        const error = await amqpSource({
          url: `amqp://guest:s3cret@127.0.0.1:${port}/vh`,
          queue: 'sluice.test.silent',
          connectTimeout: 300,
        }).then(
          () => undefined,
          (e: unknown) => e as Error & { code?: string },
        );
        const elapsed = Date.now() - t0;
        const waited = watch.stop();
        expect(error?.code).toBe('ERR_CONNECT_TIMEOUT');
        expect(error?.message).toContain(`amqp://guest:***@127.0.0.1:${port}/vh`);
        expect(error?.message).toContain('within 300 ms');
        expect(error?.message).not.toContain('s3cret');
        expect(elapsed).toBeGreaterThanOrEqual(250);
        expect(waited).toBeLessThan(5000);
        // The abandoned socket is closed, not left open to the peer.
        await until(() => sockets.size === 0, 'the client closed its socket');
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise((r) => server.close(r));
      }
    });
  }

  it('connectTimeout must be a positive number of ms', async () => {
    for (const bad of [0, -1, Number.NaN, '10']) {
      await expect(
        amqpSource({ queue: 'sluice.test.never', connectTimeout: bad as number }),
      ).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', message: /connectTimeout/ });
    }
  });
});

describe('amqpSource: no message is un-dead-letterable', () => {
  it.each([
    ['with what fits of the error', 2600],
    ['through the queue’s DLX when even the delivery count does not fit', 1100],
  ])(
    'a message whose headers nearly fill what a republish carries still reaches the dead letter, %s',
    async (_, less) => {
      const { queue, source } = await setup('bighdr');
      // The original's headers nearly fill what amqplib can encode (64 KiB): the error headers added
      // by a dead letter must not push the republish over it.
      const big = 'h'.repeat(65_536 - less);
      admin.ch.sendToQueue(queue, Buffer.from('{"k":"big"}'), {
        persistent: true,
        headers: { 'x-big': big },
      });
      await admin.ch.waitForConfirms();
      const errors: string[] = [];
      const consumer = consume(
        source,
        () => {
          throw new Error(`poison: ${'e'.repeat(2000)}`);
        },
        { concurrency: 1, maxDeliveries: 1, onError: (e) => void errors.push(e.message) },
      );
      let letters: { body: string; headers: Record<string, unknown> }[] = [];
      await until(async () => {
        letters.push(...(await admin.drainQueue(`${queue}.dead`)));
        return letters.length === 1;
      }, 'the dead letter');
      await consumer.close();
      letters = letters.slice(0, 1);
      expect(letters[0]!.body).toBe('{"k":"big"}');
      const { headers } = letters[0]!;
      expect(headers['x-big']).toBe(big);
      if (less > 2000) expect(String(headers['x-sluice-error'])).toMatch(/^poison: e+…$/);
      else expect(headers['x-death']).toBeDefined();
      expect(errors).toEqual([]);
    },
  );
});

describe('amqpSource across a forced reconnect', () => {
  it('held messages never exceed concurrency: the new channel waits for the dead channel’s handlers', async () => {
    const { queue, source } = await setup('reconn');
    await admin.publishMany(queue, 40, (i) => JSON.stringify({ k: `m${i}` }));
    const concurrency = 10;
    let running = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const done = new Set<string>();
    const consumer = consume<{ k: string }>(
      source,
      async ({ k }) => {
        running++;
        await gate;
        running--;
        done.add(k);
      },
      { concurrency, onError: () => {} },
    );
    // Held by this process at any instant: fetched by the loop + pushed and not yet fetched.
    let peak = 0;
    const sample = setInterval(() => {
      peak = Math.max(peak, consumer.stats().held + source.buffered);
    }, 1);
    try {
      await until(() => running === concurrency, 'ten handlers running');
      const before = source.reconnects;
      await closeConnectionNamed(`sluice:${queue}`);
      await until(() => source.reconnects > before, 'reconnected');
      // The broker requeued the dead channel's ten; a new channel given a full prefetch now
      // would push ten more while the ten handlers still run. Give it the time to (not) happen
      // (under load this can only miss the defect, never fail a correct consumer).
      await new Promise((r) => setTimeout(r, 500));
      expect(peak).toBeLessThanOrEqual(concurrency);
      expect((await brokerCounts(queue)).unacked).toBe(0);
      release();
      await until(() => done.size === 40, 'all forty handled');
    } finally {
      clearInterval(sample);
      release();
    }
    const report = await consumer.close();
    expect(peak).toBeLessThanOrEqual(concurrency);
    expect(report.stats.peakHeld).toBeLessThanOrEqual(concurrency);
    // The ten that ran on the dead channel could not be acked there: they were redelivered.
    expect(report.stats.leaseLost).toBe(concurrency);
    expect(await admin.depth(queue)).toMatchObject({ messageCount: 0 });
  }, 30_000);
});
