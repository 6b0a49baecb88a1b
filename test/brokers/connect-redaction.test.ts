import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amqpDeadLetters } from '../../src/brokers/amqp/dead-letters.js';
import { amqpSource } from '../../src/brokers/amqp/index.js';
import { natsDeadLetters } from '../../src/brokers/nats/dead-letters.js';
import { natsSource } from '../../src/brokers/nats/index.js';
import { postgresDeadLetters } from '../../src/brokers/postgres/dead-letters.js';
import { postgresSource } from '../../src/brokers/postgres/index.js';
import { redisDeadLetters } from '../../src/brokers/redis/dead-letters.js';
import { redisSource } from '../../src/brokers/redis/index.js';
import { fakeTcp } from '../fixtures/brokers/fake-tcp.js';

const SECRET = 's3cret-in-url';

/** The whole error as a log would show it: message, stack, cause chain, own properties. */
async function failure(open: () => Promise<unknown>): Promise<{ error: Error; shown: string }> {
  const error = (await open().then(
    () => undefined,
    (e: unknown) => e,
  )) as Error;
  expect(error).toBeInstanceOf(Error);
  return { error, shown: inspect(error, { depth: 10 }) };
}

// Local servers that misbehave in the three ways a NATS first connection can fail before the
// client takes over: silent, not NATS (a first line that is not INFO), and INFO then silence
// (the client's own timeout).
describe('NATS connection errors name the server without its password or token', () => {
  const tcp = fakeTcp();
  const ports: Record<'silent' | 'notNats' | 'infoThenSilent', number> = {
    silent: 0,
    notNats: 0,
    infoThenSilent: 0,
  };
  beforeAll(async () => {
    ports.silent = await tcp.listen();
    ports.notNats = await tcp.listen((s) => s.write('HELLO\r\n'));
    ports.infoThenSilent = await tcp.listen((s) =>
      s.write(`INFO {"server_id":"x","version":"2.10.0","max_payload":1048576}\r\n`),
    );
  });
  afterAll(() => tcp.close());

  const forms = [
    [
      'a user and password',
      (port: number) => `nats://u:${SECRET}@127.0.0.1:${port}`,
      'nats://u:***@',
    ],
    ['a token', (port: number) => `nats://${SECRET}@127.0.0.1:${port}`, 'nats://***@'],
    ['no scheme', (port: number) => `u:${SECRET}@127.0.0.1:${port}`, 'u:***@'],
  ] as const;
  for (const kind of ['silent', 'notNats', 'infoThenSilent'] as const) {
    it.each(forms)(
      `a ${kind} server, URL with %s: natsSource and natsDeadLetters`,
      async (_, url, masked) => {
        for (const open of [
          () =>
            natsSource({
              servers: url(ports[kind]),
              stream: 's',
              consumer: 'c',
              connectTimeout: 300,
            }),
          () => natsDeadLetters({ servers: [url(ports[kind])], stream: 's', connectTimeout: 300 }),
        ]) {
          const { error, shown } = await failure(open);
          expect(shown).not.toContain(SECRET);
          if (kind !== 'notNats') expect(error).toMatchObject({ code: 'ERR_CONNECT_TIMEOUT' });
          expect(error.message).toContain(`${masked}127.0.0.1:${ports[kind]}`);
        }
      },
    );
  }
});

describe('a URL that does not parse is a bad option, shown without its user info', () => {
  const bad = (scheme: string) => `${scheme}://user:${SECRET}@127.0.0.1:99999`;
  it.each([
    ['redisSource', () => redisSource({ url: bad('redis'), stream: 's', group: 'g' })],
    ['redisDeadLetters', () => redisDeadLetters({ url: bad('redis'), stream: 's' })],
    ['natsSource', () => natsSource({ servers: bad('nats'), stream: 's', consumer: 'c' })],
    ['natsDeadLetters', () => natsDeadLetters({ servers: bad('nats'), stream: 's' })],
    ['amqpSource', () => amqpSource({ url: bad('amqp'), queue: 's' })],
    ['amqpDeadLetters', () => amqpDeadLetters({ url: bad('amqp'), queue: 's' })],
    ['amqpSource, another scheme', () => amqpSource({ url: bad('http'), queue: 's' })],
    ['postgresSource', () => postgresSource({ connectionString: bad('postgres'), table: 'jobs' })],
    [
      'postgresDeadLetters',
      () => postgresDeadLetters({ connectionString: bad('postgresql'), table: 'jobs' }),
    ],
  ])('%s', async (_, open) => {
    const { error, shown } = await failure(open);
    expect(error).toMatchObject({ code: 'ERR_INVALID_OPTION' });
    expect(error.message).toMatch(/Invalid option "(url|servers|connectionString)"/);
    expect(error.message).toContain('***@127.0.0.1:99999');
    expect(shown).not.toContain(SECRET);
  });
});

describe('a password holding "/", "?", "#" or "@" is masked whole', () => {
  // An unencoded "/" ends the URL's authority for the parser: `u:12/ab@host` parses as host
  // `u`, port 12 and a path, and a mask based on the parsed password would print its tail.
  it.each([
    ['amqp', (p: string) => amqpSource({ url: `amqp://guest:${p}@127.0.0.1:99999`, queue: 's' })],
    [
      'redis',
      (p: string) =>
        redisSource({ url: `redis://u:${p}@127.0.0.1:99999`, stream: 's', group: 'g' }),
    ],
    [
      'nats',
      (p: string) =>
        natsSource({ servers: `nats://u:${p}@127.0.0.1:99999`, stream: 's', consumer: 'c' }),
    ],
  ])('%s', async (_, open) => {
    for (const password of ['12/s3cret', 'a?s3cret', 'a#s3cret', 'a@s3cret', '12/s3cret@x']) {
      // Some of these parse (as another host): the failure then names that host, not the URL.
      const { shown } = await failure(() => open(password));
      expect(shown).not.toContain('s3cret');
    }
  });
});

