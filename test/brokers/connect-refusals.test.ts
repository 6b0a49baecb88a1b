/**
 * A first connection the broker refuses in its handshake for its configuration fails with
 * `ConnectConfigError` (`ERR_CONNECT_CONFIG`, `retryable: false`, still an `instanceof
 * NotConnectedError`; the client's error as `cause`) naming what to check — not the client's
 * uncoded error, and not the retryable `ERR_NOT_CONNECTED` of an outage: RabbitMQ refusing the
 * login or the virtual host, Redis refusing the login, PostgreSQL refusing the database, or
 * without SSL asked for SSL. Against the shared brokers on loopback, with wrong credentials or
 * names only.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { amqpDeadLetters } from '../../src/brokers/amqp/dead-letters.js';
import { amqpSource } from '../../src/brokers/amqp/index.js';
import { postgresDeadLetters } from '../../src/brokers/postgres/dead-letters.js';
import { postgresSource } from '../../src/brokers/postgres/index.js';
import { redisDeadLetters } from '../../src/brokers/redis/dead-letters.js';
import { redisSource } from '../../src/brokers/redis/index.js';
import { ConnectConfigError, NotConnectedError } from '../../src/errors.js';

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as Error & { cause?: unknown },
  );

const SECRET = 'wrong-s3cret';

describe('RabbitMQ: a handshake the broker refuses', () => {
  const opens = (url: string) => [
    () => amqpSource({ url, queue: 'sluice.refused' }),
    () => amqpDeadLetters({ url, queue: 'sluice.refused' }),
  ];

  it('a wrong password: NotConnectedError naming the login to check, without the password', async () => {
    for (const open of opens(`amqp://guest:${SECRET}@127.0.0.1:5672`)) {
      const error = await rejection(open());
      expect(error).toBeInstanceOf(NotConnectedError);
      expect(error).toBeInstanceOf(ConnectConfigError);
      expect(error).toMatchObject({ code: 'ERR_CONNECT_CONFIG', retryable: false });
      expect(error?.message).toContain('refused the login');
      expect(error?.message).toContain('403 (ACCESS-REFUSED)');
      expect(error?.message).toContain('check the user and password in url');
      expect(inspect(error, { depth: 10 })).not.toContain(SECRET);
      expect(error?.cause).toBeInstanceOf(Error);
    }
  });

  it('a virtual host that does not exist: NotConnectedError naming the vhost', async () => {
    for (const open of opens('amqp://guest:guest@127.0.0.1:5672/sluice-no-such-vhost')) {
      const error = await rejection(open());
      expect(error).toBeInstanceOf(ConnectConfigError);
      expect(error).toMatchObject({ code: 'ERR_CONNECT_CONFIG', retryable: false });
      expect(error?.message).toContain('refused to open virtual host "sluice-no-such-vhost"');
      expect(error?.message).toContain('check the path of url');
    }
  });
});

/**
 * What postgresSource and postgresDeadLetters reject with for `connectionString`, each checked
 * as a refusal retrying cannot fix that does not show the password.
 */
async function postgresConfigRefusals(connectionString: string) {
  const errors: (Error | undefined)[] = [];
  for (const open of [
    () => postgresSource({ connectionString, table: 'sluice_refused' }),
    () => postgresDeadLetters({ connectionString, table: 'sluice_refused' }),
  ]) {
    const error = await rejection(open());
    expect(error).toBeInstanceOf(ConnectConfigError);
    expect(error).toMatchObject({ code: 'ERR_CONNECT_CONFIG', retryable: false });
    expect(inspect(error, { depth: 10 })).not.toContain(SECRET);
    errors.push(error);
  }
  return errors;
}

describe('PostgreSQL: SSL asked of a server without it', () => {
  it('ConnectConfigError naming sslmode, the server without its password', async () => {
    const connectionString = `postgres://postgres:${SECRET}@127.0.0.1:5432/postgres?ssl=true`;
    for (const error of await postgresConfigRefusals(connectionString)) {
      expect(error?.message).toContain('does not support SSL connections');
      expect(error?.message).toContain('sslmode');
    }
  });
});

describe('PostgreSQL: a database that does not exist', () => {
  it("ConnectConfigError naming the database to check, pg's error (SQLSTATE 3D000) as cause", async () => {
    const connectionString = `postgres://postgres:${SECRET}@127.0.0.1:5432/sluice_no_such_db`;
    for (const error of await postgresConfigRefusals(connectionString)) {
      expect(error?.message).toContain('SQLSTATE 3D000');
      expect(error?.message).toContain('check the database name in connectionString');
      expect(error?.cause).toMatchObject({ code: '3D000' });
    }
  });
});

describe('Redis: a login the server refuses', () => {
  it.each([
    // The shared server has no password: AUTH with one is refused ("ERR AUTH … called without
    // any password configured"); with a user that does not exist, WRONGPASS.
    ['a password where none is set', `redis://:${SECRET}@127.0.0.1:6379`, 'ERR AUTH'],
    ['a user that does not exist', `redis://nobody:${SECRET}@127.0.0.1:6379`, 'WRONGPASS'],
  ])('%s: NotConnectedError naming the login to check', async (_, url, reply) => {
    for (const open of [
      () => redisSource({ url, stream: 'sluice.refused', group: 'g' }),
      () => redisDeadLetters({ url, stream: 'sluice.refused' }),
    ]) {
      const error = await rejection(open());
      expect(error).toBeInstanceOf(NotConnectedError);
      expect(error).toBeInstanceOf(ConnectConfigError);
      expect(error).toMatchObject({ code: 'ERR_CONNECT_CONFIG', retryable: false });
      expect(error?.message).toContain(`refused the login (${reply}`);
      expect(error?.message).toContain('check the user and password in url');
      expect(inspect(error, { depth: 10 })).not.toContain(SECRET);
    }
  });
});
