// Broker consumers: messages/s consumed and acked with a trivial handler, concurrency 64, per
// broker, each run in its own child process (peak RSS read from /proc); and BullMQ's Worker on
// the same Redis at the same concurrency. Backlogs of two sizes show whether RSS stays flat.
// The `sluice-<broker>-batch` rows use a batch handler (`batch: { size: 100, maxWait: 50 }`,
// 200 messages held) on the same broker: compare them with the per-message rows of one run.
//   npx tsx bench/brokers.ts [--quick] [--runs=3] [--sizes=10000,100000] [--warmup=20000]
//     [--warm-consumers=1] [--only=sluice-redis,bullmq] [--concurrency=64]
//     [--handler=trivial|write] [--sink-pool=10] [--sink-commit=on|off]
// `--handler=write` replaces the trivial handler with what a user with a database sink runs: each
// message's result written to a PostgreSQL table (db `test` on 127.0.0.1, created by the bench,
// emptied before each timed consume) through the child's own `pg.Pool` (`--sink-pool`
// connections, pg's default 10; `--sink-commit` = the sink sessions' `synchronous_commit`,
// default: the server's). Per-message handlers (sluice's and the hand loops') send one `INSERT`
// per message; the `-batch` rows one multi-row `INSERT … SELECT * FROM unnest(…)` per batch.
// After each run the parent counts the sink: exactly n rows with n distinct ids, or the run fails
// (and the bench exits 1). The sink's round trips are timed and its client's CPU is in `CPU µs/msg`.
// Each run first consumes a separate warm-up queue (untimed), then times the main queue from
// the first fetch to the last ack confirmed; connecting is not timed. The timed consumer is the
// process's second `consume()`: V8 throws away code it specialised for the first one (the
// handler, the source, the first instance's fields) and optimises again during the timed run,
// which at 10,000 messages is most of the difference to 100,000. `--warm-consumers=2` splits the
// warm-up between two consumers, so the timed one is the third and runs on settled code.
// The `hand-<broker>` rows (bench/brokers-hand.ts) are the best hand-written loop with the same
// client library: each sluice row's "vs hand loop" is against its broker's. `CPU µs/msg` is the
// child's CPU time over the timed consume divided by the messages: on a loaded machine rates
// follow it more than the round trips.
// Adding a broker = adding one entry to `brokers` below (fill in the parent, consume in the child).
import { fileURLToPath } from 'node:url';
import { amqpHand, natsHand, postgresHand, redisHand } from './brokers-hand.js';
import {
  type CaseContext,
  type Cases,
  count,
  ensureBuilt,
  type IsolatedRun,
  isMain,
  markdownTable,
  median,
  mib,
  printHeader,
  range,
  ratio,
  runIsolated,
} from './lib/index.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const NATS_URL = '127.0.0.1:4222';
const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

/** One contender. `fill`/`drop` run in the parent, `consume` in the isolated child. */
interface BrokerBench {
  /** Client packages whose versions go into the header. */
  packages: string[];
  /** Puts `n` messages into a fresh queue and returns its name. */
  fill(n: number): Promise<string>;
  /**
   * Connects, then consumes and acks the `n` messages of `queue` at `concurrency`. Returns the
   * ns from the start of consumption (connections already open) to the last ack confirmed.
   */
  consume(queue: string, n: number, concurrency: number, work: Work): Promise<number>;
  /** Removes the queue. */
  drop(queue: string): Promise<void>;
}

let made = 0;
const unique = (tag: string) => `bench_${tag}_${process.pid}_${Date.now().toString(36)}_${made++}`;

/** Resolves when `add()` was called `n` times: the handler side of every contender. */
function countdown(n: number): { add: () => void; done: Promise<void> } {
  let left = n;
  let resolve!: () => void;
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  return { add: () => void (--left === 0 && resolve()), done };
}

