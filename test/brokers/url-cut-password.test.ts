/**
 * The `url` / `servers` check that refuses a password cut short by an unencoded "/", "?" or "#"
 * (told by a bare "@" past the authority), over a table of URLs: with and without user info,
 * "@" in the path, query or fragment, and percent-encoded as %40. A RabbitMQ virtual host may
 * hold an "@"; a Redis path (a database number), a NATS path, a query and a fragment never do.
 */
import { describe, expect, it } from 'vitest';
import { amqpSource } from '../../src/brokers/amqp/index.js';
import { refuseCutPassword } from '../../src/brokers/connect-deadline.js';
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
    'amqp://u:12/s3cret@host',
    'amqp://u:/s3cret@host/vhost',
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
    // A port and an "@" in the vhost without user info reads as a password cut at "/" too.
    'amqp://host:5672/s3cret@prod',
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
