/**
 * The Redis source's acks against the real server on loopback: the acks of one turn go to Redis
 * as one script call (not one per message); inside the lease since their fetch they skip the
 * owner check, past it an id another consumer owns is refused inside such a batch while the
 * others are acked; a failed ack command is sent once more on the command connection.
 */
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { enqueue } from '../../src/brokers/redis/enqueue.js';
import {
  type AnyRedisClient,
  createGroup,
  loadScripts,
  RedisStreamSource,
} from '../../src/brokers/redis/source.js';
import { type RedisAdmin, redisAdmin, uniqueStream } from '../fixtures/brokers/redis-helpers.js';

let admin: RedisAdmin;
const clients: AnyRedisClient[] = [];

beforeAll(async () => {
  admin = await redisAdmin();
});
afterAll(async () => {
  for (const c of clients) if (c.isOpen) await c.close();
  await admin.cleanup();
});

/** A connected client whose script calls (`EVALSHA`/`EVAL`) are counted, and can be made to fail. */
async function countingClient(): Promise<{
  client: AnyRedisClient;
  scripts: () => number;
  failNext: (n: number) => void;
}> {
  const client = createClient({ url: 'redis://127.0.0.1:6379', RESP: 2 });
  client.on('error', () => {});
  await client.connect();
  clients.push(client);
  let scripts = 0;
  let failures = 0;
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((args: string[], options?: unknown) => {
    if (args[0] === 'EVALSHA' || args[0] === 'EVAL') {
      scripts++;
      if (failures > 0) {
        failures--;
        return Promise.reject(new Error('connection dropped (simulated)'));
      }
    }
    return send(args, options as never);
  }) as typeof client.sendCommand;
  const failNext = (n: number) => {
    failures = n;
  };
  return { client, scripts: () => scripts, failNext };
}

/**
 * A source on `stream` (group `g`, consumer `a`) over two counting connections. `ackWindow` 0:
 * every ack is owner-checked, as one past the lease since its fetch.
 */
async function countedSource(
  stream: string,
  { ackWindow, lease }: { ackWindow?: number; lease?: number } = {},
) {
  admin.track(stream, `${stream}:dead`);
  const cmd = await countingClient();
  const read = await countingClient();
  await createGroup(cmd.client, stream, 'g');
  await loadScripts(cmd.client);
  const source = new RedisStreamSource(
    cmd.client,
    read.client,
    false,
    { stream, group: 'g', consumer: 'a', ...(lease === undefined ? {} : { lease }) },
    ackWindow,
  );
  return { source, scripts: () => cmd.scripts() + read.scripts(), cmd, read };
}

const never = new AbortController().signal;

/** `[id, owner]` of every entry pending in group `g` (at most 10). */
async function pendingOwners(stream: string): Promise<unknown[][]> {
  const pending = (await admin.client.sendCommand([
    'XPENDING',
    stream,
    'g',
    '-',
    '+',
    '10',
  ])) as unknown[][];
  return pending.map((row) => [row[0], row[1]]);
}

/** Waits until every pending entry of `stream` (group g) has been idle for `ms` (a lease). */
function idlePast(stream: string, ms: number): Promise<void> {
  return admin.until(async () => {
    const rows = (await admin.client.sendCommand(['XPENDING', stream, 'g', '-', '+', '10'])) as [
      string,
      string,
      number,
    ][];
    return rows.every((row) => Number(row[2]) >= ms);
  }, `idle past ${ms} ms`);
}