/** What the handler does with each message: nothing, or write its result to the sink table. */
type HandlerKind = 'trivial' | 'write';

/** The payload every bench message carries (its index in the queue). */
type Payload = { i: number };

/**
 * The handler's work in the child. `one`/`many` are undefined for the trivial handler, so its
 * rows run the same code as before the option existed.
 */
interface Work {
  /** Writes one message's result (one `INSERT`). */
  one?: (payload: unknown) => Promise<unknown>;
  /** Writes a batch's results (one multi-row `INSERT`). */
  many?: (payloads: readonly unknown[]) => Promise<unknown>;
}

const TRIVIAL: Work = {};

/** What the sink stores for a message: its id and a small result computed from the payload. */
const result = (payload: Payload) => `ok ${payload.i}`;

/** The sink's DDL: created by the parent, emptied by the child after its warm-up. */
const sinkDdl = (sink: string) =>
  `CREATE TABLE IF NOT EXISTS "${sink}" (id integer NOT NULL, result text NOT NULL)`;

/** Opens the child's own pool on the sink and the two statements its handlers send. */
async function openSink(
  sink: string,
  poolSize: number,
  commit: string,
): Promise<{ work: Work; truncate(): Promise<void>; close(): Promise<void> }> {
  const pg = (await import('pg')).default;
  const pool = new pg.Pool({
    connectionString: PG_URL,
    max: poolSize,
    ...(commit ? { options: `-c synchronous_commit=${commit}` } : {}),
  });
  // Every connection opened before the clock starts (connecting is not timed).
  const clients = await Promise.all(Array.from({ length: poolSize }, () => pool.connect()));
  for (const client of clients) client.release();
  const one = { name: 'sink_one', text: `INSERT INTO "${sink}" (id, result) VALUES ($1, $2)` };
  const many = {
    name: 'sink_many',
    text: `INSERT INTO "${sink}" (id, result) SELECT * FROM unnest($1::int[], $2::text[])`,
  };
  return {
    work: {
      one: (payload) => {
        const p = payload as Payload;
        return pool.query({ ...one, values: [p.i, result(p)] });
      },
      many: (payloads) => {
        const ids = new Array<number>(payloads.length);
        const results = new Array<string>(payloads.length);
        for (let k = 0; k < payloads.length; k++) {
          const p = payloads[k] as Payload;
          ids[k] = p.i;
          results[k] = result(p);
        }
        return pool.query({ ...many, values: [ids, results] });
      },
    },
    truncate: async () => void (await pool.query(`TRUNCATE "${sink}"`)),
    close: () => pool.end(),
  };
}

