/**
 * Dead letters over the real broker on loopback: list, replay and purge (the shared cases in
 * dead-letter-cases.ts, SIGKILL mid-replay included), and the headers a replayed copy keeps.
 */
import { afterAll, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { postgresDeadLetters } from '../../src/brokers/postgres/index.js';
import { until } from '../fixtures/brokers/broker-under-test.js';
import { deadLetterCases } from '../fixtures/brokers/dead-letter-cases.js';
import { PG_URL, postgresUnderTest } from '../fixtures/brokers/postgres-helpers.js';

const broker = postgresUnderTest();
afterAll(() => broker.cleanup());

deadLetterCases(broker, (queue) => postgresDeadLetters({ connectionString: PG_URL, table: queue }));

it('a replayed job comes back with the headers it was enqueued with', async () => {
  const table = broker.unique('dlhdr');
  const failing = consume(
    await broker.source(table),
    async () => {
      throw new Error('boom');
    },
    { concurrency: 1, maxDeliveries: 1 },
  );
  await broker.enqueue(table, { n: 1 }, { headers: { traceparent: 'tp-1', tenant: 'acme' } });
  await until(async () => (await broker.deadLetters(table)).length === 1, 'the dead letter');
  await failing.close();

  const dead = await postgresDeadLetters({ connectionString: PG_URL, table });
  expect(await dead.replay('all')).toBe(1);
  await dead.close();

  const got: (Readonly<Record<string, string>> | undefined)[] = [];
  const again = consume(
    await broker.source(table),
    (_payload, { message }) => {
      got.push(message.headers);
    },
    { concurrency: 1 },
  );
  await until(() => got.length === 1, 'the replayed job');
  await again.close();
  expect(got).toEqual([{ traceparent: 'tp-1', tenant: 'acme' }]);
});
