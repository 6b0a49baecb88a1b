/**
 * consume() over Redis Streams, what only Redis has, against the real server on loopback: a slow
 * handler kept by its heartbeat and its control, release(), a caller-owned client, deleteOnAck
 * and XAUTOCLAIM over deleted entries. The shared cases are in redis.consume.test.ts; the
 * restart is in redis.restart.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Consumer, consume } from '../../src/brokers/consumer.js';
import { enqueue, redisSource } from '../../src/brokers/redis/index.js';
import { reapEmptyConsumers } from '../../src/brokers/redis/source.js';
import { deadline, delegate, Ledger, payloads } from '../fixtures/brokers/consumer-harness.js';
import { type RedisAdmin, redisAdmin, uniqueStream } from '../fixtures/brokers/redis-helpers.js';
import { deferred } from '../helpers.js';

let admin: RedisAdmin;
const consumers: Consumer[] = [];

beforeAll(async () => {
  admin = await redisAdmin();
});
afterAll(async () => {
  for (const c of consumers) await c.abort();
  await admin.cleanup();
});

async function source(stream: string, opts: Partial<Parameters<typeof redisSource>[0]> = {}) {
  admin.track(stream, `${stream}:dead`);
  return redisSource({ stream, group: 'g', ...opts });
}

function track(c: Consumer): Consumer {
  consumers.push(c);
  return c;
}

describe('consume() over Redis Streams', () => {
  it('a slow but alive handler (longer than lease) is not handed to a second consumer', async () => {
    const stream = uniqueStream('r7');
    await admin.fill(stream, [{ k: 'slow' }]);
    const runs: string[] = [];
    const slowStarted = deferred<void>();
    const a = track(
      consume<{ k: string }>(
        await source(stream, { consumer: 'a', lease: 2000 }),
        async ({ k }) => {
          runs.push(`a:${k}`);
          slowStarted.resolve();
          // 2x claimIdle; heartbeats every 667 ms leave 1.3 s of slack on a loaded machine (a
          // lease of 600 ms left 400 ms, which a stalled timer can outlast).
          await new Promise((r) => setTimeout(r, 4000));
        },
        { concurrency: 1 },
      ),
    );
    await slowStarted.promise;
    // b scans for entries idle >= 2 s every 500 ms during a's 4 s handler.
    const b = track(
      consume<{ k: string }>(
        await source(stream, { consumer: 'b', lease: 2000 }),
        ({ k }) => {
          runs.push(`b:${k}`);
        },
        { concurrency: 1 },
      ),
    );
    const ra = await a.close();
    await b.close();
    expect(runs).toEqual(['a:slow']);
    expect(ra.stats).toMatchObject({ acked: 1, leaseLost: 0 });
    expect(await admin.pending(stream)).toBe(0);
  });

  it('control: without the heartbeat the same handler IS redelivered to the second consumer', async () => {
    const stream = uniqueStream('r7c');
    await admin.fill(stream, [{ k: 'slow' }]);
    const runs: string[] = [];
    const bRan = deferred<void>();
    const inner = await source(stream, { consumer: 'a', lease: 300 });
    const noBeat = delegate(inner, { heartbeatInterval: undefined, heartbeat: undefined });
    const a = track(
      consume<{ k: string }>(
        noBeat,
        async ({ k }) => {
          runs.push(`a:${k}`);
          await bRan.promise;
        },
        { concurrency: 1 },
      ),
    );
    const b = track(
      consume<{ k: string }>(
        await source(stream, { consumer: 'b', lease: 300 }),
        ({ k }, { message }) => {
          runs.push(`b:${k}:${message.deliveryCount}`);
          bRan.resolve();
        },
        { concurrency: 1 },
      ),
    );
    await deadline(bRan.promise, 5000, 'redelivery to b');
    await a.close();
    await b.close();
    expect(runs).toEqual(['a:slow', 'b:slow:2']);
  });

  it('release() hands fetched messages back at once, without charging a delivery', async () => {
    const stream = uniqueStream('rrel');
    await admin.fill(stream, payloads(3));
    const a = await source(stream, { consumer: 'a' });
    const b = await source(stream, { consumer: 'b' });
    const never = new AbortController().signal;
    try {
      const first = await a.fetch(3, never);
      expect(first.map((m) => m.deliveryCount)).toEqual([1, 1, 1]);
      for (const m of first) await a.release(m);
      // lease is 30 s by default: only a release makes them claimable by b right away.
      const again = await b.fetch(3, never);
      expect(again.map((m) => m.id).sort()).toEqual(first.map((m) => m.id).sort());
      expect(again.map((m) => m.deliveryCount)).toEqual([1, 1, 1]);
      for (const m of again) await b.ack(m);
      expect(await admin.pending(stream)).toBe(0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a stream and group named with letters outside ASCII (tâches, an emoji) start and deliver', async () => {
    // Their names go into the connections' CLIENT SETNAME, which takes only `!` to `~`: such a
    // source failed to start with Redis's uncoded "Client names cannot contain … special characters".
    const stream = `${uniqueStream('rname')}-tâches-😀`;
    await admin.fill(stream, payloads(2));
    const src = await source(stream, { group: 'grüppe' });
    const never = new AbortController().signal;
    try {
      const got = await src.fetch(2, never);
      expect(got).toHaveLength(2);
      for (const m of got) await src.ack(m);
      expect(await admin.pending(stream, 'grüppe')).toBe(0);
    } finally {
      await src.close();
    }
  });

  it('a caller-owned client is duplicated (its options reused) and left open by close()', async () => {
    const stream = uniqueStream('rown');
    await admin.fill(stream, payloads(5));
    const ledger = new Ledger();
    const consumer = consume<{ k: string }>(
      await source(stream, { client: admin.client }),
      ({ k }) => {
        ledger.add(k);
      },
      { concurrency: 2 },
    );
    await ledger.until(5);
    await consumer.close();
    expect(admin.client.isOpen).toBe(true);
    expect(await admin.pending(stream)).toBe(0);
  });

  it('an entry without the payload field is dead-lettered at once, saying so', async () => {
    const stream = uniqueStream('rnofield');
    await admin.fill(stream, [{ k: 'a' }]);
    await admin.fill(stream, [{ k: 'b' }], 'payload'); // another producer's field name
    const ledger = new Ledger();
    const consumer = track(
      consume<{ k: string }>(await source(stream), ({ k }) => void ledger.add(k), {
        concurrency: 2,
        onError: () => {},
      }),
    );
    await ledger.until(1);
    await admin.until(async () => (await admin.deadLetters(stream)).length === 1, 'dead letter');
    const report = await consumer.close();
    const [dead] = await admin.deadLetters(stream);
    expect(dead).toMatchObject({
      'sluice-code': 'ERR_MESSAGE_MALFORMED',
      'sluice-error': 'stream entry has no "body" field',
    });
    expect(Number(dead!['sluice-deliveries'])).toBe(1);
    expect(report.stats.malformed).toBe(1);
    expect([...ledger.runs.keys()]).toEqual(['a']);
  });

  it.each([false, true])(
    'a dead letter that cannot be written leaves the entry pending, never acked away (deleteOnAck %s)',
    async (deleteOnAck) => {
      const stream = uniqueStream('rdlfail');
      await admin.fill(stream, ['{broken']);
      // Another app's string under the dead-letter key: XADD fails with WRONGTYPE.
      await admin.client.sendCommand(['SET', `${stream}:dead`, 'not a stream']);
      const failed = deferred<{ error: Error; op: string }>();
      const consumer = track(
        consume(await source(stream, { deleteOnAck }), () => {}, {
          concurrency: 1,
          onError: (error, op) => failed.resolve({ error, op }),
        }),
      );
      const { error, op } = await deadline(failed.promise, 10_000, 'the dead-letter failure');
      await consumer.close();
      expect(op).toBe('deadLetter');
      expect(error.message).toMatch(/WRONGTYPE/);
      expect(await admin.pending(stream)).toBe(1);
      expect(Number(await admin.client.sendCommand(['XLEN', stream]))).toBe(1);
    },
  );

  it('deleteOnAck: acked and dead-lettered entries leave the stream', async () => {
    const stream = uniqueStream('rdelack');
    await admin.fill(stream, [...payloads(20), '{broken']);
    const ledger = new Ledger();
    const consumer = consume<{ k: string }>(
      await source(stream, { deleteOnAck: true }),
      ({ k }) => {
        ledger.add(k);
      },
      { concurrency: 4, onError: () => {} },
    );
    await ledger.until(20);
    await admin.until(async () => (await admin.deadLetters(stream)).length === 1, 'dead letter');
    await consumer.close();
    expect(Number(await admin.client.sendCommand(['XLEN', stream]))).toBe(0);
    expect(await admin.pending(stream)).toBe(0);
  });

  /** The dead letter's fields in order, without the `sluice-` ones. */
  async function deadFields(stream: string): Promise<string[][]> {
    const entries = (await admin.client.sendCommand(['XRANGE', `${stream}:dead`, '-', '+'])) as [
      string,
      string[],
    ][];
    return entries.map(([, f]) => {
      const own: string[] = [];
      for (let i = 0; i < f.length; i += 2) {
        if (!f[i]!.startsWith('sluice-')) own.push(f[i]!, f[i + 1]!);
      }
      return own;
    });
  }

  it('a dead letter keeps every field of the original entry, with deleteOnAck', async () => {
    const stream = uniqueStream('rdlfields');
    admin.track(stream, `${stream}:dead`);
    // Fields beside the payload, two of them named as sluice's error fields once were.
    const fields = ['traceparent', '00-abc-01', 'body', '{"k":"a"}', 'tenant', 't1'];
    fields.push('error', 'the producer’s own', 'code', 'mine');
    await admin.client.sendCommand(['XADD', stream, '*', ...fields]);
    const consumer = track(
      consume(
        await source(stream, { deleteOnAck: true }),
        () => {
          throw Object.assign(new Error('boom'), { code: 'E_BOOM' });
        },
        { concurrency: 1, maxDeliveries: 1, onError: () => {} },
      ),
    );
    await admin.until(async () => (await admin.deadLetters(stream)).length === 1, 'dead letter');
    await consumer.close();
    expect(await deadFields(stream)).toEqual([fields]);
    const [dead] = await admin.deadLetters(stream);
    expect(dead).toMatchObject({
      'sluice-error': 'boom',
      'sluice-code': 'E_BOOM',
      'sluice-deliveries': '1',
      'sluice-stream': stream,
      'sluice-group': 'g',
    });
    expect(Number(await admin.client.sendCommand(['XLEN', stream]))).toBe(0);
  });

  it('a malformed entry (no payload field) is dead-lettered with all its fields, with deleteOnAck', async () => {
    const stream = uniqueStream('rdlmalformed');
    admin.track(stream, `${stream}:dead`);
    const fields = ['payload', '{"k":"b"}', 'tenant', 't2'];
    await admin.client.sendCommand(['XADD', stream, '*', ...fields]);
    const consumer = track(
      consume(await source(stream, { deleteOnAck: true }), () => {}, {
        concurrency: 1,
        onError: () => {},
      }),
    );
    await admin.until(async () => (await admin.deadLetters(stream)).length === 1, 'dead letter');
    await consumer.close();
    expect(await deadFields(stream)).toEqual([fields]);
    const [dead] = await admin.deadLetters(stream);
    expect(dead!['sluice-code']).toBe('ERR_MESSAGE_MALFORMED');
    expect(dead).not.toHaveProperty('body');
    expect(Number(await admin.client.sendCommand(['XLEN', stream]))).toBe(0);
  });

  it('an entry deleted while pending is dead-lettered with the payload as delivered', async () => {
    const stream = uniqueStream('rdlgone');
    const [id] = await admin.fill(stream, [{ k: 'c' }]);
    const a = await source(stream, { consumer: 'a' });
    try {
      const [m] = await a.fetch(1, new AbortController().signal);
      await admin.client.sendCommand(['XDEL', stream, id!]);
      await a.deadLetter(m!, new Error('late'));
      expect(await deadFields(stream)).toEqual([['body', '{"k":"c"}']]);
      expect((await admin.deadLetters(stream))[0]!['sluice-error']).toBe('late');
    } finally {
      await a.close();
    }
  });

  it('XAUTOCLAIM passes over a long pending list (many calls) and copes with deleted entries', async () => {
    const stream = uniqueStream('rdel');
    const ids = await admin.fill(stream, payloads(300));
    // A consumer "dies" holding all 300; then every other one is XDELed. With 2 free slots one
    // XAUTOCLAIM scans at most 20 entries, so a pass takes many calls over several fetches.
    await admin.client.sendCommand(['XGROUP', 'CREATE', stream, 'g', '0']);
    await admin.client.sendCommand([
      'XREADGROUP',
      'GROUP',
      'g',
      'dead',
      'COUNT',
      '300',
      'STREAMS',
      stream,
      '>',
    ]);
    await admin.client.sendCommand(['XDEL', stream, ...ids.filter((_, i) => i % 2 === 0)]);
    const ledger = new Ledger();
    const counts = new Set<number>();
    const consumer = track(
      consume<{ k: string }>(
        await source(stream, { lease: 50 }),
        ({ k }, { message }) => {
          counts.add(message.deliveryCount);
          ledger.add(k);
        },
        { concurrency: 2 },
      ),
    );
    await ledger.until(150);
    await consumer.close();
    const survivors = payloads(300)
      .filter((_, i) => i % 2 === 1)
      .map((p) => p.k);
    expect([...ledger.runs.keys()].sort()).toEqual(survivors.sort());
    expect(ledger.duplicates).toBe(0);
    expect([...counts]).toEqual([2]);
    expect(await admin.pending(stream)).toBe(0);
  });

  it('a late ack after a lost lease is refused: the new owner’s delivery stays pending', async () => {
    const stream = uniqueStream('rlate');
    await admin.fill(stream, [{ k: 'x' }]);
    // a's heartbeat never runs, as when its event loop is blocked past lease.
    const inner = await source(stream, { consumer: 'a', lease: 200 });
    const stalled = delegate(inner, { heartbeatInterval: undefined, heartbeat: undefined });
    const aRunning = deferred<void>();
    const aFinish = deferred<void>();
    const errors: { code: unknown; op: string }[] = [];
    const a = track(
      consume(
        stalled,
        async () => {
          aRunning.resolve();
          await aFinish.promise;
        },
        {
          concurrency: 1,
          onError: (e, op) => errors.push({ code: (e as { code?: unknown }).code, op }),
        },
      ),
    );
    await aRunning.promise;
    const bRunning = deferred<void>();
    const bFinish = deferred<void>();
    const b = track(
      consume(
        await source(stream, { consumer: 'b', lease: 200 }),
        async () => {
          bRunning.resolve();
          await bFinish.promise;
        },
        { concurrency: 1 },
      ),
    );
    await deadline(bRunning.promise, 5000, 'b claimed the entry');
    aFinish.resolve();
    await admin.until(async () => a.stats().leaseLost === 1, "a's ack refused");
    expect(errors).toEqual([{ code: 'ERR_LEASE_LOST', op: 'ack' }]);
    expect(a.stats().acked).toBe(0);
    // b still runs it, and Redis still counts it as b's.
    expect(await admin.pending(stream)).toBe(1);
    bFinish.resolve();
    await admin.until(async () => b.stats().acked === 1, "b's ack");
    await a.close();
    await b.close();
    expect(await admin.pending(stream)).toBe(0);
  });

  it.each(['retry', 'deadLetter', 'release'] as const)(
    'a late %s after a lost lease is refused and leaves the new owner’s entry alone',
    async (op) => {
      const stream = uniqueStream('rlate2');
      await admin.fill(stream, [{ k: 'x' }]);
      const a = await source(stream, { consumer: 'a', lease: 50 });
      const b = await source(stream, { consumer: 'b', lease: 50 });
      const never = new AbortController().signal;
      try {
        const [m] = await a.fetch(1, never);
        await admin.until(async () => (await b.fetch(1, never)).length === 1, 'b claimed it');
        const late =
          op === 'retry'
            ? a.retry(m!, 0)
            : op === 'deadLetter'
              ? a.deadLetter(m!, new Error('x'))
              : a.release(m!);
        await expect(late).rejects.toMatchObject({ code: 'ERR_LEASE_LOST' });
        expect(await admin.deadLetters(stream)).toEqual([]);
        const owner = (await admin.client.sendCommand([
          'XPENDING',
          stream,
          'g',
          '-',
          '+',
          '1',
        ])) as unknown[][];
        expect(owner[0]![1]).toBe('b');
      } finally {
        await a.close();
        await b.close();
      }
    },
  );

  it('a consumer that closes with nothing pending deletes itself from the group', async () => {
    const stream = uniqueStream('rdelc');
    await admin.fill(stream, payloads(3));
    const ledger = new Ledger();
    const consumer = consume<{ k: string }>(
      await source(stream, { consumer: 'leaving' }),
      ({ k }) => void ledger.add(k),
      { concurrency: 2 },
    );
    await ledger.until(3);
    expect(await consumerNames(stream)).toEqual(['leaving']);
    await consumer.close();
    expect(await consumerNames(stream)).toEqual([]);
  });

  it('a consumer that closes with entries still pending stays in the group (they are not dropped)', async () => {
    const stream = uniqueStream('rkeepc');
    await admin.fill(stream, payloads(1));
    const s = await source(stream, { consumer: 'holding' });
    const [m] = await s.fetch(1, new AbortController().signal);
    await s.retry(m!, 60_000);
    await s.close();
    expect(await consumerNames(stream)).toEqual(['holding']);
    expect(await admin.pending(stream)).toBe(1);
  });

  it('reaping deletes the consumers that own nothing and were idle past the threshold, and no other', async () => {
    const stream = uniqueStream('rreap');
    admin.track(stream);
    await admin.fill(stream, payloads(1));
    await admin.client.sendCommand(['XGROUP', 'CREATE', stream, 'g', '0']);
    // 'crashed' holds the entry; 'gone' holds nothing; both then sit idle past the threshold.
    for (const name of ['crashed', 'gone']) {
      await admin.client.sendCommand(['XGROUP', 'CREATECONSUMER', stream, 'g', name]);
    }
    await admin.client.sendCommand([
      'XREADGROUP',
      'GROUP',
      'g',
      'crashed',
      'COUNT',
      '1',
      'STREAMS',
      stream,
      '>',
    ]);
    await admin.until(async () => (await idleOf(stream, 'gone')) >= 1000, 'idle for 1 s', 5000);
    await admin.client.sendCommand(['XGROUP', 'CREATECONSUMER', stream, 'g', 'recent']);
    await reapEmptyConsumers(admin.client, stream, 'g', 1000);
    expect((await consumerNames(stream)).sort()).toEqual(['crashed', 'recent']);
    expect(await admin.pending(stream)).toBe(1);
  });
});