async function redisClient() {
  const { createClient } = await import('redis');
  const client = createClient({ url: REDIS_URL });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** A sluice source on `queue` and the `consume` of its subpath (imported in the child). */
type Opened = {
  consume: typeof import('../dist/brokers/consumer.js').consume;
  source: import('../dist/brokers/source.js').BrokerSource;
};

const openers: Record<
  'redis' | 'postgres' | 'nats' | 'nats-plain' | 'amqp',
  (queue: string) => () => Promise<Opened>
> = {
  redis: (stream) => async () => {
    const { consume, redisSource } = await import('../dist/brokers/redis/index.js');
    return { consume, source: await redisSource({ url: REDIS_URL, stream, group: 'bench' }) };
  },
  postgres: (table) => async () => {
    const { consume, postgresSource } = await import('../dist/brokers/postgres/index.js');
    const source = await postgresSource({ connectionString: PG_URL, table, migrate: false });
    return { consume, source };
  },
  nats: (stream) => async () => {
    const { consume, natsSource } = await import('../dist/brokers/nats/index.js');
    return { consume, source: await natsSource({ stream, consumer: 'bench' }) };
  },
  'nats-plain': (stream) => async () => {
    const { consume, natsSource } = await import('../dist/brokers/nats/index.js');
    const source = await natsSource({ stream, consumer: 'bench', confirmAcks: false });
    return { consume, source };
  },
  amqp: (queue) => async () => {
    const { amqpSource, consume } = await import('../dist/brokers/amqp/index.js');
    return { consume, source: await amqpSource({ url: AMQP_URL, queue }) };
  },
};

/**
 * The `-batch` rows: a batch handler, `batch: { size: 100, maxWait: 50 }`, at 200 messages held
 * (`concurrency` counts messages, so one batch fills while another runs), whatever --concurrency says.
 */
const BATCH = { size: 100, maxWait: 50 } as const;
const BATCH_CONCURRENCY = 200;

/**
 * Consumes and acks `n` messages with the trivial handler or the sink writes of `work` (per
 * message, or per batch); returns the ns from the start of consumption (connections already
 * open) to the last ack confirmed.
 */
async function timeSluice(
  open: () => Promise<Opened>,
  n: number,
  concurrency: number,
  work: Work,
  batch = false,
): Promise<number> {
  const { consume, source } = await open();
  const handled = countdown(n);
  const { one, many } = work;
  const start = process.hrtime.bigint();
  const consumer = batch
    ? consume(
        source,
        many
          ? async (items) => {
              await many(items.map((item) => item.payload));
              for (let i = 0; i < items.length; i++) handled.add();
            }
          : (items) => {
              for (let i = 0; i < items.length; i++) handled.add();
            },
        { concurrency: BATCH_CONCURRENCY, batch: BATCH },
      )
    : consume(
        source,
        one
          ? async (payload) => {
              await one(payload);
              handled.add();
            }
          : handled.add,
        { concurrency },
      );
  await handled.done;
  const report = await consumer.close(); // returns once every ack is confirmed (written, AMQP)
  const elapsed = Number(process.hrtime.bigint() - start);
  if (report.stats.acked !== n) throw new Error(`acked ${report.stats.acked} of ${n}`);
  return elapsed;
}

const brokers: Record<string, BrokerBench> = {
  'sluice-redis': {
    packages: ['redis'],
    async fill(n) {
      const stream = unique('redis');
      const client = await redisClient();
      for (let i = 0; i < n; i += 2000) {
        const batch = client.multi();
        for (let j = i; j < Math.min(n, i + 2000); j++) {
          batch.addCommand(['XADD', stream, '*', 'body', JSON.stringify({ i: j })]);
        }
        await batch.exec();
      }
      await client.sendCommand(['XGROUP', 'CREATE', stream, 'bench', '0']);
      await client.close();
      return stream;
    },
    consume: (stream, n, concurrency, work) =>
      timeSluice(openers.redis(stream), n, concurrency, work),
    async drop(stream) {
      const client = await redisClient();
      await client.del(stream);
      await client.close();
    },
  },

  'sluice-postgres': {
    packages: ['pg'],
    async fill(n) {
      const table = unique('pg');
      const pg = (await import('pg')).default;
      const { enqueueMany, migrate } = await import('../dist/brokers/postgres/index.js');
      const pool = new pg.Pool({ connectionString: PG_URL });
      await migrate(pool, table);
      for (let i = 0; i < n; i += 5000) {
        const items = Array.from({ length: Math.min(5000, n - i) }, (_, j) => ({ i: i + j }));
        await enqueueMany({ db: pool, table }, items);
      }
      await pool.query(`VACUUM ANALYZE "${table}"`);
      await pool.end();
      return table;
    },
    consume: (table, n, concurrency, work) =>
      timeSluice(openers.postgres(table), n, concurrency, work),
    async drop(table) {
      const pg = (await import('pg')).default;
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(
        `DROP TABLE IF EXISTS "${table}", "${table}_dead"; DROP FUNCTION IF EXISTS "${table}_notify"()`,
      );
      await client.end();
    },
  },

  'sluice-nats': {
    packages: ['@nats-io/jetstream', '@nats-io/transport-node'],
    async fill(n) {
      const stream = unique('nats').toUpperCase();
      const { connect } = await import('@nats-io/transport-node');
      const { jetstream } = await import('@nats-io/jetstream');
      const { natsSource } = await import('../dist/brokers/nats/index.js');
      await (await natsSource({ stream, consumer: 'bench' })).close(); // declares the topology
      const nc = await connect({ servers: NATS_URL, noAsyncTraces: true });
      const js = jetstream(nc);
      for (let i = 0; i < n; i += 2000) {
        const acks = [];
        for (let j = i; j < Math.min(n, i + 2000); j++) {
          acks.push(js.publish(`${stream}.work`, JSON.stringify({ i: j })));
        }
        await Promise.all(acks);
      }
      await nc.close();
      return stream;
    },
    consume: (stream, n, concurrency, work) =>
      timeSluice(openers.nats(stream), n, concurrency, work),
    async drop(stream) {
      const { connect } = await import('@nats-io/transport-node');
      const { jetstreamManager } = await import('@nats-io/jetstream');
      const nc = await connect({ servers: NATS_URL });
      const jsm = await jetstreamManager(nc);
      for (const name of [stream, `${stream}_DEAD`]) await jsm.streams.delete(name).catch(() => {});
      await nc.close();
    },
  },

  'sluice-amqp': {
    packages: ['amqplib'],
    async fill(n) {
      const queue = unique('amqp');
      const { connect } = await import('amqplib');
      const { amqpSource } = await import('../dist/brokers/amqp/index.js');
      await (await amqpSource({ url: AMQP_URL, queue })).close(); // declares the topology
      const conn = await connect(AMQP_URL);
      const ch = await conn.createConfirmChannel();
      for (let i = 0; i < n; i += 5000) {
        for (let j = i; j < Math.min(n, i + 5000); j++) {
          ch.sendToQueue(queue, Buffer.from(JSON.stringify({ i: j })), { persistent: true });
        }
        await ch.waitForConfirms();
      }
      await conn.close();
      return queue;
    },
    // AMQP 0-9-1 acks are not confirmed: close() returns once every ack was written.
    consume: (queue, n, concurrency, work) => timeSluice(openers.amqp(queue), n, concurrency, work),
    async drop(queue) {
      const { connect } = await import('amqplib');
      const conn = await connect(AMQP_URL);
      const ch = await conn.createChannel();
      await ch.deleteQueue(queue);
      await ch.deleteQueue(`${queue}.dead`);
      await ch.deleteExchange(`${queue}.dlx`);
      await conn.close();
    },
  },

  bullmq: {
    packages: ['bullmq'],
    async fill(n) {
      const name = unique('bullmq');
      const { Queue } = await import('bullmq');
      const queue = new Queue(name, { connection: { host: '127.0.0.1', port: 6379 } });
      for (let i = 0; i < n; i += 2000) {
        const jobs = Array.from({ length: Math.min(2000, n - i) }, (_, j) => ({
          name: 'j',
          data: { i: i + j },
        }));
        await queue.addBulk(jobs);
      }
      await queue.close();
      return name;
    },
    async consume(name, n, concurrency, work) {
      const { Worker } = await import('bullmq');
      const handled = countdown(n);
      const { one } = work;
      // removeOnComplete: BullMQ's fastest setting (no completed-set bookkeeping kept per job).
      const processor = one
        ? async (job: { data: unknown }) => void (await one(job.data))
        : async () => {};
      const worker = new Worker(name, processor, {
        connection: { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null },
        concurrency,
        removeOnComplete: { count: 0 },
        autorun: false,
      });
      worker.on('completed', handled.add); // emitted after the job is moved to completed (acked)
      await worker.waitUntilReady();
      const start = process.hrtime.bigint();
      void worker.run();
      await handled.done;
      const elapsed = Number(process.hrtime.bigint() - start);
      await worker.close();
      return elapsed;
    },
    async drop(name) {
      const { Queue } = await import('bullmq');
      const queue = new Queue(name, { connection: { host: '127.0.0.1', port: 6379 } });
      await queue.obliterate({ force: true });
      await queue.close();
    },
  },
};

// The batch rows and the hand-written loops (bench/brokers-hand.ts) reuse each broker's fill
// and drop. `sluice-nats-plain`: sluice's NATS source with `confirmAcks: false` (plain acks, as
// the hand loop sends).
// With `--handler=write` the hand loops' per-message handler sends the same one `INSERT` each.
const hand: Record<'redis' | 'postgres' | 'nats' | 'amqp', BrokerBench['consume']> = {
  redis: (stream, n, concurrency, work) =>
    redisHand(REDIS_URL, stream, 'bench', n, concurrency, work.one),
  postgres: (table, n, concurrency, work) => postgresHand(PG_URL, table, n, concurrency, work.one),
  nats: (stream, n, concurrency, work) =>
    natsHand(NATS_URL, stream, 'bench', n, concurrency, work.one),
  amqp: (queue, n, concurrency, work) => amqpHand(AMQP_URL, queue, n, concurrency, work.one),
};
for (const broker of ['redis', 'postgres', 'nats', 'amqp'] as const) {
  const base = brokers[`sluice-${broker}`]!;
  brokers[`sluice-${broker}-batch`] = {
    ...base,
    consume: (queue, n, concurrency, work) =>
      timeSluice(openers[broker](queue), n, concurrency, work, true),
  };
  brokers[`hand-${broker}`] = { ...base, consume: hand[broker] };
}
brokers['sluice-nats-plain'] = {
  ...brokers['sluice-nats']!,
  consume: (stream, n, concurrency, work) =>
    timeSluice(openers['nats-plain'](stream), n, concurrency, work),
};

interface CaseParams {
  queue: string;
  n: number;
  /**
   * Separate queues, `warmup` messages in all, each consumed first by its own consumer in turn,
   * untimed (JIT, connections, caches).
   */
  warmQueues: string[];
  warmup: number;
  concurrency: number;
  handler: HandlerKind;
  /** The sink table (`--handler=write`). */
  sink: string;
  sinkPool: number;
  /** The sink sessions' `synchronous_commit`; '' = the server's. */
  sinkCommit: string;
}

interface CaseValue {
  elapsedNs: number;
  /** CPU time (user + system) of the child over the timed consume, connecting included, µs. */
  cpuUs: number;
}

function asCase(bench: BrokerBench) {
  return async (p: CaseParams, ctx: CaseContext): Promise<CaseValue> => {
    const sink =
      p.handler === 'write' ? await openSink(p.sink, p.sinkPool, p.sinkCommit) : undefined;
    const work = sink?.work ?? TRIVIAL;
    const each = Math.floor(p.warmup / Math.max(1, p.warmQueues.length));
    for (const queue of p.warmQueues) await bench.consume(queue, each, p.concurrency, work);
    await sink?.truncate(); // the warm-up's rows out: the parent counts the timed run's
    await ctx.mark('start');
    const before = process.cpuUsage();
    const elapsedNs = await bench.consume(p.queue, p.n, p.concurrency, work);
    const cpu = process.cpuUsage(before);
    await sink?.close();
    return { elapsedNs, cpuUs: cpu.user + cpu.system };
  };
}

export const cases: Cases = Object.fromEntries(
  Object.entries(brokers).map(([name, bench]) => [name, asCase(bench)]),
);

interface Options {
  sizes: number[];
  runs: number;
  only: string[];
  concurrency: number;
  warmup: number;
  /** How many consumers, one after another, share the warm-up (see the header comment). */
  warmConsumers: number;
  handler: HandlerKind;
  sinkPool: number;
  sinkCommit: string;
}

function parseArgs(argv: string[]): Options {
  const value = (flag: string) => argv.find((arg) => arg.startsWith(`--${flag}=`))?.split('=')[1];
  const quick = argv.includes('--quick');
  return {
    sizes: (value('sizes') ?? (quick ? '10000' : '10000,100000')).split(',').map(Number),
    runs: Number(value('runs') ?? (quick ? 1 : 3)),
    only: value('only')?.split(',') ?? [],
    concurrency: Number(value('concurrency') ?? 64),
    warmup: Number(value('warmup') ?? (quick ? 0 : 20_000)),
    warmConsumers: Number(value('warm-consumers') ?? 1),
    handler: handlerKind(value('handler') ?? 'trivial'),
    sinkPool: Number(value('sink-pool') ?? 10),
    sinkCommit: sinkCommit(value('sink-commit') ?? ''),
  };
}

function handlerKind(kind: string): HandlerKind {
  if (kind === 'trivial' || kind === 'write') return kind;
  throw new Error(`--handler=${kind}: expected trivial or write`);
}

function sinkCommit(setting: string): string {
  if (['', 'on', 'off', 'local', 'remote_write', 'remote_apply'].includes(setting)) return setting;
  throw new Error(`--sink-commit=${setting}: expected a synchronous_commit setting`);
}

/** The parent's side of the sink: creates, empties, counts and drops the table. */
async function sinkAdmin(sink: string) {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(sinkDdl(sink));
  await client.query(`TRUNCATE "${sink}"`);
  return {
    truncate: async () => void (await client.query(`TRUNCATE "${sink}"`)),
    /** Undefined when the sink holds exactly `n` rows with `n` distinct ids, else what it holds. */
    async check(n: number): Promise<string | undefined> {
      const { rows } = await client.query<{ rows: number; ids: number }>(
        `SELECT count(*)::int AS rows, count(DISTINCT id)::int AS ids FROM "${sink}"`,
      );
      const { rows: held, ids } = rows[0]!;
      return held === n && ids === n
        ? undefined
        : `the sink holds ${held} rows (${ids} distinct ids), expected ${n}`;
    },
    async drop() {
      await client.query(`DROP TABLE IF EXISTS "${sink}"`);
      await client.end();
    },
  };
}

type Measured = { name: string; runs: IsolatedRun<CaseValue>[] };

/** Runs that failed (the child's error, or a sink that does not hold exactly n rows). */
const failures: string[] = [];

async function measure(n: number, names: string[], opts: Options): Promise<Measured[]> {
  const measured = names.map((name) => ({ name, runs: [] as IsolatedRun<CaseValue>[] }));
  const sink = unique('sink');
  const admin = opts.handler === 'write' ? await sinkAdmin(sink) : undefined;
  try {
    await measureInto(measured, n, opts, sink, admin);
  } finally {
    await admin?.drop();
  }
  return measured;
}

async function measureInto(
  measured: Measured[],
  n: number,
  opts: Options,
  sink: string,
  admin: Awaited<ReturnType<typeof sinkAdmin>> | undefined,
): Promise<void> {
  for (let rep = 0; rep < opts.runs; rep++) {
    // Contenders take turns within each repetition, so a noisy minute hits all of them alike.
    for (const entry of measured) {
      const bench = brokers[entry.name]!;
      const warmQueues: string[] = [];
      const each = Math.floor(opts.warmup / opts.warmConsumers);
      for (let i = 0; each > 0 && i < opts.warmConsumers; i++)
        warmQueues.push(await bench.fill(each));
      const queue = await bench.fill(n);
      await admin?.truncate();
      const run = await runIsolated<CaseValue>(
        fileURLToPath(import.meta.url),
        entry.name,
        {
          queue,
          n,
          warmQueues,
          warmup: opts.warmup,
          concurrency: opts.concurrency,
          handler: opts.handler,
          sink,
          sinkPool: opts.sinkPool,
          sinkCommit: opts.sinkCommit,
        } satisfies CaseParams,
        // BENCH_CPU_PROF=<dir>: each child writes a V8 CPU profile there (--cpu-prof).
        {
          timeoutMs: 300_000,
          ...(process.env.BENCH_CPU_PROF
            ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] }
            : {}),
        },
      );
      await bench.drop(queue);
      for (const warmQueue of warmQueues) await bench.drop(warmQueue);
      const wrong = run.value && admin ? await admin.check(n) : undefined;
      if (wrong) {
        run.error = wrong;
        delete run.value; // not counted in the medians
      }
      if (run.error) {
        console.error(`${entry.name} @ ${n}: ${run.error}`);
        failures.push(`${entry.name} @ ${n}, run ${rep + 1}: ${run.error.split('\n')[0]}`);
      }
      entry.runs.push(run);
    }
  }
}

