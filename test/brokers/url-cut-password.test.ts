/**
 * The `url` / `servers` check that refuses a password cut short by an unencoded "/", "?" or "#"
 * (told by a bare "@" past the authority), over a table of URLs: with and without user info,
 * "@" in the path, query or fragment, and percent-encoded as %40. A RabbitMQ virtual host may
 * hold an "@" (after a port too: a valid URL); a Redis path (a database number), a NATS path, a
 * query and a fragment never do. And what error messages show of each URL (`maskUserinfo`).
 */
import { describe, expect, it } from 'vitest';
import { amqpSource } from '../../src/brokers/amqp/index.js';
import { maskUserinfo, refuseCutPassword } from '../../src/brokers/connect-deadline.js';
import { natsSource } from '../../src/brokers/nats/index.js';
import { redisSource } from '../../src/brokers/redis/index.js';

const check = (url: string) => () => refuseCutPassword('url', url, 'a URL');

describe('refuseCutPassword', () => {
  it.each([
    // RabbitMQ: an "@" in the virtual host, without or with user info (no password to cut).
    'amqp://host/tenant@prod',
    'amqps://host/tenant@prod',
    'amqp://u:p@host/tenant@prod',
    'amqp://u:p@host:5672/tenant@prod',
    'amqp://host/tenant%40prod',
    // A port, then an "@" in the vhost, no user info: a valid URL, taken as the parser reads it
    // (host, port, vhost "tenant@prod"), as amqplib and Go's net/url do. It also reads as a
    // password cut at "/" — `amqp://u:12/s3cret@host` is the same shape: it connects to host u,
    // port 12, and fails saying to percent-encode (below); messages mask it as a password.
    'amqp://host:5672/tenant@prod',
    'amqps://rabbit.internal:5671/tenant@prod',
    'amqp://host:5672/s3cret@prod',
    'amqp://u:12/s3cret@host',
    // Percent-encoded passwords, and an "@" in a password with nothing after the host.
    'amqp://u:12%2Fs3cret@host/vhost',
    'redis://u:a%40b%2Fs3cret@host:6379/0',
    'redis://u:a@s3cret@host:6379',
    'redis://u:p@host:6379/0',
    'redis://host:6379/0?x=1#top',
    'nats://u:p@host:4222',
    'nats://tok@host:4222',
    'host:4222',
    'u:12%2Fs3cret@host:4222',
  ])('takes %s', (url) => {
    expect(check(url)).not.toThrow();
  });

  it.each([
    // Cut by "/": the parser reads the text before the "/" as the host (port 12, or none).
    'redis://u:12/s3cret@host',
    'redis://u:/s3cret@host',
    // An empty port reads only as a cut password.
    'amqp://u:/s3cret@host/vhost',
    'amqp://host:/s3cret@prod',
    'nats://u:12/s3cret@host:4222',
    'u:12/s3cret@host:4222',
    'nats://12/s3cret@host:4222',
    // A password holding "@" and "/": parsed as user u, password a, host b — and a path.
    'redis://u:a@b/s3cret@host',
    'redis://u:a@b/c@host',
    'nats://u:a@b/s3cret@host:4222',
    // Redis and NATS paths never hold an "@", with or without user info.
    'redis://host/s3cret@x',
    'nats://host:4222/s3cret@x',
    // Nor does any query or fragment.
    'redis://u:12?s3cret@host',
    'redis://u:p@host/0?s3cret@x',
    'redis://host/0#s3cret@x',
    'amqp://u:12?s3cret@host',
    'amqp://u:12#s3cret@host',
    'amqp://host/vhost?s3cret@x',
    'amqp://u:p@host/vhost#s3cret@x',
  ])('refuses %s, masked, telling to percent-encode', (url) => {
    let error: (Error & { code?: unknown }) | undefined;
    try {
      check(url)();
    } catch (e) {
      error = e as Error;
    }
    expect(error).toBeInstanceOf(TypeError);
    expect(error).toMatchObject({ code: 'ERR_INVALID_OPTION' });
    expect(error?.message).toMatch(/^Invalid option "url"/);
    expect(error?.message).toContain('percent-encoded');
    expect(error?.message).not.toContain('s3cret');
  });
});