/** Names of the group's consumers. */
async function consumerNames(stream: string): Promise<string[]> {
  const rows = (await admin.client.sendCommand(['XINFO', 'CONSUMERS', stream, 'g'])) as unknown[][];
  return rows.map((row) => String(row[row.indexOf('name') + 1]));
}

async function idleOf(stream: string, name: string): Promise<number> {
  const rows = (await admin.client.sendCommand(['XINFO', 'CONSUMERS', stream, 'g'])) as unknown[][];
  const row = rows.find((r) => r[r.indexOf('name') + 1] === name)!;
  return Number(row[row.indexOf('idle') + 1]);
}

describe('enqueue() on Redis: headers', () => {
  it('a header named like the payload field (a custom field too) is refused, naming it; nothing is added', async () => {
    const stream = uniqueStream('hdrfield');
    admin.track(stream);
    const client = admin.client as Parameters<typeof enqueue>[0]['client'];
    await expect(
      enqueue({ client, stream, field: 'payload' }, { a: 1 }, { headers: { payload: 'x' } }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', message: /"payload"/ });
    // `body` is only the default field's name: with another field it is an ordinary header.
    await enqueue({ client, stream, field: 'payload' }, { a: 1 }, { headers: { body: 'x' } });
    expect(Number(await admin.client.sendCommand(['XLEN', stream]))).toBe(1);
  });
});

describe('the first-failure time kept for a dead letter', () => {
  it('is removed once a message that failed is acked on a later delivery (no key left for a week)', async () => {
    const stream = uniqueStream('firstfail');
    admin.track(stream, `${stream}:dead`);
    await admin.fill(stream, payloads(20));
    let runs = 0;
    const consumer = consume<{ k: string }>(
      await redisSource({ client: admin.client as never, stream, group: 'g', fetchWait: 100 }),
      (_, { message }) => {
        runs++;
        if (message.deliveryCount === 1) throw new Error('fails once');
      },
      { concurrency: 4, backoff: () => 0, onError: () => {} },
    );
    await admin.until(async () => consumer.stats().acked === 20, 'all 20 acked on their retry');
    await consumer.close();
    expect(runs).toBe(40);
    const left = async () =>
      ((await admin.client.sendCommand(['KEYS', `${stream}:dead:first-failed:*`])) as string[])
        .length;
    await admin.until(async () => (await left()) === 0, 'no first-failure key left');
    expect(await left()).toBe(0);
  });
});