function print(n: number, measured: Measured[], opts: Options): void {
  const rows = measured.map(({ name, runs }) => {
    const ok = runs.filter((run) => run.value);
    const rates = ok.map((run) => n / (run.value!.elapsedNs / 1e9));
    return {
      name,
      rate: rates.length ? median(rates) : Number.NaN,
      spread: rates.length ? range(rates) : { min: Number.NaN, max: Number.NaN },
      peak: ok.length ? median(ok.map((run) => run.peakRssBytes)) : Number.NaN,
      cpuPerMsg: ok.length ? median(ok.map((run) => run.value!.cpuUs / n)) : Number.NaN,
    };
  });
  const bull = rows.find((row) => row.name === 'bullmq');
  // Each sluice row against the hand-written loop of its broker (`sluice-nats-batch` → `hand-nats`).
  const handRate = (name: string) =>
    rows.find((row) => row.name === `hand-${/^(?:sluice|hand)-([a-z]+)/.exec(name)?.[1]}`)?.rate;
  console.log(
    `\n### ${count(n)} messages, ${opts.handler === 'write' ? `handler writes to PostgreSQL (pool ${opts.sinkPool}${opts.sinkCommit ? `, synchronous_commit=${opts.sinkCommit}` : ''})` : 'trivial handler'}, concurrency ${opts.concurrency}, after ${count(opts.warmup)} untimed${opts.warmConsumers > 1 ? ` by ${opts.warmConsumers} consumers in turn` : ''} (${opts.runs} runs each)\n`,
  );
  console.log(
    markdownTable(
      [
        'consumer',
        'msgs/s median',
        'slowest',
        'fastest',
        'vs hand loop',
        'vs BullMQ',
        'CPU µs/msg',
        'peak RSS',
      ],
      rows.map((row) => [
        row.name,
        count(Math.round(row.rate)),
        count(Math.round(row.spread.min)),
        count(Math.round(row.spread.max)),
        handRate(row.name) === undefined ? '-' : ratio(row.rate, handRate(row.name)!),
        bull ? ratio(row.rate, bull.rate) : '-',
        row.cpuPerMsg.toFixed(1),
        mib(row.peak),
      ]),
    ),
  );
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  ensureBuilt();
  const names = Object.keys(brokers).filter(
    (name) => !opts.only.length || opts.only.includes(name),
  );
  const what =
    opts.handler === 'write' ? 'handler writes each result to PostgreSQL' : 'trivial handler';
  const packages = names.flatMap((name) => brokers[name]!.packages);
  printHeader(`Broker consumers: ${what}, messages consumed and acked per second`, [
    ...new Set(opts.handler === 'write' ? [...packages, 'pg'] : packages),
  ]);
  for (const n of opts.sizes) print(n, await measure(n, names, opts), opts);
  if (failures.length) {
    console.error(`\n${failures.length} run(s) failed:\n${failures.join('\n')}`);
    process.exitCode = 1;
  }
}

if (isMain(import.meta.url)) await main();
