/**
 * The Redis source's connections are its own and replaceable: one that answers a command with a
 * reply that cannot be its own (out of step, as a node-redis connection can come back from a
 * reconnect with commands queued), or whose commands get no reply at all past
 * `fetchWait + connectTimeout + 2 s`, is destroyed and replaced, and the consumer carries on with
 * nothing lost (entries delivered on the lost reply are claimed again after the lease).
 */
import { createClient, RESP_TYPES } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { redisSource } from '../../src/brokers/redis/index.js';
import { RedisLink } from '../../src/brokers/redis/link.js';
import {
  type AnyRedisClient,
  createGroup,
  loadScripts,
  RedisStreamSource,
} from '../../src/brokers/redis/source.js';
import { NotConnectedError } from '../../src/errors.js';
import { Ledger, payloads } from '../fixtures/brokers/consumer-harness.js';
import { type RedisAdmin, redisAdmin, uniqueStream } from '../fixtures/brokers/redis-helpers.js';
import { captureSockets } from '../fixtures/brokers/redis-sockets.js';
import { deferred } from '../helpers.js';

let admin: RedisAdmin;
const clients: AnyRedisClient[] = [];

beforeAll(async () => {
  admin = await redisAdmin();
});
afterAll(async () => {
  for (const c of clients) if (c.isOpen) c.destroy();
  await admin.cleanup();
});

type Fault = (args: string[], send: () => Promise<unknown>) => Promise<unknown> | undefined;

/**
 * A connected client whose next command named `command` goes through `fault` once armed (the
 * fault decides what the caller gets back); its duplicates are plain clients.
 */
async function faultyClient(RESP: 2 | 3 = 2) {
  const client = createClient({ url: 'redis://127.0.0.1:6379', RESP }) as AnyRedisClient;
  client.on('error', () => {});
  await client.connect();
  clients.push(client);
  let armed: { command: string; fault: Fault; hit: () => void } | undefined;
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((args: string[], options?: unknown) => {
    const real = () => send(args, options as never);
    if (armed !== undefined && args[0] === armed.command) {
      const { fault, hit } = armed;
      armed = undefined;
      hit();
      return fault(args, real) ?? real();
    }
    return real();
  }) as typeof client.sendCommand;
  return {
    client,
    /** Resolves once the fault was applied. */
    arm(command: string, fault: Fault): Promise<void> {
      const hit = deferred<void>();
      armed = { command, fault, hit: hit.resolve };
      return hit.promise;
    },
  };
}

async function sourceOver(
  stream: string,
  cmd: AnyRedisClient,
  read: AnyRedisClient,
  o: { lease?: number; fetchWait?: number; connectTimeout?: number } = {},
) {
  await createGroup(cmd, stream, 'g');
  await loadScripts(cmd);
  return new RedisStreamSource(cmd, read, true, { stream, group: 'g', consumer: 'a', ...o });
}

