/**
 * Type tests, checked by `npm run typecheck` (`tsc -p test/types/tsconfig.json`), never run:
 * every broker entry point accepts the client a user gets from the client library's documented
 * constructor, as it comes, without a cast; and `consume()`'s signatures (one source or
 * several, one message per call or batches).
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

export async function consumeSignatures(): Promise<void> {
  const client = createClient();
  const shards = await Promise.all(
    [0, 1, 2, 3].map((i) => redis.redisSource({ client, stream: `jobs:${i}`, group: 'workers' })),
  );
  const one = shards[0]!;
  type Job = { path: string };

  // One message per call: the payload, and the context with the raw message (its type given
  // as the second type argument, else inferred from the source when T is inferred too).
  redis.consume<Job, redis.RedisMessage>(
    one,
    (job, { message, signal }) => {
      expectTypeOf(job).toEqualTypeOf<Job>();
      expectTypeOf(message).toEqualTypeOf<redis.RedisMessage>();
      expectTypeOf(signal).toEqualTypeOf<AbortSignal>();
    },
    { concurrency: 8 },
  );

  // Several sources sharing one concurrency: an array (readonly too) of sources.
  redis.consume<Job>(shards, async () => {}, { concurrency: 16 });
  redis.consume(shards, (_payload, { message }) => expectTypeOf(message.stream).toBeString(), {
    concurrency: 16,
  });
  redis.consume<Job>(shards as readonly (typeof one)[], async () => {}, { concurrency: 16 });

  // Batches: the handler gets items (payload + message + signal) and returns nothing (all
  // succeeded) or a Map of item → true | Error.
  redis.consume<Job, redis.RedisMessage>(
    shards,
    async (items, { signal }) => {
      expectTypeOf(items).toEqualTypeOf<readonly redis.BatchItem<Job, redis.RedisMessage>[]>();
      expectTypeOf(items[0]!.payload).toEqualTypeOf<Job>();
      expectTypeOf(items[0]!.message).toEqualTypeOf<redis.RedisMessage>();
      expectTypeOf(signal).toEqualTypeOf<AbortSignal>();
      return new Map(items.map((item) => [item, item.payload.path ? true : new Error('no path')]));
    },
    { concurrency: 200, batch: { size: 100, maxWait: 50 } },
  );
  redis.consume<Job>(one, () => {}, { concurrency: 2, batch: { size: 2 } });
  const outcomes: redis.BatchOutcomes<Job> = new Map<redis.BatchItem<Job>, true | Error>();
  expectTypeOf(outcomes.get).returns.toEqualTypeOf<true | Error | undefined>();
  // The same names on every subpath.
  expectTypeOf<postgres.BatchHandler<Job>>().toEqualTypeOf<nats.BatchHandler<Job>>();
  expectTypeOf<amqp.BatchOptions>().toEqualTypeOf<redis.BatchOptions>();

  // @ts-expect-error: a batch handler needs the batch option
  redis.consume<Job>(one, (items: readonly redis.BatchItem<Job>[]) => items.length, {
    concurrency: 2,
  });
  // @ts-expect-error: with the batch option the handler gets items, not one payload
  redis.consume<Job>(one, (job: Job) => job.path, { concurrency: 2, batch: { size: 2 } });
  // @ts-expect-error: outcomes are true or an Error, not strings
  redis.consume<Job>(one, (items) => new Map(items.map((item) => [item, 'ok'])), {
    concurrency: 2,
    batch: { size: 2 },
  });
  // @ts-expect-error: batch.size is required
  redis.consume<Job>(one, () => {}, { concurrency: 2, batch: { maxWait: 10 } });
}
