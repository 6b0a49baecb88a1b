/**
 * Type tests, checked by `npm run typecheck` (`tsc -p test/types/tsconfig.json`), never run:
 * every broker entry point accepts the client a user gets from the client library's documented
 * constructor, as it comes, without a cast.
 */

import { connect as natsConnect } from '@nats-io/transport-node';
import { createClient as createBareClient } from '@redis/client';
import { connect as amqpConnect } from 'amqplib';
import pg from 'pg';
import { createClient } from 'redis';
import { expectTypeOf } from 'vitest';
import * as amqp from '../../src/brokers/amqp.js';
import * as nats from '../../src/brokers/nats.js';
import * as postgres from '../../src/brokers/postgres.js';
import * as redis from '../../src/brokers/redis.js';

export async function redisClients(): Promise<void> {
  // node-redis v5's defaults: RESP is `2 | 3` and the default modules are included.
  const client = createClient();
  await redis.enqueue(client, 'jobs', { path: 'a.pdf' });
  await redis.redisSource({ client, stream: 'jobs', group: 'workers' });

  const withUrl = createClient({ url: 'redis://127.0.0.1:6379' });
  await redis.enqueue(withUrl, 'jobs', 'x');
  await redis.redisSource({ client: withUrl, stream: 'jobs', group: 'workers' });

  const resp3 = createClient({ RESP: 3 });
  await redis.enqueue(resp3, 'jobs', 'x');
  await redis.redisSource({ client: resp3, stream: 'jobs', group: 'workers' });

  const resp2 = createClient({ RESP: 2 });
  await redis.redisSource({ client: resp2, stream: 'jobs', group: 'workers' });

  // A client with a type mapping, and the bare @redis/client (no default modules).
  const mapped = createClient().withTypeMapping({});
  await redis.enqueue(mapped, 'jobs', 'x');
  const bare = createBareClient();
  await redis.enqueue(bare, 'jobs', 'x');
  await redis.redisSource({ client: bare, stream: 'jobs', group: 'workers' });

  expectTypeOf(redis.enqueue).returns.resolves.toEqualTypeOf<string>();
  // @ts-expect-error: not a Redis client
  await redis.enqueue({}, 'jobs', 'x');
}

export async function natsConnections(): Promise<void> {
  const nc = await natsConnect({ servers: '127.0.0.1:4222' });
  await nats.enqueue(nc, 'JOBS.work', { path: 'a.pdf' });
  await nats.natsSource({ connection: nc, stream: 'JOBS', consumer: 'workers' });
  // @ts-expect-error: not a NATS connection
  await nats.enqueue({}, 'JOBS.work', 'x');
}

export async function amqpChannels(): Promise<void> {
  const conn = await amqpConnect('amqp://127.0.0.1');
  await amqp.enqueue(await conn.createConfirmChannel(), 'jobs', { path: 'a.pdf' });
  // @ts-expect-error: a plain channel has no publisher confirms
  await amqp.enqueue(await conn.createChannel(), 'jobs', 'x');
  await amqp.amqpSource({ url: 'amqp://127.0.0.1', queue: 'jobs' });
}

export async function postgresClients(): Promise<void> {
  const pool = new pg.Pool({ connectionString: 'postgres://127.0.0.1/app' });
  const client = new pg.Client({ connectionString: 'postgres://127.0.0.1/app' });
  const checkedOut = await pool.connect();
  for (const db of [pool, client, checkedOut]) {
    await postgres.migrate(db, 'jobs');
    await postgres.enqueue(db, 'jobs', [{ path: 'a.pdf' }]);
  }
  await postgres.postgresSource({ pool, table: 'jobs' });
  const { Pool } = pg;
  await postgres.postgresSource({ pool: new Pool(), table: 'jobs' });
  expectTypeOf(postgres.enqueue).returns.resolves.toEqualTypeOf<string[]>();
}

export async function deadLetterOperations(): Promise<void> {
  // Every broker opens the same DeadLetters shape; each subpath exports the shared types.
  const openers = [
    redis.redisDeadLetters({ stream: 'jobs' }),
    redis.redisDeadLetters({ client: createClient({ RESP: 3 }), stream: 'jobs', field: 'payload' }),
    nats.natsDeadLetters({ stream: 'JOBS', deadLetterStream: 'JOBS_DEAD' }),
    amqp.amqpDeadLetters({ queue: 'jobs', maxScan: 500 }),
    postgres.postgresDeadLetters({ pool: new pg.Pool(), table: 'jobs' }),
  ];
  expectTypeOf(openers).toEqualTypeOf<Promise<redis.DeadLetters>[]>();
  const dead: nats.DeadLetters = await openers[0]!;

  const page = await dead.list({ limit: 20 });
  expectTypeOf(page).toEqualTypeOf<amqp.DeadLetterPage>();
  expectTypeOf(page.next).toEqualTypeOf<string | undefined>();
  await dead.list({ limit: 20, ...(page.next ? { cursor: page.next } : {}) });
  await dead.list();
  const [letter] = page.letters;
  if (letter) {
    expectTypeOf(letter).toEqualTypeOf<postgres.DeadLetter>();
    expectTypeOf(letter.id).toEqualTypeOf<string>();
    expectTypeOf(letter.body).toEqualTypeOf<Uint8Array>();
    expectTypeOf(letter.error).toEqualTypeOf<string>();
    expectTypeOf(letter.code).toEqualTypeOf<string | undefined>();
    expectTypeOf(letter.attempts).toEqualTypeOf<number>();
    expectTypeOf(letter.firstFailedAt).toEqualTypeOf<Date | undefined>();
    expectTypeOf(letter.lastFailedAt).toEqualTypeOf<Date>();
  }

  expectTypeOf(dead.replay).returns.resolves.toEqualTypeOf<number>();
  await dead.replay('all');
  await dead.replay(['1-0', '2-0']);
  await dead.replay({ code: 'ETIMEDOUT', error: /timed out/, failedAfter: new Date() });
  await dead.replay({ where: (l) => l.attempts > 3 });
  const filter: redis.DeadLetterFilter = { failedBefore: new Date() };
  const which: redis.DeadLetterSelection = filter;
  expectTypeOf(dead.purge).returns.resolves.toEqualTypeOf<number>();
  await dead.purge(which);
  const options: redis.DeadLetterListOptions = { limit: 10 };
  await dead.list(options);
  await dead.close();

  // @ts-expect-error: 'some' is not a selection
  await dead.replay('some');
  // @ts-expect-error: ids are strings
  await dead.purge([1, 2]);
  // @ts-expect-error: not a filter key
  await dead.replay({ colour: 'red' });
  // @ts-expect-error: the stream is required
  await redis.redisDeadLetters({});
  // @ts-expect-error: the table is required
  await postgres.postgresDeadLetters({ connectionString: 'postgres://x' });
}
