/**
 * NATS failures a user meets, each a coded error naming what to check: a first connection to
 * something that is not a NATS server, a publish no stream captures (no responders) or on a
 * closed connection — against the real server on loopback, local TCP servers that misbehave,
 * and a private nats-server without JetStream (its own port and folder, removed at the end).
 */
import type { Socket } from 'node:net';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsDeadLetters } from '../../src/brokers/nats/dead-letters.js';
import { enqueue, natsSource } from '../../src/brokers/nats/index.js';
import {
  ConnectConfigError,
  LeaseLostError,
  NotConnectedError,
  UnroutableError,
} from '../../src/errors.js';
import { fakeTcp } from '../fixtures/brokers/fake-tcp.js';
import { type NatsAdmin, natsAdmin, uniqueStream } from '../fixtures/brokers/nats-helpers.js';
import {
  freePort,
  instanceDir,
  PrivateServer,
  serverBinary,
} from '../fixtures/brokers/private-server.js';

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as Error & { cause?: unknown },
  );

let admin: NatsAdmin;
beforeAll(async () => {
  admin = await natsAdmin();
});
afterAll(async () => {
  await admin.nc.close().catch(() => {});
});

/**
 * A private nats-server (on a free port, started before the suite's tests and removed after),
 * with `args` beside its address: the shared server's configuration is never touched.
 */
function privateNats(dir: string, args: string[]): () => PrivateServer {
  let server: PrivateServer | undefined;
  beforeAll(async () => {
    const port = await freePort();
    server = new PrivateServer({
      name: 'nats',
      port,
      dir: instanceDir(dir),
      command: serverBinary('nats-server'),
      args: ['-a', '127.0.0.1', '-p', String(port), ...args],
    });
    await server.start();
  });
  afterAll(async () => {
    await server?.remove();
  });
  return () => server as PrivateServer;
}

describe('NATS enqueue: a publish that cannot be stored fails with a coded error', () => {
  it('no stream captures the subject (no responders): UnroutableError naming the subject', async () => {
    const subject = `${uniqueStream('NOSTREAM')}.work`;
    const error = await rejection(enqueue({ connection: admin.nc, subject, timeout: 2000 }, 'x'));
    expect(error).toBeInstanceOf(UnroutableError);
    expect(error).toMatchObject({ code: 'ERR_UNROUTABLE' });
    expect(error?.message).toContain(`subject "${subject}"`);
    expect(error?.message).toContain('no JetStream stream captures it');
    expect(error?.cause).toBeInstanceOf(Error);
  });

  it('a closed connection: NotConnectedError, the client error as cause', async () => {
    const nc = await connect({ servers: '127.0.0.1:4222' });
    await nc.close();
    const error = await rejection(enqueue({ connection: nc, subject: 'sluice.closed.work' }, 'x'));
    expect(error).toBeInstanceOf(NotConnectedError);
    expect(error).toMatchObject({ code: 'ERR_NOT_CONNECTED' });
    expect(error?.message).toContain('"sluice.closed.work"');
    expect(error?.cause).toMatchObject({ name: 'ClosedConnectionError' });
  });
});

describe('NATS first connection: a server that is not NATS fails with NotConnectedError', () => {
  const tcp = fakeTcp();
  afterAll(() => tcp.close());

  it.each([
    // Not a NATS server (the wrong port): retrying cannot help.
    [
      'its first line is not INFO: ERR_CONNECT_CONFIG, not retryable',
      (s: Socket) => s.write('HELLO\r\n'),
      'is not a NATS server',
      'ERR_CONNECT_CONFIG',
    ],
    // A proxy before a server that is down closes at once too: it may work later.
    [
      'it closes the connection at once: ERR_NOT_CONNECTED, retryable',
      (s: Socket) => s.end(),
      'closed the connection',
      'ERR_NOT_CONNECTED',
    ],
  ])('%s', async (_, greet, says, code) => {
    const port = await tcp.listen(greet);
    for (const open of [
      () => natsSource({ servers: `127.0.0.1:${port}`, stream: 's', consumer: 'c' }),
      () => natsDeadLetters({ servers: [`127.0.0.1:${port}`], stream: 's' }),
    ]) {
      const error = await rejection(open());
      expect(error).toBeInstanceOf(NotConnectedError);
      expect(error).toMatchObject({ code, retryable: code === 'ERR_NOT_CONNECTED' });
      expect(error instanceof ConnectConfigError).toBe(code === 'ERR_CONNECT_CONFIG');
      expect(error?.message).toContain(`127.0.0.1:${port} ${says}`);
      expect(error?.message).toContain('servers');
    }
  });
});

