import { createServer, type Server, type Socket } from 'node:net';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amqpDeadLetters } from '../../src/brokers/amqp/dead-letters.js';
import { amqpSource } from '../../src/brokers/amqp/index.js';
import { natsDeadLetters } from '../../src/brokers/nats/dead-letters.js';
import { natsSource } from '../../src/brokers/nats/index.js';
import { postgresDeadLetters } from '../../src/brokers/postgres/dead-letters.js';
import { postgresSource } from '../../src/brokers/postgres/index.js';
import { redisDeadLetters } from '../../src/brokers/redis/dead-letters.js';
import { redisSource } from '../../src/brokers/redis/index.js';
import { NotConnectedError } from '../../src/errors.js';
import { deadline } from '../fixtures/brokers/consumer-harness.js';
import { loopStopwatch } from '../helpers.js';

// A server that refuses the TCP connection, or a host name that does not resolve: the first
// connection fails at once (was: `await redisSource(...)` / `await amqpSource(...)` never
// settled for a wrong URL), with sluice's retryable `NotConnectedError` (`ERR_NOT_CONNECTED`)
// naming the server without its password, the socket's error (its `code`) as `cause` — on every
// broker, as an outage later in the run is reported (was: the raw socket error, uncoded by
// sluice, on all four).
describe('broker sources: an unreachable server fails fast with ERR_NOT_CONNECTED', () => {
  let refusing = 0;
  beforeAll(async () => {
    // A port nothing listens on: bound, then closed.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    refusing = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
  });

  // `.invalid` never resolves (RFC 6761); a resolver that cannot be asked says EAI_AGAIN.
  const hosts: [string, () => string, RegExp, RegExp][] = [
    [
      'refused',
      () => `127.0.0.1:${refusing}`,
      /could not be reached \(connect ECONNREFUSED/,
      /^ECONNREFUSED$/,
    ],
    [
      'unknown host',
      () => 'sluice-no-such-host.invalid:4321',
      /did not resolve/,
      /^(ENOTFOUND|EAI_AGAIN)$/,
    ],
  ];
  const opens: [string, (hostPort: string) => Promise<unknown>][] = [
    [
      'redisSource',
      (h) => redisSource({ url: `redis://:s3cret@${h}`, stream: 'failfast', group: 'g' }),
    ],
    [
      'redisDeadLetters',
      (h) => redisDeadLetters({ url: `redis://:s3cret@${h}`, stream: 'failfast' }),
    ],
    [
      'natsSource',
      (h) => natsSource({ servers: `nats://u:s3cret@${h}`, stream: 'failfast', consumer: 'c' }),
    ],
    [
      'natsDeadLetters',
      (h) => natsDeadLetters({ servers: `nats://u:s3cret@${h}`, stream: 'failfast' }),
    ],
    ['amqpSource', (h) => amqpSource({ url: `amqp://guest:s3cret@${h}`, queue: 'failfast' })],
    [
      'amqpDeadLetters',
      (h) => amqpDeadLetters({ url: `amqp://guest:s3cret@${h}`, queue: 'failfast' }),
    ],
    [
      'postgresSource',
      (h) =>
        postgresSource({
          connectionString: `postgres://postgres:s3cret@${h}/test`,
          table: 'failfast',
        }),
    ],
    [
      'postgresDeadLetters',
      (h) =>
        postgresDeadLetters({
          connectionString: `postgres://postgres:s3cret@${h}/test`,
          table: 'failfast',
        }),
    ],
  ];
  describe.each(hosts)('%s', (_, hostPort, says, causeCode) => {
    it.each(opens)('%s', async (_, open) => {
      // Event-loop time (loopStopwatch): a bound a loaded machine does not stretch.
      const watch = loopStopwatch();
      const error = (await open(hostPort()).then(
        () => undefined,
        (e: unknown) => e,
      )) as NotConnectedError & { cause?: { code?: unknown } };
      expect(error).toBeInstanceOf(NotConnectedError);
      expect(error).toMatchObject({ code: 'ERR_NOT_CONNECTED', retryable: true });
      expect(error.message).toMatch(says);
      expect(error.message).toContain(hostPort().split(':')[0]);
      expect(error.message).not.toContain('s3cret');
      expect(String(error.cause?.code)).toMatch(causeCode);
      expect(watch.stop()).toBeLessThan(5000);
    });
  });
});

// A server that accepts connections and never says a word: a TCP connect timeout does not help,
// only a deadline on the handshake does (was: `await redisSource(...)` pending after 150 s).
describe('broker sources: a server that never answers fails within connectTimeout', () => {
  let server: Server;
  let port: number;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    server = createServer((socket) => {
      // Read (and drop) what the client sends, so that its close is seen here as EOF.
      socket.resume();
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  const cases: [string, () => Promise<unknown>][] = [
    [
      'redisSource',
      () =>
        redisSource({
          url: `redis://:secret@127.0.0.1:${port}`,
          stream: 'silent',
          group: 'g',
          connectTimeout: 300,
        }),
    ],
    [
      'postgresSource',
      () =>
        postgresSource({
          connectionString: `postgres://postgres@127.0.0.1:${port}/test`,
          table: 'silent',
          connectTimeout: 300,
        }),
    ],
    [
      'natsSource',
      () =>
        natsSource({
          servers: `127.0.0.1:${port}`,
          stream: 'silent',
          consumer: 'c',
          connectTimeout: 300,
        }),
    ],
    // The dead letters' factories fail the same way (was, for PostgreSQL: pg's own "Connection
    // terminated due to connection timeout", without a code).
    [
      'postgresDeadLetters',
      () =>
        postgresDeadLetters({
          connectionString: `postgres://postgres:secret@127.0.0.1:${port}/test`,
          table: 'silent',
          connectTimeout: 300,
        }),
    ],
    [
      'redisDeadLetters',
      () =>
        redisDeadLetters({
          url: `redis://:secret@127.0.0.1:${port}`,
          stream: 'silent',
          connectTimeout: 300,
        }),
    ],
    [
      'natsDeadLetters',
      () =>
        natsDeadLetters({ servers: `127.0.0.1:${port}`, stream: 'silent', connectTimeout: 300 }),
    ],
    [
      'amqpDeadLetters',
      () =>
        amqpDeadLetters({
          url: `amqp://guest:secret@127.0.0.1:${port}`,
          queue: 'silent',
          connectTimeout: 300,
        }),
    ],
  ];
  it.each(cases)('%s', async (_, open) => {
    // Event-loop time (loopStopwatch): on a loaded machine the 300 ms timer fires any amount
    // late in wall time.
    const watch = loopStopwatch();
    const error = (await open().then(
      () => undefined,
      (e: unknown) => e,
    )) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ code: 'ERR_CONNECT_TIMEOUT' });
    expect(error.message).toMatch(
      /at (redis:\/\/|postgres:\/\/|amqp:\/\/)?.*127\.0\.0\.1.* within 300 ms/,
    );
    expect(error.message).not.toMatch(/secret/);
    expect(watch.stop()).toBeLessThan(3000);
    // The half-open client was destroyed: nothing is left connected to the silent server (each
    // socket's 'close' here; a client left connected never closes, and the deadline says so).
    await deadline(
      Promise.all([...sockets].map((s) => new Promise((r) => s.once('close', r)))),
      20_000,
      `${sockets.size} socket(s) to the silent server closed`,
    );
    expect(sockets.size).toBe(0);
  });
});

describe('redisSource: a failed set-up closes what it opened', () => {
  it('XGROUP CREATE on a key of another type rejects, and no connection is left open', async () => {
    const admin = createClient({ url: 'redis://127.0.0.1:6379' });
    await admin.connect();
    const key = `sluice:test:wrongtype:${process.pid}:${Date.now()}`;
    await admin.set(key, 'a string, not a stream');
    const clients = async () =>
      String(await admin.sendCommand(['CLIENT', 'LIST']))
        .split('\n')
        .filter((line) => line.includes(` name=sluice:${key}:g `)).length;
    try {
      await expect(redisSource({ stream: key, group: 'g' })).rejects.toThrow(/WRONGTYPE/);
      // The named reading connection is gone (the server drops it as the client closes).
      const until = Date.now() + 2000;
      while ((await clients()) > 0 && Date.now() < until)
        await new Promise((r) => setTimeout(r, 10));
      expect(await clients()).toBe(0);
    } finally {
      await admin.del(key);
      await admin.close();
    }
  });
});
