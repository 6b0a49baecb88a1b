// Hand-written consumer loops, one per broker, with the client library sluice uses there: the
// limit a sluice consumer is measured against in bench/brokers.ts. Each is a correct
// at-least-once consumer — a message is acked only after its (trivial, async) handler resolved,
// and it never holds more than `concurrency` unacked messages — written for speed: batch fetches
// and batched (or multiple) acks wherever the broker allows, and none of sluice's generality
// (retries, dead letters, leases checks, heartbeats, drain, several sources).
// Each hands its handler the body decoded as JSON, as `consume()` does by default (`decode` below).
// Each returns the ns from the start of consumption (connections open) to the last ack confirmed.

/**
 * The handler every hand loop runs per message by default: as trivial as sluice's bench handler.
 * Each loop takes another as its last argument (bench/brokers.ts `--handler=write`: one `INSERT`).
 */
type Handler = (payload: unknown) => Promise<unknown>;
const trivial: Handler = async (_payload: unknown): Promise<void> => {};

const utf8 = new TextDecoder('utf-8', { fatal: true });
/**
 * What a hand loop hands its handler: the body decoded as JSON (strict UTF-8, as `consume()`'s
 * default `jsonDecode`), since sluice's handler gets the decoded payload and the bench messages
 * are JSON. `HAND_DECODE=none` hands over the raw body instead (the figures before 2026-12-05).
 */
const decode =
  process.env.HAND_DECODE === 'none'
    ? (body: string | Uint8Array): unknown => body
    : (body: string | Uint8Array): unknown =>
        JSON.parse(typeof body === 'string' ? body : utf8.decode(body));

/**
 * Redis Streams (node-redis): `XREADGROUP COUNT <concurrency>`, all handlers, then one `XACK`
 * of every id, sent on the same connection right ahead of the next `XREADGROUP` (node-redis
 * pipelines them), so a batch costs one round trip. A crash before the XACK leaves the entries
 * pending in the group (XAUTOCLAIM by another consumer): at-least-once.
 */
export async function redisHand(
  url: string,
  stream: string,
  group: string,
  n: number,
  concurrency: number,
  handler: Handler = trivial,
): Promise<number> {
  const { createClient } = await import('redis');
  const client = createClient({ url });
  client.on('error', () => {});
  await client.connect();
  const read = ['XREADGROUP', 'GROUP', group, 'hand', 'COUNT', String(concurrency)];
  const start = process.hrtime.bigint();
  let done = 0;
  let acking: Promise<unknown> = Promise.resolve();
  while (done < n) {
    const reply = (await client.sendCommand([...read, 'BLOCK', '1000', 'STREAMS', stream, '>'])) as
      | [string, [string, string[]][]][]
      | null;
    const entries = reply?.[0]?.[1] ?? [];
    if (entries.length === 0) continue;
    await Promise.all(entries.map((entry) => handler(decode(entry[1][1]!))));
    acking = client.sendCommand(['XACK', stream, group, ...entries.map((entry) => entry[0])]);
    done += entries.length;
  }
  await acking;
  const elapsed = Number(process.hrtime.bigint() - start);
  await client.close();
  return elapsed;
}

/**
 * PostgreSQL (pg): the row-lease pattern in two prepared statements per batch — a claim (`SELECT
 * … FOR UPDATE SKIP LOCKED LIMIT <n>` in a `MATERIALIZED` CTE that moves the rows' `run_at` a
 * lease ahead, so they are not claimable again until it expires), all handlers, then one `DELETE
 * … WHERE id = ANY($1)` — with `synchronous_commit=off` as sluice has. A crash leaves the rows to
 * be claimed again when the lease expires: at-least-once. (No lease token: a batch whose handlers
 * outlive the 30 s lease could delete a row another consumer re-claimed; the trivial handler
 * never does.) Several such loops on their own connections, sharing the bound, so one claims
 * while another deletes (one loop alone leaves the server idle while the process runs handlers).
 */
