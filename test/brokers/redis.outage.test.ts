/**
 * A Redis consumer during outages it cannot fix: a server that takes connections and closes them
 * (Redis at `maxclients`, a proxy in front of a dead server) must get reconnects with backoff,
 * not a busy loop; and `close()` must not wait for the outage to end. A private redis-server
 * (its `maxclients` is changed) and the TCP fault proxy; the shared Redis is only proxied to.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ClientClosedError, createClient, ErrorReply, SocketClosedUnexpectedlyError } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsumerReport, consume } from '../../src/brokers/consumer.js';
import { redisSource } from '../../src/brokers/redis/index.js';
import { connectionError, RedisLink } from '../../src/brokers/redis/link.js';
import {
  type AnyRedisClient,
  createGroup,
  loadScripts,
  type RedisSourceOptions,
  RedisStreamSource,
  readerName,
} from '../../src/brokers/redis/source.js';
import { NotConnectedError, SettleTimeoutError } from '../../src/errors.js';
import { deadline, Ledger, payloads } from '../fixtures/brokers/consumer-harness.js';
import { startFaultProxy } from '../fixtures/brokers/fault-proxy.js';
import { type RedisAdmin, redisAdmin, uniqueStream } from '../fixtures/brokers/redis-helpers.js';
import { privateRedis } from '../fixtures/brokers/redis-server.js';
import { captureSockets } from '../fixtures/brokers/redis-sockets.js';
import { deferred, loopStopwatch } from '../helpers.js';

let server: Awaited<ReturnType<typeof privateRedis>>;
let admin: RedisAdmin;

beforeAll(async () => {
  server = await privateRedis();
  await server.start();
  admin = await redisAdmin(server.url);
});

afterAll(async () => {
  await admin?.client.close().catch(() => {});
  await server?.remove();
});

async function statsField(name: string): Promise<number> {
  const info = String(await admin.client.sendCommand(['INFO', 'stats']));
  return Number(new RegExp(`${name}:(\\d+)`).exec(info)?.[1]);
}

describe('a Redis consumer during an outage', () => {
  it('both connections are named (a handshake), so a server that accepts and closes them gets reconnects with backoff, not a busy loop', async () => {
    const stream = uniqueStream('maxclients');
    const ran = deferred<void>();
    const consumer = consume(
      await redisSource({ url: server.url, stream, group: 'g' }),
      () => ran.resolve(),
      { concurrency: 4, onError: () => {} },
    );
    const list = String(await admin.client.sendCommand(['CLIENT', 'LIST']));
    expect(list).toContain(`name=${readerName(stream, 'g')} `);
    expect(list).toContain(`name=${readerName(stream, 'g')}:cmd `);
    // Only the admin connection may stay: every new one is accepted, refused, closed.
    await admin.client.sendCommand(['CONFIG', 'SET', 'maxclients', '1']);
    await admin.client.sendCommand(['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']);
    const before = await statsField('rejected_connections');
    const cpu = process.cpuUsage();
    await sleep(1_000); // a window to count reconnects in, not a wait for something to happen
    const used = process.cpuUsage(cpu);
    const rejected = (await statsField('rejected_connections')) - before;
    // Backoff from 50 ms doubling: a handful per connection in a second. Without a handshake
    // node-redis reconnected at once: thousands a second, a whole core.
    expect(rejected).toBeLessThan(100);
    expect((used.user + used.system) / 1000).toBeLessThan(500);
    await admin.client.sendCommand(['CONFIG', 'SET', 'maxclients', '10000']);
    await admin.client.sendCommand(['XADD', stream, '*', 'body', '{}']);
    await deadline(ran.promise, 30_000, 'a handler after the server takes connections again');
    await consumer.close();
    await admin.client.del(stream);
  });

  // The bounds are in event-loop time (loopStopwatch), not wall time: on a loaded machine a
  // timer fires any amount late, and a close that ended on its lease then read as, say, 6 s of
  // wall time. What close() waited for is pinned by events: it resolves while the outage still
  // lasts (the proxy accepts again only after it), and every ack it did not get confirmed is
  // reported, either dropped at once or given up at the lease.
  it.each([
    // Refused: the fetch is dropped at once; an ack in flight is waited for at most `lease`
    // (2 s), one sent in the turn of the cut too (see 'an ack when its connection fails'). The
    // bound leaves 1 s for the work after the lease, less than the 2 s of a graceful
    // close (CLOSE_GRACE_MS) or of the group clean-up (CLOSE_CLEANUP_MS) that must not be tried
    // while the link is down.
    ['refused and cut', 3_000],
    // Stalled: the link looks up, so the fetch waits for the stuck-connection deadline
    // (fetchWait + connectTimeout + STUCK_MARGIN_MS: 3.2 s) and the watchdog's tick (0.8 s), an
    // ack's resend at most `lease` (2 s); the command connection, never replaced, still looks
    // ready, so the group clean-up (CLOSE_CLEANUP_MS) and a graceful close (CLOSE_GRACE_MS) wait
    // 2 s each: 10 s. The bound leaves 5 s for watchdog ticks skipped as late (the process was
    // not run for a tick's length), which each put the stuck deadline off by a tick.
    ['stalled', 15_000],
  ] as const)(
    'close() during an outage (link %s) resolves within its bound; what it did not ack stays in the group',
    async (fault, bound) => {
      const lease = 2_000;
      const proxy = await startFaultProxy({ port: server.port });
      const stream = uniqueStream('close-outage');
      await admin.fill(stream, payloads(200));
      const ledger = new Ledger();
      let closing = false;
      const reported: { op: string; error: Error }[] = [];
      const consumer = consume<{ k: string }>(
        await redisSource({
          url: `redis://127.0.0.1:${proxy.port}`,
          stream,
          group: 'g',
          fetchWait: 200,
          connectTimeout: 1_000,
          lease,
        }),
        async ({ k }) => {
          await sleep(5);
          ledger.add(k);
        },
        {
          concurrency: 4,
          onError: (error, op) => {
            if (closing) reported.push({ op, error });
          },
        },
      );
      await ledger.until(20);
      if (fault === 'stalled') proxy.stall();
      else {
        proxy.refuse();
        proxy.cut();
        // Closed during the outage, not in the instant of the cut: once a reconnect was refused.
        await deadline(proxy.refusedAtLeast(1), 30_000, 'a reconnect attempt');
      }
      closing = true;
      const watch = loopStopwatch();
      // Not a measure: the outage lasts until close() has resolved, so a close that waited for
      // it would never resolve.
      const report = await deadline(consumer.close(), 30_000, `close() with the link ${fault}`);
      expect(watch.stop()).toBeLessThan(bound);
      // Every ack close() did not get confirmed is counted and reported: dropped with the
      // connection, or given up at the lease; none waited for the outage to end.
      const acks = reported.filter(({ op }) => op === 'ack');
      expect(report.unsettled).toBe(acks.length);
      for (const { error } of acks) {
        if (error instanceof SettleTimeoutError) expect(error.timeout).toBe(lease);
        else expect(error).toBeInstanceOf(NotConnectedError);
      }
      proxy.accept();
      proxy.resume();
      await proxy.close();
      // What was not acked is still pending (claimed again after the lease) or not yet read.
      const acked = ledger.runs.size;
      const left = (await admin.pending(stream)) + (await admin.lag(stream));
      expect(acked + left).toBeGreaterThanOrEqual(200);
      await admin.client.del(stream);
    },
  );
});

describe('an ack when its connection fails', () => {
  it('an ack queued in the turn its connection fails (not yet written) is given up after the lease while Redis stays unreachable, not held for the outage', async () => {
    const lease = 300;
    const stream = uniqueStream('ack-unwritten');
    await admin.fill(stream, payloads(1));
    const sockets = await captureSockets();
    const opened: AnyRedisClient[] = [];
    const open = async () => {
      const client = createClient({ url: server.url, disableClientInfo: true }) as AnyRedisClient;
      client.on('error', () => {});
      await client.connect();
      opened.push(client);
      return { client, socket: sockets.last() };
    };
    let source: RedisStreamSource | undefined;
    try {
      const cmd = await open();
      const read = await open();
      await createGroup(cmd.client, stream, 'g');
      await loadScripts(cmd.client);
      source = new RedisStreamSource(cmd.client, read.client, true, {
        stream,
        group: 'g',
        consumer: 'a',
        lease,
      });
      const [message] = await source.fetch(1, new AbortController().signal);
      sockets.refuseNew(); // every reconnect from now on is refused: Redis unreachable
      const acked = source.ack(message!).then(
        () => undefined,
        (error: unknown) => error,
      );
      // The acks of a turn are sent at the next setImmediate, on the reading connection (no fetch
      // runs), ready then; node-redis schedules their write for the turn after. Both sockets fail
      // in between: the script was never written, so node-redis keeps it queued for a reconnect
      // (rather than rejecting it, as it does a written command), and no reconnect succeeds.
      // The link withdraws it with the failed connection; the resend on the command connection
      // (down too) waits in its queue, for the lease at most.
      setImmediate(() => {
        read.socket.destroy(new Error('connection reset (simulated)'));
        cmd.socket.destroy(new Error('connection reset (simulated)'));
      });
      const watch = loopStopwatch();
      // Not a measure: Redis stays unreachable until the ack has settled, so an ack that waited
      // for a reconnect would never settle.
      const error = await deadline(acked, 10_000, 'the ack, with Redis unreachable');
      expect(error).toBeInstanceOf(SettleTimeoutError);
      expect(error).toMatchObject({ operation: 'ack', timeout: lease });
      // Given up a lease after the resend was sent (on a connection reconnecting).
      expect(watch.stop()).toBeLessThan(2 * lease);
    } finally {
      await source?.close();
      for (const client of opened) if (client.isOpen) client.destroy();
      sockets.restore();
    }
    // Never acked: still pending, claimed again after the lease.
    expect(await admin.pending(stream)).toBe(1);
    await admin.client.del(stream);
  });

  it('an ack on a live connection whose reply comes after the lease (CLIENT PAUSE) is waited for, not given up', async () => {
    const stream = uniqueStream('ack-slow');
    await admin.fill(stream, payloads(1));
    const source = await redisSource({
      url: server.url,
      stream,
      group: 'g',
      fetchWait: 200,
      connectTimeout: 1_000,
      lease: 300,
    });
    try {
      const [message] = await source.fetch(1, new AbortController().signal);
      // Every command of every other client waits 1 s from now: the ack's reply comes more
      // than three leases after it was sent, on a connection that never dropped.
      await admin.client.sendCommand(['CLIENT', 'PAUSE', '1000', 'ALL']);
      await source.ack(message!);
    } finally {
      await source.close();
    }
    expect(await admin.pending(stream)).toBe(0);
    await admin.client.del(stream);
  });
});

describe('commands when their connection fails before writing them', () => {
  const reset = () => new Error('connection reset (simulated)');

  /** A connected client of the private server, and its socket. */
  async function connected(sockets: Awaited<ReturnType<typeof captureSockets>>) {
    const client = createClient({ url: server.url, disableClientInfo: true }) as AnyRedisClient;
    client.on('error', () => {});
    await client.connect();
    return { client, socket: sockets.last() };
  }

  it('a command sent on a ready connection that fails before node-redis writes it is rejected with that connection, not kept for a reconnect that never comes', async () => {
    const sockets = await captureSockets();
    const { client, socket } = await connected(sockets);
    const link = new RedisLink(client, true, () => client.duplicate(), 60_000);
    try {
      sockets.refuseNew(); // every reconnect is refused: Redis unreachable
      const reply = link.sendCommand(['PING']).then(
        () => 'replied',
        (error: unknown) => error,
      );
      // node-redis writes at the next setImmediate; the socket's error is handled first (next
      // tick), with the PING still unwritten.
      socket.destroy(reset());
      // Not a measure: Redis stays unreachable, so a PING kept for the reconnect never settles.
      const error = await deadline(reply, 10_000, 'the PING, with Redis unreachable');
      expect(error).toBeInstanceOf(NotConnectedError);
      expect((error as Error).cause).toMatchObject({ message: 'connection reset (simulated)' });
    } finally {
      await link.close();
      sockets.restore();
    }
  });

  it('a command queued during an outage is rejected when the connection that came back fails before writing it, not kept for the next reconnect', async () => {
    const sockets = await captureSockets();
    const { client, socket } = await connected(sockets);
    const link = new RedisLink(client, true, () => client.duplicate(), 60_000);
    try {
      sockets.refuseNew();
      const failed = new Promise((resolve) => client.on('reconnecting', () => resolve(undefined)));
      socket.destroy(reset());
      await deadline(failed, 10_000, 'the connection reconnecting');
      expect(link.reconnecting).toBe(true);
      const reply = link.sendCommand(['PING']).then(
        () => 'replied',
        (error: unknown) => error,
      );
      // The next attempt connects; node-redis schedules the write of the queued PING as the
      // connection gets ready, and the connection fails before that write runs. Redis is
      // unreachable from then on.
      let cut = false;
      client.on('ready', () => {
        if (cut) return;
        cut = true;
        sockets.refuseNew();
        sockets.last().destroy(reset());
      });
      sockets.acceptNew();
      const error = await deadline(reply, 10_000, 'the PING, with Redis unreachable again');
      expect(cut).toBe(true);
      expect(error).toBeInstanceOf(NotConnectedError);
    } finally {
      await link.close();
      sockets.restore();
    }
  });

  /** A source on two connections of the private server, with their sockets. */
  async function sourceWithSockets(stream: string, o: Partial<RedisSourceOptions> = {}) {
    const sockets = await captureSockets();
    const cmd = await connected(sockets);
    const read = await connected(sockets);
    await createGroup(cmd.client, stream, 'g');
    await loadScripts(cmd.client);
    const source = new RedisStreamSource(cmd.client, read.client, true, {
      stream,
      group: 'g',
      consumer: 'a',
      ...o,
    });
    return { sockets, cmd, read, source };
  }

  it('a fetch aborted in the turn its connections fail (its commands not yet written) ends while Redis stays unreachable', async () => {
    const stream = uniqueStream('fetch-unwritten');
    const { sockets, cmd, read, source } = await sourceWithSockets(stream);
    try {
      const abort = new AbortController();
      sockets.refuseNew();
      // The first fetch sends TIME and the delayed-jobs script at once, and waits for the script.
      const fetched = source.fetch(10, abort.signal).then(
        () => 'returned',
        (error: unknown) => error,
      );
      // In the same turn: the consumer closes (the abort finds both connections up, so it
      // replaces neither), and both connections fail before node-redis writes the commands.
      abort.abort();
      read.socket.destroy(reset());
      cmd.socket.destroy(reset());
      // Not a measure: Redis stays unreachable, so a fetch whose commands were kept for the
      // reconnect never ends.
      const error = await deadline(fetched, 10_000, 'the aborted fetch, with Redis unreachable');
      expect(error).toBeInstanceOf(NotConnectedError);
    } finally {
      await source.close();
      sockets.restore();
    }
    await admin.client.del(stream);
  });

  it('a fetch aborted before its read finds the group gone does not re-create the group on a command connection that is down (it would wait for the outage)', async () => {
    const stream = uniqueStream('fetch-nogroup');
    await admin.fill(stream, payloads(1));
    // fetchWait: the delayed jobs are not looked at again in the second fetch.
    const { sockets, cmd, source } = await sourceWithSockets(stream, { fetchWait: 30_000 });
    try {
      expect(await source.fetch(1, new AbortController().signal)).toHaveLength(1);
      await admin.client.sendCommand(['XGROUP', 'DESTROY', stream, 'g']);
      // The command connection is down, every reconnect refused; the reading one is up.
      sockets.refuseNew();
      const failed = new Promise((resolve) =>
        cmd.client.on('reconnecting', () => resolve(undefined)),
      );
      cmd.socket.destroy(reset());
      await deadline(failed, 10_000, 'the command connection reconnecting');
      const abort = new AbortController();
      const fetched = source.fetch(1, abort.signal).then(
        () => 'returned',
        (error: unknown) => error,
      );
      // The read is written at this turn's setImmediate, ahead of this one; its NOGROUP reply
      // is read in a later turn. Aborted in between: the abort replaces the command connection
      // (reconnecting), whose replacement is refused in turn.
      await new Promise((resolve) => setImmediate(resolve));
      abort.abort();
      const error = await deadline(fetched, 10_000, 'the aborted fetch, with Redis unreachable');
      expect(String((error as Error).message)).toMatch(/^NOGROUP/);
    } finally {
      await source.close();
      sockets.restore();
    }
    await admin.client.del(stream);
  });
});