describe('Redis source acks', () => {
  it('acks issued in one turn go in one script call; past the ack window an id another consumer owns is refused, the others acked', async () => {
    const stream = uniqueStream('racks');
    await admin.fill(
      stream,
      Array.from({ length: 6 }, (_, i) => ({ i })),
    );
    const { source, scripts } = await countedSource(stream, { ackWindow: 0 });
    try {
      const messages = await source.fetch(6, never);
      expect(messages).toHaveLength(6);
      // b takes message 1 over (as after a lost lease); message 2 was acked already (our own
      // ack sent again after a dropped connection).
      await admin.client.sendCommand(['XCLAIM', stream, 'g', 'b', '0', messages[1]!.id, 'JUSTID']);
      await admin.client.sendCommand(['XACK', stream, 'g', messages[2]!.id]);
      const before = scripts();
      const outcomes = await Promise.allSettled(messages.map((m) => source.ack(m)));
      expect(scripts() - before).toBe(1);
      expect(outcomes.map((o) => o.status)).toEqual([
        'fulfilled',
        'rejected',
        'fulfilled',
        'fulfilled',
        'fulfilled',
        'fulfilled',
      ]);
      expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({
        code: 'ERR_LEASE_LOST',
      });
      // Only b's entry is still pending, and still b's.
      expect(await pendingOwners(stream)).toEqual([[messages[1]!.id, 'b']]);
    } finally {
      await source.close();
    }
  });

  it('acks entries far apart in the stream (claimed and new ones in one batch)', async () => {
    const stream = uniqueStream('racks2');
    await admin.fill(
      stream,
      Array.from({ length: 300 }, (_, i) => ({ i })),
    );
    // Owner-checked (the range lookup is what this is about).
    const { source, scripts } = await countedSource(stream, { ackWindow: 0 });
    try {
      // 300 entries pending for `a`; ack the first and the last few together: the range between
      // them holds more of a's pending entries than the script's first look covers.
      const messages = [...(await source.fetch(300, never))];
      expect(messages).toHaveLength(300);
      const picked = [...messages.slice(0, 3), ...messages.slice(-3)];
      const before = scripts();
      await Promise.all(picked.map((m) => source.ack(m)));
      expect(scripts() - before).toBe(1);
      expect(await admin.pending(stream)).toBe(294);
      await Promise.all(messages.slice(3, -3).map((m) => source.ack(m)));
      expect(await admin.pending(stream)).toBe(0);
    } finally {
      await source.close();
    }
  });

  it('inside the lease since its fetch an ack skips the owner check (an entry moved by hand with XCLAIM 0 is acked anyway)', async () => {
    const stream = uniqueStream('rfast');
    await admin.fill(stream, [{ i: 1 }, { i: 2 }]);
    // The default lease (30 s): the acks below run well inside it.
    const { source, scripts } = await countedSource(stream);
    try {
      const messages = await source.fetch(2, never);
      // Against the protocol (sluice's consumers claim only entries idle for `lease`): b takes
      // message 0 at once. The owner check would refuse a's ack; inside the window there is none.
      await admin.client.sendCommand(['XCLAIM', stream, 'g', 'b', '0', messages[0]!.id, 'JUSTID']);
      const before = scripts();
      const outcomes = await Promise.allSettled(messages.map((m) => source.ack(m)));
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled']);
      expect(scripts() - before).toBe(1);
      expect(await admin.pending(stream)).toBe(0);
    } finally {
      await source.close();
    }
  });

  it('past the lease since its fetch an ack is owner-checked: refused once another consumer claimed the entry (XAUTOCLAIM)', async () => {
    const stream = uniqueStream('rlatefast');
    await admin.fill(stream, [{ i: 1 }]);
    // The default window (= lease), a lease short enough for b to claim the entry by the protocol.
    const { source } = await countedSource(stream, { lease: 50 });
    const b = new RedisStreamSource(admin.client, (await countingClient()).client, false, {
      stream,
      group: 'g',
      consumer: 'b',
      lease: 50,
    });
    try {
      const [m] = await source.fetch(1, never);
      // b's XAUTOCLAIM takes it only once it was idle for 50 ms: by then a's window is over.
      await admin.until(async () => (await b.fetch(1, never)).length === 1, 'b claimed it');
      await expect(source.ack(m!)).rejects.toMatchObject({ code: 'ERR_LEASE_LOST' });
      const owner = (await admin.client.sendCommand([
        'XPENDING',
        stream,
        'g',
        '-',
        '+',
        '1',
      ])) as unknown[][];
      expect(owner.map((row) => [row[0], row[1]])).toEqual([[m!.id, 'b']]);
    } finally {
      await source.close();
      await b.close();
    }
  });

  it('a message the source did not hand out (no fetch time) is always owner-checked', async () => {
    const stream = uniqueStream('rforeign');
    await admin.fill(stream, [{ i: 1 }]);
    const { source } = await countedSource(stream);
    try {
      const [m] = await source.fetch(1, never);
      await admin.client.sendCommand(['XCLAIM', stream, 'g', 'b', '0', m!.id, 'JUSTID']);
      // The same id and fields, in a plain object: the source cannot tell when it was delivered.
      const copy = { ...m! };
      await expect(source.ack(copy)).rejects.toMatchObject({ code: 'ERR_LEASE_LOST' });
      expect(await admin.pending(stream)).toBe(1);
    } finally {
      await source.close();
    }
  });

  it('a heartbeat does not extend the ack window: past the lease since the fetch, a heartbeaten entry is owner-checked', async () => {
    const stream = uniqueStream('rbeat');
    await admin.fill(stream, [{ i: 1 }]);
    const { source } = await countedSource(stream, { lease: 300 });
    try {
      const [beaten] = await source.fetch(1, never);
      await idlePast(stream, 300);
      expect(await source.heartbeat(beaten!)).toBe(true);
      // b takes it by hand (against the protocol): only the owner check notices.
      await admin.client.sendCommand(['XCLAIM', stream, 'g', 'b', '0', beaten!.id, 'JUSTID']);
      await expect(source.ack(beaten!)).rejects.toMatchObject({ code: 'ERR_LEASE_LOST' });
      expect(await admin.pending(stream)).toBe(1);
    } finally {
      await source.close();
    }
  });

  it('a second delivery by its own XAUTOCLAIM is owner-checked: after the first is retried and another consumer claims the entry, its ack is refused', async () => {
    const stream = uniqueStream('raba');
    await admin.fill(stream, [{ i: 1 }]);
    const { source } = await countedSource(stream, { lease: 300 });
    try {
      const [first] = await source.fetch(1, never);
      // This consumer's loop "stalls" past the lease: its own next fetch claims the entry back.
      await idlePast(stream, 300);
      let second: Awaited<ReturnType<typeof source.fetch>>[number] | undefined;
      while (!second) [second] = await source.fetch(1, never);
      expect(second.id).toBe(first!.id);
      // The first delivery fails and is retried at once (idle = lease): c claims it as the
      // protocol allows (min-idle-time = lease).
      await source.retry(first!, 0);
      const claimed = (await admin.client.sendCommand([
        'XAUTOCLAIM',
        stream,
        'g',
        'c',
        '300',
        '0-0',
        'JUSTID',
      ])) as [string, string[]];
      expect(claimed[1]).toEqual([first!.id]);
      // The second delivery's ack, fresh since its claim, must not end c's delivery.
      await expect(source.ack(second)).rejects.toMatchObject({ code: 'ERR_LEASE_LOST' });
      expect(await admin.pending(stream)).toBe(1);
    } finally {
      await source.close();
    }
  });

  it('a batch holding one ack past the window is owner-checked as a whole', async () => {
    const stream = uniqueStream('rmixed');
    await admin.fill(stream, [{ i: 1 }, { i: 2 }]);
    const { source } = await countedSource(stream);
    try {
      const messages = await source.fetch(2, never);
      await admin.client.sendCommand(['XCLAIM', stream, 'g', 'b', '0', messages[0]!.id, 'JUSTID']);
      // Message 1 from this fetch (fresh), message 0 as a copy (no fetch time), in one turn.
      const outcomes = await Promise.allSettled([
        source.ack({ ...messages[0]! }),
        source.ack(messages[1]!),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'fulfilled']);
      expect(await admin.pending(stream)).toBe(1);
    } finally {
      await source.close();
    }
  });

  it('a consumer acks 640 messages in far fewer script calls than messages', async () => {
    const stream = uniqueStream('racks3');
    await admin.fill(
      stream,
      Array.from({ length: 640 }, (_, i) => ({ i })),
    );
    const { source, scripts } = await countedSource(stream);
    let handled = 0;
    const consumer = consume(source, () => void handled++, { concurrency: 64 });
    await admin.until(async () => consumer.stats().acked === 640, 'all acked');
    await consumer.close();
    expect(handled).toBe(640);
    expect(await admin.pending(stream)).toBe(0);
    // One script per turn's acks: at most one per fetch of 64 (plus a few partial turns), not
    // one per message.
    expect(scripts()).toBeLessThanOrEqual(640 / 8);
  });

  it('a failed ack command is sent once more on the command connection, and then confirms', async () => {
    const stream = uniqueStream('racks4');
    await admin.fill(stream, [{ i: 1 }, { i: 2 }]);
    const { source, read, cmd } = await countedSource(stream);
    try {
      const messages = await source.fetch(2, never);
      // No fetch runs: the acks go down the reading connection first, which fails them.
      read.failNext(1);
      const before = cmd.scripts();
      await Promise.all(messages.map((m) => source.ack(m)));
      expect(cmd.scripts() - before).toBe(1);
      expect(await admin.pending(stream)).toBe(0);
    } finally {
      await source.close();
    }
  });

  it('when the ack fails on both connections, every ack of that batch rejects and the entries stay pending', async () => {
    const stream = uniqueStream('racks5');
    await admin.fill(stream, [{ i: 1 }, { i: 2 }]);
    const { source, read, cmd } = await countedSource(stream);
    try {
      const messages = await source.fetch(2, never);
      read.failNext(1);
      cmd.failNext(1);
      const outcomes = await Promise.allSettled(messages.map((m) => source.ack(m)));
      expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
      // Not acked: redelivered after the lease (at-least-once), never lost.
      expect(await admin.pending(stream)).toBe(2);
    } finally {
      await source.close();
    }
  });

  it("ackMany acks a turn's successes in one script call and resolves undefined when all were acked", async () => {
    const stream = uniqueStream('rackm1');
    await admin.fill(
      stream,
      Array.from({ length: 5 }, (_, i) => ({ i })),
    );
    const { source, scripts } = await countedSource(stream);
    try {
      const messages = await source.fetch(5, never);
      const before = scripts();
      await expect(source.ackMany(messages)).resolves.toBeUndefined();
      expect(scripts() - before).toBe(1);
      expect(await admin.pending(stream)).toBe(0);
    } finally {
      await source.close();
    }
  });

  it('ackMany past the ack window: an id another consumer owns gets a LeaseLostError at its index, the others are acked', async () => {
    const stream = uniqueStream('rackm2');
    await admin.fill(
      stream,
      Array.from({ length: 4 }, (_, i) => ({ i })),
    );
    const { source } = await countedSource(stream, { ackWindow: 0 });
    try {
      const messages = await source.fetch(4, never);
      await admin.client.sendCommand(['XCLAIM', stream, 'g', 'b', '0', messages[2]!.id, 'JUSTID']);
      const results = await source.ackMany(messages);
      expect(results).toHaveLength(4);
      expect(results![0]).toBeUndefined();
      expect(results![1]).toBeUndefined();
      expect(results![2]).toMatchObject({ code: 'ERR_LEASE_LOST' });
      expect(results![3]).toBeUndefined();
      expect(await pendingOwners(stream)).toEqual([[messages[2]!.id, 'b']]);
    } finally {
      await source.close();
    }
  });

  it('ackMany of more messages than one script call takes goes out in several calls, every message acked', async () => {
    const stream = uniqueStream('rackm3');
    await admin.fill(
      stream,
      Array.from({ length: 1500 }, (_, i) => ({ i })),
    );
    const { source, scripts } = await countedSource(stream);
    try {
      const messages = await source.fetch(1500, never);
      expect(messages).toHaveLength(1500);
      const before = scripts();
      await expect(source.ackMany(messages)).resolves.toBeUndefined();
      expect(scripts() - before).toBe(2);
      expect(await admin.pending(stream)).toBe(0);
    } finally {
      await source.close();
    }
  });

  it('ackMany rejects when its script fails on both connections, and the entries stay pending', async () => {
    const stream = uniqueStream('rackm4');
    await admin.fill(stream, [{ i: 1 }, { i: 2 }]);
    const { source, read, cmd } = await countedSource(stream);
    try {
      const messages = await source.fetch(2, never);
      read.failNext(1);
      cmd.failNext(1);
      await expect(source.ackMany(messages)).rejects.toThrow();
      expect(await admin.pending(stream)).toBe(2);
    } finally {
      await source.close();
    }
  });

  it('ackMany frees the deduplication key of a keyed job once it is acked', async () => {
    const stream = uniqueStream('rackm5');
    admin.track(`${stream}:key:k1`);
    await enqueue({ client: admin.client, stream }, { i: 1 }, { key: 'k1' });
    await admin.fill(stream, [{ i: 2 }]);
    const { source } = await countedSource(stream);
    try {
      const messages = await source.fetch(2, never);
      expect(messages.map((m) => m.key)).toEqual(['k1', undefined]);
      const again = await enqueue({ client: admin.client, stream }, { i: 3 }, { key: 'k1' });
      expect(again.deduplicated).toBe(true);
      await expect(source.ackMany(messages)).resolves.toBeUndefined();
      const after = await enqueue({ client: admin.client, stream }, { i: 4 }, { key: 'k1' });
      expect(after.deduplicated).toBe(false);
    } finally {
      await source.close();
    }
  });
});
