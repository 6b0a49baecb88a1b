/**
 * Type tests, checked by `npm run typecheck` (`tsc -p test/types/tsconfig.json`), never run:
 * every broker entry point accepts the client a user gets from the client library's documented
 * constructor, as it comes, without a cast; the four `enqueue`s share one signature
 * `(target, payload, { delay?, key?, headers? }) => Promise<EnqueueResult>`, and the sources
 * share the common option names; and `consume()`'s signatures (one source or several, one
 * message per call or batches).
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
import {
  adaptive,
  ConnectConfigError,
  ConnectTimeoutError,
  NotConnectedError,
  PublishTimeoutError,
  SettleTimeoutError,
  type SluiceErrorCode,
  UnroutableError,
} from '../../src/index.js';

type Result = { readonly id: string | undefined; readonly deduplicated: boolean };

/**
 * What a node-redis client looks like to TypeScript when it comes from a second copy of the
 * package: node-redis's public members as it declares them, in a class of its own with a
 * private field.
 */
declare class LinkedCopyClient {
  private readonly state: unknown; // as `#private`: the class is nominal
  get isOpen(): boolean;
  get isReady(): boolean;
  sendCommand<T = unknown>(
    args: ReadonlyArray<string | Buffer>,
    options?: { typeMapping?: object; abortSignal?: AbortSignal },
  ): Promise<T>;
  connect(): Promise<LinkedCopyClient>;
  close(): Promise<void>;
  destroy(): void;
  duplicate(overrides?: { RESP?: 2 | 3; name?: string; url?: string }): LinkedCopyClient;
  // biome-ignore lint/suspicious/noExplicitAny: EventEmitter's declaration, as node-redis has it.
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export async function redisClients(): Promise<void> {
  // node-redis v5's defaults: RESP is `2 | 3` and the default modules are included.
  const client = createClient();
  await redis.enqueue({ client, stream: 'jobs' }, { path: 'a.pdf' });
  await redis.redisSource({ client, stream: 'jobs', group: 'workers' });

  const withUrl = createClient({ url: 'redis://127.0.0.1:6379' });
  await redis.enqueue({ client: withUrl, stream: 'jobs' }, 'x', { delay: 2000 });
  await redis.redisSource({ client: withUrl, stream: 'jobs', group: 'workers' });

  const resp3 = createClient({ RESP: 3 });
  await redis.enqueue({ client: resp3, stream: 'jobs', field: 'payload' }, 'x', { key: 'k' });
  await redis.redisSource({ client: resp3, stream: 'jobs', group: 'workers' });

  const resp2 = createClient({ RESP: 2 });
  await redis.redisSource({ client: resp2, stream: 'jobs', group: 'workers' });

  // A client with a type mapping, and the bare @redis/client (no default modules).
  const mapped = createClient().withTypeMapping({});
  await redis.enqueue({ client: mapped, stream: 'jobs' }, 'x');
  const bare = createBareClient();
  await redis.enqueue({ client: bare, stream: 'jobs' }, 'x', { headers: { tenant: 'a' } });
  await redis.redisSource({ client: bare, stream: 'jobs', group: 'workers' });

  // A client from another copy of node-redis (sluice linked with `npm link` or `file:`): the same
  // shape, but its own class, whose private fields TypeScript compares by declaration.
  const linked = new LinkedCopyClient();
  await redis.enqueue({ client: linked, stream: 'jobs' }, 'x');
  await redis.redisSource({ client: linked, stream: 'jobs', group: 'workers' });
  await redis.redisDeadLetters({ client: linked, stream: 'jobs' });
  redis.redisRateLimiter(linked, 'api', { limit: 10, interval: 1000 });
  expectTypeOf(linked).toExtend<redis.AnyRedisClient>();

  expectTypeOf(redis.enqueue).returns.resolves.toEqualTypeOf<redis.EnqueueResult>();
  expectTypeOf<redis.EnqueueResult>().toEqualTypeOf<Result>();
  // @ts-expect-error: not a Redis client
  await redis.enqueue({ client: {}, stream: 'jobs' }, 'x');
  // @ts-expect-error: the 0.1 signature (client, stream, payload) is gone
  await redis.enqueue(client, 'jobs', 'x');
  // @ts-expect-error: headers hold strings
  await redis.enqueue({ client, stream: 'jobs' }, 'x', { headers: { n: 1 } });

  // The common names; the 0.1 ones are type errors too (and refused at run time).
  await redis.redisSource({ stream: 's', group: 'g', fetchWait: 500, lease: 10_000 });
  // @ts-expect-error: renamed to fetchWait
  await redis.redisSource({ stream: 's', group: 'g', block: 500 });
  // @ts-expect-error: renamed to lease
  await redis.redisSource({ stream: 's', group: 'g', claimIdle: 500 });
}

export async function natsConnections(): Promise<void> {
  const nc = await natsConnect({ servers: '127.0.0.1:4222' });
  const r = await nats.enqueue(
    { connection: nc, subject: 'JOBS.work' },
    { path: 'a.pdf' },
    {
      delay: 2000,
      key: 'a.pdf',
      headers: { tenant: 'a' },
    },
  );
  expectTypeOf(r).toEqualTypeOf<nats.EnqueueResult>();
  await nats.natsSource({
    connection: nc,
    stream: 'JOBS',
    consumer: 'workers',
    fetchWait: 1000,
    lease: 30_000,
    connectTimeout: 5000,
    duplicateWindow: 60_000,
  });
  // @ts-expect-error: not a NATS connection
  await nats.enqueue({ connection: {}, subject: 'JOBS.work' }, 'x');
  // @ts-expect-error: renamed to lease
  await nats.natsSource({ stream: 'JOBS', consumer: 'workers', ackWait: 1000 });
  // @ts-expect-error: renamed to fetchWait
  await nats.natsSource({ stream: 'JOBS', consumer: 'workers', blockMs: 1000 });
}

export async function amqpChannels(): Promise<void> {
  const conn = await amqpConnect('amqp://127.0.0.1');
  const channel = await conn.createConfirmChannel();
  await amqp.enqueue({ channel, queue: 'jobs' }, { path: 'a.pdf' }, { delay: 2000 });
  expectTypeOf(amqp.enqueue).returns.resolves.toEqualTypeOf<amqp.EnqueueResult>();
  // @ts-expect-error: a plain channel has no publisher confirms
  await amqp.enqueue({ channel: await conn.createChannel(), queue: 'jobs' }, 'x');
  await amqp.amqpSource({ url: 'amqp://127.0.0.1', queue: 'jobs', fetchWait: 500 });
  // @ts-expect-error: RabbitMQ has no lease
  await amqp.amqpSource({ queue: 'jobs', lease: 1000 });
}

export async function postgresClients(): Promise<void> {
  const pool = new pg.Pool({ connectionString: 'postgres://127.0.0.1/app' });
  const client = new pg.Client({ connectionString: 'postgres://127.0.0.1/app' });
  const checkedOut = await pool.connect();
  for (const db of [pool, client, checkedOut]) {
    await postgres.migrate(db, 'jobs');
    await postgres.enqueue({ db, table: 'jobs' }, { path: 'a.pdf' }, { delay: 5, key: 'a' });
    await postgres.enqueueMany({ db, table: 'jobs' }, [{ path: 'a.pdf' }]);
  }
  await postgres.postgresSource({ pool, table: 'jobs', fetchWait: 200, lease: 5000 });
  const { Pool } = pg;
  await postgres.postgresSource({ pool: new Pool(), table: 'jobs' });
  expectTypeOf(postgres.enqueue).returns.resolves.toEqualTypeOf<postgres.EnqueueResult>();
  expectTypeOf(postgres.enqueueMany).returns.resolves.toEqualTypeOf<string[]>();
  // @ts-expect-error: renamed to fetchWait
  await postgres.postgresSource({ pool, table: 'jobs', pollInterval: 200 });
}

/** One signature: the same options type and result type on all four. */
export function oneShape(): void {
  expectTypeOf<Parameters<typeof redis.enqueue>[2]>().toEqualTypeOf<
    Parameters<typeof nats.enqueue>[2]
  >();
  expectTypeOf<Parameters<typeof amqp.enqueue>[2]>().toEqualTypeOf<
    Parameters<typeof postgres.enqueue>[2]
  >();
  expectTypeOf<Parameters<typeof redis.enqueue>[2]>().toEqualTypeOf<
    postgres.EnqueueOptions | undefined
  >();
  expectTypeOf<redis.EnqueueResult>().toEqualTypeOf<amqp.EnqueueResult>();
}

export function brokerErrors(): void {
  expectTypeOf(new ConnectTimeoutError('Redis at redis://x', 10).timeout).toEqualTypeOf<number>();
  expectTypeOf(new NotConnectedError('RabbitMQ').code).toEqualTypeOf<SluiceErrorCode>();
  expectTypeOf<'ERR_CONNECT_TIMEOUT'>().toExtend<SluiceErrorCode>();
  expectTypeOf<'ERR_NOT_CONNECTED'>().toExtend<SluiceErrorCode>();
  expectTypeOf<'ERR_CONNECT_CONFIG'>().toExtend<SluiceErrorCode>();
  expectTypeOf(new NotConnectedError('Redis').retryable).toEqualTypeOf<boolean>();
  // A config refusal is still a NotConnectedError (what it was before it had a class).
  expectTypeOf(new ConnectConfigError('Redis', 'refused the login')).toExtend<NotConnectedError>();
  expectTypeOf<'ERR_UNROUTABLE'>().toExtend<SluiceErrorCode>();
  expectTypeOf(new UnroutableError('x')).toExtend<Error>();
  expectTypeOf<'ERR_SETTLE_TIMEOUT'>().toExtend<SluiceErrorCode>();
  expectTypeOf(
    new SettleTimeoutError('ack', 'message 1-0', 30_000).timeout,
  ).toEqualTypeOf<number>();
  expectTypeOf<'ERR_PUBLISH_TIMEOUT'>().toExtend<SluiceErrorCode>();
  expectTypeOf(new PublishTimeoutError('NATS subject "a"', 5000).timeout).toEqualTypeOf<number>();
  // RabbitMQ's and NATS's enqueue targets bound the confirm's wait with the same field.
  expectTypeOf<amqp.AmqpTarget['timeout']>().toEqualTypeOf<nats.NatsTarget['timeout']>();
  expectTypeOf<amqp.AmqpTarget['timeout']>().toEqualTypeOf<number | undefined>();
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

  // connectTimeout, the sources' common name, on every broker's dead letters.
  await redis.redisDeadLetters({ stream: 'jobs', connectTimeout: 500 });
  await nats.natsDeadLetters({ stream: 'JOBS', connectTimeout: 500 });
  await amqp.amqpDeadLetters({ queue: 'jobs', connectTimeout: 500 });
  await postgres.postgresDeadLetters({ table: 'jobs', connectTimeout: 500 });
  // @ts-expect-error: the 0.1 name is gone
  await redis.redisDeadLetters({ stream: 'jobs', claimIdle: 500 });
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
  // An adaptive limit wherever a number goes (one message per call).
  redis.consume<Job>(one, async () => {}, { concurrency: adaptive({ min: 1, max: 64 }) });

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
  // Gates with batches: rate (per batch start) and retry are allowed…
  redis.consume<Job>(one, () => {}, {
    concurrency: 2,
    batch: { size: 2 },
    rate: { limit: 10, interval: 1000 },
    retry: { attempts: 3 },
  });
  // @ts-expect-error: …key (like perKey and priority) is refused with batch
  redis.consume<Job>(one, () => {}, { concurrency: 2, batch: { size: 2 }, key: () => 'k' });
  // @ts-expect-error: priority is refused with batch
  redis.consume<Job>(one, () => {}, { concurrency: 2, batch: { size: 2 }, priority: () => 1 });
}
