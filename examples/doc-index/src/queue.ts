/**
 * Opens the broker a {@link BrokerSpec} names: a sluice source for `serve`, a producer for
 * `enqueue`. The sluice subpaths and the broker clients are imported only when used, so `index`
 * and `search` work without any broker client installed (they are optional peer dependencies of
 * sluice).
 *
 * @module
 */
import type { BrokerSource } from 'sluice';
import type { BrokerSpec } from './broker-url.js';

/** A wrong broker URL fails `serve`/`enqueue` with a usage error after this long, ms. */
const CONNECT_TIMEOUT = 5000;
/** Puts messages on the queue. */
export interface Producer {
  /** Sends each payload as one JSON message; resolves once the broker has them. */
  send(payloads: readonly unknown[]): Promise<void>;
  close(): Promise<void>;
}

/** Source tuning shared by every broker (ms). */
export interface SourceTuning {
  /** How long a running message stays ours without a heartbeat (lease, ack wait, claim idle). */
  lease?: number;
}

/**
 * Connects and returns a source for sluice's `consume()` (the queue, group, stream or table is
 * created when missing).
 *
 * @throws the client's error when the broker cannot be reached.
 * @example
 * ```ts
 * const source = await openSource(parseBrokerUrl('redis://127.0.0.1:6379/docs'));
 * ```
 */
export async function openSource(
  spec: BrokerSpec,
  tuning: SourceTuning = {},
): Promise<BrokerSource> {
  switch (spec.kind) {
    case 'redis': {
      const { redisSource } = await import('sluice/redis');
      return redisSource({
        url: spec.url,
        stream: spec.stream,
        group: spec.group,
        lease: tuning.lease,
        connectTimeout: CONNECT_TIMEOUT,
      });
    }
    case 'nats': {
      const { natsSource } = await import('sluice/nats');
      return natsSource({
        servers: spec.servers,
        stream: spec.stream,
        consumer: spec.consumer,
        lease: tuning.lease,
        connectTimeout: CONNECT_TIMEOUT,
      });
    }
    case 'amqp': {
      const { amqpSource } = await import('sluice/amqp');
      return amqpSource({ url: spec.url, queue: spec.queue, connectTimeout: CONNECT_TIMEOUT });
    }
    case 'postgres': {
      const { postgresSource } = await import('sluice/postgres');
      return postgresSource({ connectionString: spec.url, table: spec.table, lease: tuning.lease });
    }
  }
}

/**
 * Connects a producer. Where the broker drops messages sent to a queue nobody declared
 * (RabbitMQ, NATS), the topology is declared first — the same way `serve` declares it.
 *
 * @example
 * ```ts
 * const producer = await openProducer(spec);
 * await producer.send([{ path: '/abs/a.pdf' }]);
 * await producer.close();
 * ```
 */
export async function openProducer(spec: BrokerSpec): Promise<Producer> {
  switch (spec.kind) {
    case 'redis':
      return redisProducer(spec);
    case 'nats':
      return natsProducer(spec);
    case 'amqp':
      return amqpProducer(spec);
    case 'postgres':
      return postgresProducer(spec);
  }
}

async function redisProducer(spec: Extract<BrokerSpec, { kind: 'redis' }>): Promise<Producer> {
  const [{ createClient }, { enqueue }] = await Promise.all([
    import('redis'),
    import('sluice/redis'),
  ]);
  // A short-lived producer: fail rather than retry when the server is not there.
  const client = createClient({
    url: spec.url,
    socket: { reconnectStrategy: false, connectTimeout: 5000 },
  });
  client.on('error', () => {}); // a failed command or connect rejects with it
  await client.connect();
  // The group is created from the stream's start, so messages sent before any `serve` runs are
  // still delivered; creating it here too makes the order of the two commands irrelevant.
  await client
    .sendCommand(['XGROUP', 'CREATE', spec.stream, spec.group, '0', 'MKSTREAM'])
    .catch((err: Error) => {
      if (!err.message.startsWith('BUSYGROUP')) throw err;
    });
  return {
    async send(payloads) {
      // node-redis pipelines the commands of one tick: one round trip for the batch.
      await Promise.all(payloads.map((p) => enqueue({ client, stream: spec.stream }, p)));
    },
    close: async () => {
      await client.quit();
    },
  };
}

async function natsProducer(spec: Extract<BrokerSpec, { kind: 'nats' }>): Promise<Producer> {
  const [{ connect }, { natsSource, enqueue }] = await Promise.all([
    import('@nats-io/transport-node'),
    import('sluice/nats'),
  ]);
  const nc = await connect({ servers: spec.servers });
  try {
    // Declares the stream and the durable consumer; the connection stays ours.
    await (
      await natsSource({ connection: nc, stream: spec.stream, consumer: spec.consumer })
    ).close();
  } catch (err) {
    await nc.close();
    throw err;
  }
  return {
    async send(payloads) {
      for (const p of payloads)
        await enqueue({ connection: nc, subject: `${spec.stream}.work` }, p);
    },
    close: () => nc.close(),
  };
}

async function amqpProducer(spec: Extract<BrokerSpec, { kind: 'amqp' }>): Promise<Producer> {
  const [amqplib, { amqpSource, enqueue }] = await Promise.all([
    import('amqplib'),
    import('sluice/amqp'),
  ]);
  // Declare the queue with the consumer's arguments (its dead-letter exchange) first: RabbitMQ
  // drops messages sent to a missing queue and refuses a re-declaration with other arguments.
  const declared = await amqpSource({
    url: spec.url,
    queue: spec.queue,
    connectTimeout: CONNECT_TIMEOUT,
  });
  await declared.close();
  const conn = await amqplib.connect(spec.url);
  const channel = await conn.createConfirmChannel();
  return {
    async send(payloads) {
      await Promise.all(payloads.map((p) => enqueue({ channel, queue: spec.queue }, p)));
    },
    close: async () => {
      await channel.close();
      await conn.close();
    },
  };
}

async function postgresProducer(
  spec: Extract<BrokerSpec, { kind: 'postgres' }>,
): Promise<Producer> {
  const [{ default: pg }, { migrate, enqueueMany }] = await Promise.all([
    import('pg'),
    import('sluice/postgres'),
  ]);
  const pool = new pg.Pool({ connectionString: spec.url, max: 1 });
  pool.on('error', () => {});
  try {
    await migrate(pool, spec.table);
  } catch (err) {
    await pool.end();
    throw err;
  }
  return {
    async send(payloads) {
      if (payloads.length) await enqueueMany({ db: pool, table: spec.table }, [...payloads]);
    },
    close: () => pool.end(),
  };
}