describe('settling with Redis down', () => {
  it.each(['drain', 'abort', 'fail'] as const)(
    'with handlers running when the server dies, %s resolves within its bound (a release, retry or dead letter is not waited for past the lease); nothing is lost',
    async (how) => {
      const own = await privateRedis();
      await own.start();
      const ownAdmin = await redisAdmin(own.url);
      try {
        const stream = uniqueStream(`settle-down-${how}`);
        await ownAdmin.fill(stream, payloads(8));
        await ownAdmin.client.close();
        let running = 0;
        const codes = new Set<string>();
        const allRunning = deferred<void>();
        const fail = deferred<void>();
        const consumer = consume<{ k: string }>(
          await redisSource({
            url: own.url,
            stream,
            group: 'g',
            fetchWait: 200,
            connectTimeout: 1_000,
            lease: 1_500,
          }),
          async (_, { signal }) => {
            if (++running === 4) allRunning.resolve();
            // Held until canceled (drain deadline, abort) or failed on cue: either way the
            // consumer then settles with Redis (release, retry, dead letter) while it is down.
            await new Promise<void>((_, reject) => {
              signal.addEventListener('abort', () => reject(signal.reason), { once: true });
              void fail.promise.then(() => reject(new Error('fails')));
            });
          },
          {
            concurrency: 4,
            maxDeliveries: how === 'fail' ? 1 : 5,
            onError: (e, op) => {
              if (op === 'release' || op === 'retry' || op === 'deadLetter')
                codes.add((e as { code?: string }).code ?? e.name);
            },
          },
        );
        await deadline(allRunning.promise, 10_000, 'four handlers running');
        await own.stop(0); // SIGKILL: every reconnect is refused from now on
        // Event-loop time (loopStopwatch), not wall time: a loaded machine delays the timers
        // that end these waits by any amount. The wall deadlines only catch a hang: the server
        // is down until the consumer has settled, so a settle that waited for it never ends.
        const watch = loopStopwatch();
        let report: ConsumerReport;
        if (how === 'drain') {
          report = await deadline(consumer.drain({ timeout: 300 }), 30_000, 'drain');
        } else if (how === 'abort') report = await deadline(consumer.abort(), 30_000, 'abort');
        else {
          fail.resolve(); // failures on the last delivery: dead letters while Redis is down
          report = await deadline(consumer.drain({ timeout: 300 }), 30_000, 'drain after failures');
        }
        // Drain deadline 0.3 s + a settle bounded by the lease 1.5 s + the 2 s close grace.
        expect(watch.stop()).toBeLessThan(5_000);
        // What was not confirmed is reported, under its own code: given up at the lease (sent
        // during the outage), or rejected with the connection (sent as it failed).
        expect(codes.size).toBeGreaterThan(0);
        for (const code of codes)
          expect(['ERR_SETTLE_TIMEOUT', 'ERR_NOT_CONNECTED']).toContain(code);
        // The report does not read clean: canceled handlers (drain deadline, abort), or
        // finished handlers whose dead letters Redis never confirmed (unsettled).
        if (how === 'fail') expect(report).toMatchObject({ completed: 0, unsettled: 4 });
        else expect(report).toMatchObject({ completed: 0, canceled: 4, unsettled: 0 });
        await own.start(); // its AOF kept every acknowledged write
        const after = await redisAdmin(own.url);
        // Nothing lost: every message is still pending in the group, not yet read, or
        // dead-lettered (once: a timed-out dead letter either ran or left the entry pending).
        const pending = await after.pending(stream);
        // Not yet read: after the group's last delivered id (`lag` is unknown after a reload).
        const [group] = (await after.client.sendCommand([
          'XINFO',
          'GROUPS',
          stream,
        ])) as unknown[][];
        const last = String(group![group!.indexOf('last-delivered-id') + 1]);
        const unread = ((await after.client.sendCommand(['XRANGE', stream, `(${last}`, '+'])) as [])
          .length;
        const dead = Number(await after.client.sendCommand(['XLEN', `${stream}:dead`]));
        expect(pending + unread + dead).toBe(8);
        await after.client.close();
      } finally {
        await own.remove();
      }
    },
  );
});