describe("PostgreSQL: a password in the connection string's query is masked too, the user shown", () => {
  // pg reads `?password=` (and `sslpassword=`) from the query: the message names the server
  // without it, whether the connection times out, is refused TLS, or the string is refused.
  const tcp = fakeTcp();
  let port = 0;
  beforeAll(async () => {
    port = await tcp.listen();
  });
  afterAll(() => tcp.close());

  it.each([
    [
      'a connect timeout',
      () => `postgres://u@127.0.0.1:${port}/db?password=${SECRET}`,
      'ERR_CONNECT_TIMEOUT',
      () => `postgres://u@127.0.0.1:${port}/db?password=***`,
    ],
    [
      'a server without TLS asked for it',
      () => `postgres://postgres@127.0.0.1:5432/test?sslmode=require&password=${SECRET}`,
      'ERR_CONNECT_CONFIG',
      () => 'postgres://postgres@127.0.0.1:5432/test?sslmode=require&password=***',
    ],
    [
      'an unparsable string',
      () => `postgres://u:%C3%28@127.0.0.1/db?sslpassword=${SECRET}`,
      'ERR_INVALID_OPTION',
      () => 'postgres://u:***@127.0.0.1/db?sslpassword=***',
    ],
  ])('%s', async (_, url, code, masked) => {
    const { error, shown } = await failure(() =>
      postgresSource({ connectionString: url(), table: 'jobs', connectTimeout: 300 }),
    );
    expect(error).toMatchObject({ code });
    expect(shown).not.toContain(SECRET);
    expect(error.message).toContain(masked());
  });
});

describe('PostgreSQL: a connectionString pg cannot parse is a bad option at construction', () => {
  // A malformed percent-escape: pg's parser throws a URIError (decoding the password).
  it.each([
    ['a malformed escape in the password', `postgres://u:%C3%28${SECRET}@127.0.0.1/db`],
    ['not a string', 5432],
  ])('%s', async (_, connectionString) => {
    for (const open of [
      () => postgresSource({ connectionString: connectionString as string, table: 'jobs' }),
      () => postgresDeadLetters({ connectionString: connectionString as string, table: 'jobs' }),
    ]) {
      const { error, shown } = await failure(open);
      expect(error).toMatchObject({ code: 'ERR_INVALID_OPTION', name: 'TypeError' });
      expect(error.message).toMatch(/^Invalid option "connectionString"/);
      expect(shown).not.toContain(SECRET);
    }
  });

  it('a string pg parses (a socket directory, an empty host with ?host=) is not refused', async () => {
    // Nothing listens at these: the failure is the connection's, not the option's.
    for (const connectionString of [
      '/nonexistent-sluice-socket-dir db',
      'postgres://u:p@/db?host=/nonexistent-sluice-socket-dir',
    ]) {
      const { error } = await failure(() =>
        postgresSource({ connectionString, table: 'jobs', connectTimeout: 2000 }),
      );
      expect(error).not.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    }
  });
});

describe('a password cut short by an unencoded "/", "?" or "#" is refused, telling to percent-encode', () => {
  // `redis://u:12/s3cret@host` parses as host `u`, port 12: the connection would fail naming
  // `u`. The "@" after the authority gives it away.
  const opens = [
    ['redisSource', (u: string) => redisSource({ url: `redis://${u}`, stream: 's', group: 'g' })],
    ['redisDeadLetters', (u: string) => redisDeadLetters({ url: `redis://${u}`, stream: 's' })],
    ['amqpSource', (u: string) => amqpSource({ url: `amqp://${u}`, queue: 's' })],
    ['amqpDeadLetters', (u: string) => amqpDeadLetters({ url: `amqp://${u}`, queue: 's' })],
    [
      'natsSource',
      (u: string) => natsSource({ servers: `nats://${u}`, stream: 's', consumer: 'c' }),
    ],
    ['natsDeadLetters, no scheme', (u: string) => natsDeadLetters({ servers: [u], stream: 's' })],
  ] as const;
  it.each(opens)('%s', async (name, open) => {
    // RabbitMQ: `amqp://u:12/s3cret@…` is a valid URL, a port and a vhost with "@" (see
    // url-cut-password.test.ts), so it is taken; the other three are refused everywhere.
    const passwords = name.startsWith('amqp')
      ? ['12?s3cret', '12#s3cret', '/s3cret']
      : ['12/s3cret', '12?s3cret', '12#s3cret', '/s3cret'];
    for (const password of passwords) {
      const { error, shown } = await failure(() => open(`u:${password}@127.0.0.1:1`));
      expect(error).toMatchObject({ code: 'ERR_INVALID_OPTION', name: 'TypeError' });
      expect(error.message).toMatch(/^Invalid option "(url|servers)"/);
      expect(error.message).toContain('percent-encoded');
      expect(error.message).toContain('u:***@127.0.0.1:1');
      expect(shown).not.toContain('s3cret');
    }
  });

  it('the same password percent-encoded, and a RabbitMQ vhost with %40, are not refused', async () => {
    // Nothing listens on port 1: the failure is the connection's, not the option's.
    for (const open of [
      () => redisSource({ url: 'redis://u:12%2Fs3cret@127.0.0.1:1', stream: 's', group: 'g' }),
      () => amqpSource({ url: 'amqp://u:12%2Fs3cret@127.0.0.1:1/team%40prod', queue: 's' }),
      () => natsSource({ servers: 'u:12%2Fs3cret@127.0.0.1:1', stream: 's', consumer: 'c' }),
    ]) {
      const { error } = await failure(open);
      expect(error).not.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    }
  });
});