export async function postgresHand(
  connectionString: string,
  table: string,
  n: number,
  concurrency: number,
  handler: Handler = trivial,
  lanes = Number(process.env.HAND_PG_LANES ?? 2),
): Promise<number> {
  const pg = (await import('pg')).default;
  const clients = await Promise.all(
    Array.from({ length: lanes }, async () => {
      const client = new pg.Client({ connectionString, options: '-c synchronous_commit=off' });
      await client.connect();
      return client;
    }),
  );
  const claim = {
    name: 'hand_claim',
    text: `WITH next AS MATERIALIZED (
        SELECT id FROM "${table}" WHERE run_at <= now() ORDER BY run_at, id LIMIT $1 FOR UPDATE SKIP LOCKED
      )
      UPDATE "${table}" q SET run_at = now() + interval '30 seconds', deliveries = q.deliveries + 1
      FROM next WHERE q.id = next.id RETURNING q.id::text AS id, q.body`,
  };
  const remove = {
    name: 'hand_delete',
    text: `DELETE FROM "${table}" WHERE id = ANY($1::bigint[])`,
  };
  let done = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    clients.map(async (client, lane) => {
      const limit = Math.floor(concurrency / lanes) + (lane < concurrency % lanes ? 1 : 0);
      while (done < n) {
        const { rows } = await client.query<{ id: string; body: Buffer }>({
          ...claim,
          values: [limit],
        });
        if (rows.length === 0) continue; // the rest is held by the other lanes
        await Promise.all(rows.map((row) => handler(decode(row.body))));
        await client.query({ ...remove, values: [rows.map((row) => row.id)] });
        done += rows.length;
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - start);
  await Promise.all(clients.map((client) => client.end()));
  return elapsed;
}

/**
 * NATS JetStream (@nats-io/jetstream): `consumer.fetch({ max_messages: <concurrency> })`, every
 * handler as its message arrives, a plain `+ACK` per message (JetStream's explicit acks cannot
 * be batched; nats.js coalesces the writes of one turn into one socket write), the next fetch
 * once the batch is acked; the clock stops after a `flush()` round trip, i.e. once the server
 * has processed every ack. A lost ack is a redelivery after ack_wait: at-least-once.
 */
export async function natsHand(
  servers: string,
  stream: string,
  durable: string,
  n: number,
  concurrency: number,
  handler: Handler = trivial,
): Promise<number> {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstream } = await import('@nats-io/jetstream');
  const nc = await connect({ servers, noAsyncTraces: true });
  const consumer = await jetstream(nc).consumers.get(stream, durable);
  let done = 0;
  const start = process.hrtime.bigint();
  while (done < n) {
    // Never more than is left: a pull for more than the stream holds stays open until it expires.
    const batch = await consumer.fetch({
      max_messages: Math.min(concurrency, n - done),
      expires: 1000,
    });
    const running: Promise<void>[] = [];
    for await (const m of batch) {
      running.push(
        handler(decode(m.data)).then(() => {
          m.ack();
          done++;
        }),
      );
    }
    await Promise.all(running);
  }
  await nc.flush();
  const elapsed = Number(process.hrtime.bigint() - start);
  await nc.close();
  return elapsed;
}

/**
 * RabbitMQ (amqplib): `prefetch(<concurrency>)` and a push consumer; acks issued within one
 * event-loop turn are coalesced: when every delivery up to the highest finished one is finished,
 * one `basic.ack` with `multiple=true` settles them all, otherwise each is acked on its own.
 * The broker requeues unacked messages when the channel dies: at-least-once.
 */
export async function amqpHand(
  url: string,
  queue: string,
  n: number,
  concurrency: number,
  handler: Handler = trivial,
): Promise<number> {
  const { connect } = await import('amqplib');
  // Nagle off (amqplib leaves it on), as sluice's source has it: small frames go out at once.
  const conn = await connect(url, { noDelay: true });
  const ch = await conn.createChannel();
  await ch.prefetch(concurrency);
  type Msg = import('amqplib').ConsumeMessage;
  let done = 0;
  let resolve!: () => void;
  const finished = new Promise<void>((r) => {
    resolve = r;
  });
  /** Delivery tags handed out and not yet acked, in order; and the finished ones this turn. */
  const outstanding: Msg[] = [];
  const finishedTags = new Set<number>();
  let flushing = false;
  const flush = () => {
    flushing = false;
    // Ack the finished prefix with one multiple-ack; whatever finished after a gap on its own.
    let last: Msg | undefined;
    while (outstanding.length > 0 && finishedTags.has(outstanding[0]!.fields.deliveryTag)) {
      last = outstanding.shift()!;
      finishedTags.delete(last.fields.deliveryTag);
    }
    if (last) ch.ack(last, true);
    if (finishedTags.size > 0) {
      for (let i = 0; i < outstanding.length; ) {
        const m = outstanding[i]!;
        if (finishedTags.delete(m.fields.deliveryTag)) {
          ch.ack(m);
          outstanding.splice(i, 1);
        } else i++;
      }
    }
    if (done >= n) resolve();
  };
  const start = process.hrtime.bigint();
  await ch.consume(queue, (m) => {
    if (!m) return;
    outstanding.push(m);
    void handler(decode(m.content)).then(() => {
      finishedTags.add(m.fields.deliveryTag);
      done++;
      if (!flushing) {
        flushing = true;
        setImmediate(flush);
      }
    });
  });
  await finished;
  const elapsed = Number(process.hrtime.bigint() - start);
  await conn.close();
  return elapsed;
}
