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

// Nothing listens on these ports: the first connection must fail at once, not retry forever
// (was: `await redisSource(...)` / `await amqpSource(...)` never settled for a wrong URL).
describe('broker sources: a wrong URL fails fast', () => {
  it("redisSource rejects with the socket's own connection error, with its code", async () => {
    await expect(
      redisSource({ url: 'redis://127.0.0.1:1', stream: 'failfast', group: 'g' }),
    ).rejects.toMatchObject({
      code: 'ECONNREFUSED',
      message: expect.stringMatching(/ECONNREFUSED/),
    });
  });

  it('amqpSource rejects with the connection error', async () => {
    await expect(
      amqpSource({ url: 'amqp://guest:guest@127.0.0.1:1', queue: 'failfast' }),
    ).rejects.toThrow(/ECONNREFUSED/);
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
    const started = performance.now();
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
    expect(performance.now() - started).toBeLessThan(3000);
    // The half-open client was destroyed: nothing is left connected to the silent server.
    const until = Date.now() + 2000;
    while (sockets.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
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