describe('Redis source connections', () => {
  it('a read answered with a reply out of step: the reading connection is replaced, the consumer carries on, nothing lost', async () => {
    const stream = uniqueStream('rstep');
    await admin.fill(stream, payloads(40));
    const cmd = await faultyClient();
    const read = await faultyClient();
    // The XREADGROUP reaches Redis (its entries become pending to this consumer) but its caller
    // gets a TIME reply instead, as from a connection one reply behind.
    const faulted = read.arm('XREADGROUP', (_args, send) =>
      send().then(() => ['1700000000', '123456']),
    );
    const source = await sourceOver(stream, cmd.client, read.client, { lease: 300 });
    const ledger = new Ledger();
    const errors: unknown[] = [];
    const consumer = consume<{ k: string }>(source, ({ k }) => void ledger.add(k), {
      concurrency: 8,
      onError: (e) => errors.push(e),
    });
    try {
      await faulted;
      await ledger.until(40);
      await admin.until(async () => (await admin.pending(stream)) === 0, 'all acked');
    } finally {
      await consumer.close();
    }
    expect(read.client.isOpen).toBe(false); // destroyed: replaced by a duplicate
    expect(cmd.client.isOpen).toBe(false); // closed with the source (it owned it)
    expect(errors).toContainEqual(
      expect.objectContaining({
        code: 'ERR_NOT_CONNECTED',
        message: expect.stringMatching(/XREADGROUP/),
      }),
    );
    expect(ledger.runs.size).toBe(40);
  });

  it('a PROMOTE answered out of step on the command connection: it is replaced, the next fetch works', async () => {
    const stream = uniqueStream('rstepc');
    await admin.fill(stream, payloads(3));
    const cmd = await faultyClient();
    const read = await faultyClient();
    const source = await sourceOver(stream, cmd.client, read.client);
    const never = new AbortController().signal;
    try {
      // An 'OK' where the script's integer was due: the BLOCK would have become NaN.
      const faulted = cmd.arm('EVALSHA', () => Promise.resolve('OK'));
      await expect(source.fetch(3, never)).rejects.toMatchObject({
        code: 'ERR_NOT_CONNECTED',
        message: expect.stringMatching(/PROMOTE/),
      });
      await faulted;
      expect(cmd.client.isOpen).toBe(false);
      const messages = await source.fetch(3, never);
      expect(messages).toHaveLength(3);
      await Promise.all(messages.map((m) => source.ack(m)));
    } finally {
      await source.close();
    }
    expect(await admin.pending(stream)).toBe(0);
  });

  it('a read that never gets a reply: past fetchWait + connectTimeout + 2 s the connection is replaced, nothing lost', async () => {
    const stream = uniqueStream('rstuck');
    await admin.fill(stream, payloads(20));
    const cmd = await faultyClient();
    const read = await faultyClient();
    // Sent (its entries become pending), but the reply never reaches the caller: a connection
    // whose replies are one behind and then silent.
    const faulted = read.arm('XREADGROUP', (_args, send) => {
      void send().catch(() => {});
      return new Promise<never>(() => {});
    });
    const source = await sourceOver(stream, cmd.client, read.client, {
      lease: 300,
      fetchWait: 100,
      connectTimeout: 300,
    });
    const ledger = new Ledger();
    const consumer = consume<{ k: string }>(source, ({ k }) => void ledger.add(k), {
      concurrency: 4,
      onError: () => {},
    });
    try {
      await faulted;
      const t0 = performance.now();
      await ledger.until(20);
      // Not before the deadline: a silent connection is only replaced once it is overdue.
      expect(performance.now() - t0).toBeGreaterThan(2000);
      await admin.until(async () => (await admin.pending(stream)) === 0, 'all acked');
    } finally {
      await consumer.close();
    }
    expect(read.client.isOpen).toBe(false);
    expect(ledger.runs.size).toBe(20);
  });

  it('after a reconnect an ECHO checks the connection: a wrong answer gets it replaced', async () => {
    const stream = uniqueStream('recho');
    await admin.fill(stream, payloads(10));
    const cmd = await faultyClient();
    const read = await faultyClient();
    const source = await sourceOver(stream, cmd.client, read.client, { fetchWait: 50 });
    const ledger = new Ledger();
    const consumer = consume<{ k: string }>(source, ({ k }) => void ledger.add(k), {
      concurrency: 4,
      onError: () => {},
    });
    try {
      await ledger.until(10);
      // The ECHO after the reconnect gets a reply that is not its token, as from a connection
      // one reply behind.
      const probed = read.arm('ECHO', () => Promise.resolve('a reply meant for another command'));
      const id = String(await read.client.sendCommand(['CLIENT', 'ID']));
      await admin.client.sendCommand(['CLIENT', 'KILL', 'ID', id]);
      await probed;
      await admin.until(async () => !read.client.isOpen, 'the reading connection replaced');
      await admin.client.xAdd(stream, '*', { body: JSON.stringify({ k: 'after' }) });
      await ledger.until(11);
    } finally {
      await consumer.close();
    }
  });

  it('a socket that fails with a write scheduled: the commands sent before are rejected with it, those sent after wait for the new connection, none is written to the dead socket (node-redis does that otherwise)', async () => {
    const sockets = await captureSockets();
    try {
      // Control: a bare client. The write scheduled by the first ECHO runs after the socket's
      // error was handled and loses the command to the dead socket while it waits for a reply;
      // the next connection's first reply is handed to it.
      const bare = createClient({ url: 'redis://127.0.0.1:6379', disableClientInfo: true });
      bare.on('error', () => {});
      await bare.connect();
      clients.push(bare as AnyRedisClient);
      const reconnected = new Promise((resolve) => bare.once('ready', resolve));
      const lost = bare.sendCommand(['ECHO', 'first']);
      sockets.last().destroy(new Error('connection reset (simulated)'));
      await reconnected;
      const next = bare.sendCommand(['ECHO', 'second']);
      expect(await lost).toBe('second'); // out of step: the next command's reply
      bare.destroy();
      await next.catch(() => {});

      // Through a link: the command sent before the failure is withdrawn and rejected with the
      // connection; one sent after it, before the scheduled write has run, is held by the write
      // gate until the new socket. Every reply stays with its own command.
      const client = createClient({
        url: 'redis://127.0.0.1:6379',
        disableClientInfo: true,
      }) as AnyRedisClient;
      client.on('error', () => {});
      await client.connect();
      const link = new RedisLink(client, true, () => client.duplicate(), 60_000);
      const first = link.sendCommand(['ECHO', 'first']).then(
        () => 'replied',
        (error: unknown) => error,
      );
      sockets.last().destroy(new Error('connection reset (simulated)'));
      await new Promise((resolve) => process.nextTick(resolve)); // the socket's error, handled
      expect(link.reconnecting).toBe(true);
      const second = link.sendCommand(['ECHO', 'second']);
      expect(await first).toBeInstanceOf(NotConnectedError);
      expect(await second).toBe('second');
      expect(await link.sendCommand(['ECHO', 'third'])).toBe('third');
      expect(link.replaced).toBe(0);
      await link.close();
    } finally {
      sockets.restore();
    }
  });

  it("a caller's client that maps integer replies to strings runs without a connection ever counted out of step", async () => {
    const stream = uniqueStream('rmap');
    await admin.fill(stream, payloads(20));
    const client = createClient({ url: 'redis://127.0.0.1:6379' }).withTypeMapping({
      [RESP_TYPES.NUMBER]: String,
    });
    client.on('error', () => {});
    await client.connect();
    const errors: string[] = [];
    const ledger = new Ledger();
    let failed = false; // one failure: a retry goes through the claim and ack scripts too
    const consumer = consume<{ k: string }>(
      await redisSource({ client, stream, group: 'g', lease: 2_000 }),
      ({ k }) => {
        if (!failed) {
          failed = true;
          throw new Error('once');
        }
        ledger.add(k);
      },
      { concurrency: 4, maxDeliveries: 2, onError: (e, op) => errors.push(`${op}: ${e.message}`) },
    );
    await ledger.until(20);
    await consumer.close();
    await client.close();
    // CLIENT ID, PROMOTE and the scripts answer integers: as strings here, still not "out of step".
    expect(errors.filter((e) => !e.endsWith(': once'))).toEqual([]);
    expect(await admin.pending(stream)).toBe(0);
  });

  it("a caller's client is duplicated, never used for commands, and left open", async () => {
    const stream = uniqueStream('rdup');
    await admin.fill(stream, payloads(5));
    const client = await faultyClient(3);
    let used = false;
    void client.arm('EVALSHA', () => {
      used = true;
      return undefined;
    });
    const ledger = new Ledger();
    const consumer = consume<{ k: string }>(
      await redisSource({ client: client.client, stream, group: 'g' }),
      ({ k }) => void ledger.add(k),
      { concurrency: 2 },
    );
    await ledger.until(5);
    await consumer.close();
    expect(used).toBe(false);
    expect(client.client.isOpen).toBe(true);
    expect(await admin.pending(stream)).toBe(0);
  });
});
