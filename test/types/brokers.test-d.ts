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
import * as amqp from '../../src/brokers/amqp/index.js';
import * as nats from '../../src/brokers/nats/index.js';
import * as postgres from '../../src/brokers/postgres/index.js';
import * as redis from '../../src/brokers/redis/index.js';

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
