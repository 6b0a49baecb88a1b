import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './fixtures/brokers/private-server.js';
import { BROKERS, brokerProblems } from './global-setup.js';

describe('the broker preflight of npm test', () => {
  let listening: Server;
  let openPort: number;
  beforeAll(async () => {
    listening = createServer((s) => s.destroy());
    await new Promise<void>((r) => listening.listen(0, '127.0.0.1', r));
    openPort = (listening.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => listening.close(() => r())));

  it('a missing broker gives one message naming it and the command that starts it', async () => {
    const closed = await freePort();
    const message = await brokerProblems([
      { name: 'Redis', port: closed, start: 'redis-server --daemonize yes' },
      { name: 'NATS', port: openPort, start: 'nats-server -js' },
    ]);
    expect(message).toContain(
      `Redis (127.0.0.1:${closed}): start it with redis-server --daemonize yes`,
    );
    expect(message).not.toContain('NATS');
    expect(message).toContain('README.md');
  });

  it('says nothing when every broker answers', async () => {
    expect(await brokerProblems([{ name: 'NATS', port: openPort, start: 'x' }])).toBeUndefined();
  });

  it('names all four default brokers with a start command each', () => {
    expect(BROKERS.map((b) => b.port)).toEqual([5432, 6379, 5672, 4222]);
    for (const b of BROKERS) expect(b.start).not.toBe('');
  });
});