describe('settling with Redis slow but up', () => {
  it('a retry whose reply comes after the lease (CLIENT PAUSE) is waited for, not reported as a settle timeout', async () => {
    const stream = uniqueStream('settle-slow');
    await admin.fill(stream, payloads(1));
    const errors: string[] = [];
    const runs: number[] = [];
    const done = deferred<void>();
    const consumer = consume<{ k: string }>(
      await redisSource({
        url: server.url,
        stream,
        group: 'g',
        fetchWait: 200,
        connectTimeout: 1_000,
        lease: 1_000,
      }),
      async (_, { message }) => {
        runs.push(message.deliveryCount);
        if (message.deliveryCount > 1) return done.resolve();
        // Every command of every other client waits 2.5 s from now: the retry this failure
        // sends gets its reply 1.5 s past the lease, on a connection that never dropped.
        await admin.client.sendCommand(['CLIENT', 'PAUSE', '2500', 'ALL']);
        throw new Error('first delivery fails');
      },
      {
        concurrency: 1,
        backoff: () => 0,
        onError: (e) => errors.push((e as { code?: string }).code ?? e.message),
      },
    );
    await deadline(done.promise, 20_000, 'the retried delivery');
    await consumer.close();
    expect(runs).toEqual([1, 2]);
    expect(errors).toEqual([]);
    expect(consumer.stats()).toMatchObject({ retried: 1, acked: 1 });
    await admin.client.del(stream);
  });
});