describe('NATS without JetStream (a private nats-server started without -js)', () => {
  const server = privateNats('nats-nojs', []);

  it('natsSource and natsDeadLetters fail with ConnectConfigError (not retryable) saying to enable JetStream', async () => {
    const servers = `127.0.0.1:${server().port}`;
    for (const open of [
      () => natsSource({ servers, stream: 'JOBS', consumer: 'c' }),
      () => natsDeadLetters({ servers: [servers], stream: 'JOBS' }),
    ]) {
      const error = await rejection(open());
      expect(error).toBeInstanceOf(ConnectConfigError);
      expect(error).toBeInstanceOf(NotConnectedError);
      expect(error).toMatchObject({ code: 'ERR_CONNECT_CONFIG', retryable: false });
      expect(error?.message).toContain('JetStream is not enabled on the server at 127.0.0.1:');
      expect(error?.message).toContain('-js');
      expect(error?.cause).toMatchObject({ name: 'JetStreamNotEnabled' });
    }
  });

  it('enqueue fails with UnroutableError saying JetStream may not be enabled', async () => {
    const nc = await connect({ servers: `127.0.0.1:${server().port}` });
    try {
      const error = await rejection(
        enqueue({ connection: nc, subject: 'JOBS.work', timeout: 2000 }, 'x'),
      );
      expect(error).toBeInstanceOf(UnroutableError);
      expect(error?.message).toContain('JetStream is not enabled');
    } finally {
      await nc.close();
    }
  });
});

describe('NATS: a login the server refuses (a private nats-server with a user and password)', () => {
  const server = privateNats('nats-auth', ['--user', 'sluice', '--pass', 'right']);

  it('ConnectConfigError (not retryable) naming the login to check, the password masked', async () => {
    const servers = `nats://sluice:wrong-s3cret@127.0.0.1:${server().port}`;
    for (const open of [
      () => natsSource({ servers, stream: 's', consumer: 'c' }),
      () => natsDeadLetters({ servers: [servers], stream: 's' }),
    ]) {
      const error = await rejection(open());
      expect(error).toBeInstanceOf(ConnectConfigError);
      expect(error).toMatchObject({ code: 'ERR_CONNECT_CONFIG', retryable: false });
      expect(error?.message).toContain(
        `nats://sluice:***@127.0.0.1:${server().port} refused the login`,
      );
      expect(error?.message).toContain('check the user and password, or token, in servers');
      expect(error?.message).not.toContain('s3cret');
      expect(error?.cause).toMatchObject({ name: 'AuthorizationError' });
    }
  });
});

describe('NATS settle: the consumer deleted under a held message', () => {
  it('a release answered "no responders" fails with LeaseLostError naming the consumer', async () => {
    const stream = uniqueStream('GONE');
    const source = await natsSource({ stream, consumer: 'workers' });
    try {
      await source.publish('x');
      let message: Awaited<ReturnType<typeof source.fetch>>[number] | undefined;
      while (!message) [message] = await source.fetch(1, new AbortController().signal);
      await admin.jsm.consumers.delete(stream, 'workers');
      const error = await rejection(source.release(message));
      expect(error).toBeInstanceOf(LeaseLostError);
      expect(error).toMatchObject({ code: 'ERR_LEASE_LOST', messageId: message.id });
      expect(error?.message).toContain('its consumer no longer exists');
      expect(error?.cause).toMatchObject({ name: 'NoResponders' });
    } finally {
      await source.close();
      await admin.cleanup(stream, `${stream}_DEAD`);
    }
  });
});
