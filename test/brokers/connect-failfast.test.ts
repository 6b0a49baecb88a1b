import { describe, expect, it } from 'vitest';
import { amqpSource } from '../../src/brokers/amqp.js';
import { redisSource } from '../../src/brokers/redis.js';

// Nothing listens on these ports: the first connection must fail at once, not retry forever
// (was: `await redisSource(...)` / `await amqpSource(...)` never settled for a wrong URL).
describe('broker sources: a wrong URL fails fast', () => {
  it('redisSource rejects with the connection error', async () => {
    await expect(
      redisSource({ url: 'redis://127.0.0.1:1', stream: 'failfast', group: 'g' }),
    ).rejects.toThrow(/ECONNREFUSED/);
  });

  it('amqpSource rejects with the connection error', async () => {
    await expect(
      amqpSource({ url: 'amqp://guest:guest@127.0.0.1:1', queue: 'failfast' }),
    ).rejects.toThrow(/ECONNREFUSED/);
  });
});