describe('errors of a failed Redis connection', () => {
  it("a fetch cut by a dropped connection reaches onError as ERR_NOT_CONNECTED, the client's own error as its cause, never an uncoded node-redis error", async () => {
    const proxy = await startFaultProxy({ port: server.port });
    const stream = uniqueStream('cut-fetch');
    const reported: { op: string; error: Error }[] = [];
    const fetchFailed = deferred<void>();
    try {
      const consumer = consume(
        await redisSource({
          url: `redis://127.0.0.1:${proxy.port}`,
          stream,
          group: 'g',
          fetchWait: 30_000,
        }),
        () => {},
        {
          concurrency: 1,
          onError: (error, op) => {
            reported.push({ op, error });
            if (op === 'fetch') fetchFailed.resolve();
          },
        },
      );
      // Blocked in XREADGROUP (an empty stream, a 30 s block) when the connections are reset:
      // the server lists the reading connection as blocked in it.
      const reader = `name=${readerName(stream, 'g')} `;
      const blocked = async () => {
        const list = String(await admin.client.sendCommand(['CLIENT', 'LIST']));
        return list
          .split('\n')
          .some((l) => l.includes(reader) && l.includes('flags=b') && l.includes('cmd=xreadgroup'));
      };
      await deadline(
        (async () => {
          while (!(await blocked())) await new Promise((r) => setImmediate(r));
        })(),
        10_000,
        'the read blocked in XREADGROUP',
      );
      proxy.cut();
      await deadline(fetchFailed.promise, 10_000, 'the cut fetch reported');
      await consumer.close();
      expect(reported.length).toBeGreaterThan(0);
      for (const { error } of reported) {
        expect(error).toMatchObject({ code: expect.stringMatching(/^ERR_/) });
      }
      const fetch = reported.find(({ op }) => op === 'fetch')!.error;
      expect(fetch).toBeInstanceOf(NotConnectedError);
      expect(fetch.cause).toBeInstanceOf(Error);
      expect(fetch.cause).not.toBeInstanceOf(NotConnectedError);
      // Written (the read was blocked): not one withdrawn before it was sent.
      expect(fetch.message).not.toMatch(/before the command was sent/);
    } finally {
      await proxy.close();
      await admin.client.del(stream);
    }
  });
});

describe('which Redis errors count as a failed connection', () => {
  it('node-redis connection errors and socket errors are wrapped (cause kept); a server reply error and other errors pass through unchanged', () => {
    const closed = new SocketClosedUnexpectedlyError();
    const reset = Object.assign(new Error('read ECONNRESET'), {
      code: 'ECONNRESET',
      syscall: 'read',
    });
    for (const original of [closed, new ClientClosedError(), reset]) {
      const wrapped = connectionError(original);
      expect(wrapped).toBeInstanceOf(NotConnectedError);
      expect(wrapped).toMatchObject({ code: 'ERR_NOT_CONNECTED', cause: original });
    }
    const reply = new ErrorReply('NOGROUP No such key or consumer group');
    const other = new TypeError('not a connection problem');
    expect(connectionError(reply)).toBe(reply);
    expect(connectionError(other)).toBe(other);
    expect(connectionError('text')).toBe('text');
  });
});