describe('maskUserinfo: what error messages show of each URL', () => {
  it.each([
    // Nothing that could be a password: shown as it is.
    ['amqp://host/tenant@prod', 'amqp://host/tenant@prod'],
    ['amqp://guest@host/tenant@prod', 'amqp://guest@host/tenant@prod'],
    ['redis://host:6379/0', 'redis://host:6379/0'],
    // PostgreSQL: a user without a password is shown; only the secrets are masked.
    ['postgres://alice@host/db', 'postgres://alice@host/db'],
    ['postgresql://alice@host:5432/db', 'postgresql://alice@host:5432/db'],
    ['postgres://alice@host/db?password=s3cret', 'postgres://alice@host/db?password=***'],
    [
      'postgres://alice@host/db?sslmode=require&sslpassword=s3cret',
      'postgres://alice@host/db?sslmode=require&sslpassword=***',
    ],
    ['postgres://alice@host/db?password=a@s3cret', 'postgres://alice@host/db?password=***'],
    ['postgres://host/db?user=alice@corp', 'postgres://host/db?user=alice@corp'],
    [
      'postgres://host/db?user=alice@corp&password=s3cret',
      'postgres://host/db?user=alice@corp&password=***',
    ],
    ['postgres://alice:s3cret@host/db', 'postgres://alice:***@host/db'],
    ['postgres://:s3cret@host/db', 'postgres://:***@host/db'],
    ['postgres://alice:s3/cret@host/db', 'postgres://alice:***@host/db'],
    // A password: masked, the user kept.
    ['amqp://u:s3cret@host:5672/vh', 'amqp://u:***@host:5672/vh'],
    ['amqp://u:s3cret@host:5672/tenant@prod', 'amqp://u:***@prod'],
    ['redis://u:a@s3cret@host:6379', 'redis://u:***@host:6379'],
    ['nats://s3cret@host:4222', 'nats://***@host:4222'],
    ['postgres://u:s3cret@host/db?sslpassword=s3cret', 'postgres://u:***@host/db?sslpassword=***'],
    // A port, then an "@" in the vhost: taken as a vhost, masked as the password it may be
    // (`amqp://u:12/s3cret@host`: user u, password 12/s3cret, meant unencoded).
    ['amqp://host:5672/s3cret@prod', 'amqp://host:***@prod'],
    ['amqp://u:12/s3cret@host', 'amqp://u:***@host'],
    ['amqps://u:12/s3cret@host:5671/vh', 'amqps://u:***@host:5671/vh'],
  ])('%s is shown as %s', (url, shown) => {
    expect(maskUserinfo(url)).toBe(shown);
    expect(maskUserinfo(url)).not.toContain('s3cret');
  });
});

describe('the factories apply it', () => {
  const refused = async (open: () => Promise<unknown>) =>
    open().then(
      () => undefined,
      (e: unknown) => e as Error & { code?: unknown },
    );

  it('a RabbitMQ vhost with "@" and no user info reaches the broker as that vhost', async () => {
    // No such vhost on the shared broker: it refuses to open it, by the name amqplib sent.
    const error = await refused(() =>
      amqpSource({ url: 'amqp://127.0.0.1/tenant@prod', queue: 's' }),
    );
    expect(error).toMatchObject({ code: 'ERR_CONNECT_CONFIG' });
    expect(error?.message).toContain(
      'RabbitMQ at amqp://127.0.0.1/tenant@prod refused to open virtual host "tenant@prod"',
    );
  });

  it('a RabbitMQ vhost with "@" after a port reaches the broker as that vhost, the URL masked', async () => {
    const error = await refused(() =>
      amqpSource({ url: 'amqp://127.0.0.1:5672/tenant@prod', queue: 's' }),
    );
    expect(error).toMatchObject({ code: 'ERR_CONNECT_CONFIG' });
    expect(error?.message).toContain(
      'RabbitMQ at amqp://127.0.0.1:***@prod refused to open virtual host "tenant@prod"',
    );
  });

  it('the same shape meant as a password cut at "/" fails to connect, masked, saying to percent-encode', async () => {
    // Parsed as host 127.0.0.1, port 1 (nothing listens), vhost "s3cret@127.0.0.1:1".
    const error = await refused(() =>
      amqpSource({ url: 'amqp://127.0.0.1:1/s3cret@127.0.0.1:1', queue: 's' }),
    );
    expect(error).toMatchObject({ code: 'ERR_NOT_CONNECTED' });
    expect(error?.message).toContain(
      'RabbitMQ at amqp://127.0.0.1:***@127.0.0.1:1 could not be reached',
    );
    expect(error?.message).toContain('percent-encode its "/" (%2F)');
    expect(error?.message).not.toContain('s3cret');
  });

  it.each([
    [
      'redisSource',
      () => redisSource({ url: 'redis://u:a@b/s3cret@127.0.0.1:1', stream: 's', group: 'g' }),
    ],
    [
      'natsSource',
      () => natsSource({ servers: 'nats://u:a@b/s3cret@127.0.0.1:1', stream: 's', consumer: 'c' }),
    ],
  ])('%s refuses a password holding "@" and "/"', async (_, open) => {
    const error = await refused(open);
    expect(error).toMatchObject({ code: 'ERR_INVALID_OPTION' });
    expect(error?.message).not.toContain('s3cret');
    expect(error?.message).toContain('u:***@127.0.0.1:1');
  });
});
