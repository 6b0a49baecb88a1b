/**
 * Dead letters over the real broker on loopback: list, replay and purge (the shared cases in
 * dead-letter-cases.ts, SIGKILL mid-replay included), and what a replayed copy keeps of a job
 * enqueued with a key and headers.
 */
import { createClient } from 'redis';
import { afterAll, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { redisDeadLetters } from '../../src/brokers/redis/index.js';
import { until } from '../fixtures/brokers/broker-under-test.js';
import { deadLetterCases } from '../fixtures/brokers/dead-letter-cases.js';
import { REDIS_URL, redisUnderTest } from '../fixtures/brokers/redis-helpers.js';

const broker = await redisUnderTest();
afterAll(() => broker.cleanup());

deadLetterCases(broker, (queue) => redisDeadLetters({ stream: queue }));

it('a replayed keyed job keeps its headers but not its key, which stays free for a new enqueue', async () => {
  const stream = broker.unique('dl-key');
  await broker.fill(stream, []);
  await broker.enqueue(stream, { n: 1 }, { key: 'k1', headers: { trace: 't-1' } });
  const consumer = consume(
    await broker.source(stream),
    async () => {
      throw new Error('boom');
    },
    { concurrency: 1, maxDeliveries: 1 },
  );
  await until(async () => (await broker.deadLetters(stream)).length === 1, 'the dead letter');
  await consumer.close();

  const dead = await redisDeadLetters({ stream });
  expect(await dead.replay('all')).toBe(1);
  await dead.close();

  const client = await createClient({ url: REDIS_URL }).connect();
  try {
    const entries = (await client.sendCommand(['XRANGE', stream, '-', '+'])) as [
      string,
      string[],
    ][];
    const fields = entries.at(-1)![1];
    expect(fields).toContain('trace');
    expect(fields[fields.indexOf('trace') + 1]).toBe('t-1');
    expect(fields).not.toContain('sluice-key');
  } finally {
    client.destroy();
  }
  expect((await broker.enqueue(stream, { n: 2 }, { key: 'k1' })).deduplicated).toBe(false);
});
