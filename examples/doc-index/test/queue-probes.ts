/**
 * Per-broker test probes for the `serve` tests: a fresh queue URL, what reached the dead letter
 * (body and error), how many messages are still on the queue, and clean-up. Each talks to the
 * real broker on loopback with its own client.
 */
import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import amqplib from 'amqplib';
import pg from 'pg';
import { createClient } from 'redis';

export interface DeadLetterSeen {
  body: string;
  error: string;
  /** The error's code as the source wrote it ('' when it had none). */
  code: string;
}

export interface QueueProbe {
  /** The queue URL for `--from` / `--to`. */
  url: string;
  deadLetters(): Promise<DeadLetterSeen[]>;
  /** Messages not yet acked (waiting or held). */
  remaining(): Promise<number>;
  cleanup(): Promise<void>;
}

const unique = (prefix: string) =>
  `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;

export async function redisProbe(): Promise<QueueProbe> {
  const stream = unique('docidx');
  const client = createClient({ url: 'redis://127.0.0.1:6379' });
  await client.connect();
  return {
    url: `redis://127.0.0.1:6379/${stream}`,
    async deadLetters() {
      const entries = (await client.sendCommand(['XRANGE', `${stream}:dead`, '-', '+'])) as [
        string,
        string[],
      ][];
      return entries.map(([, fields]) => {
        const f = Object.fromEntries(fields.flatMap((v, i) => (i % 2 ? [] : [[v, fields[i + 1]]])));
        return {
          body: String(f.body),
          error: String(f['sluice-error']),
          code: String(f['sluice-code'] ?? ''),
        };
      });
    },
    async remaining() {
      const reply = (await client.sendCommand(['XPENDING', stream, 'doc-index'])) as unknown[];
      const lag = (await client.sendCommand(['XINFO', 'GROUPS', stream])) as unknown[][];
      const group = lag[0] as unknown[];
      const lagValue = Number(group[group.indexOf('lag') + 1] ?? 0);
      return Number(reply[0]) + lagValue;
    },
    async cleanup() {
      await client.del([stream, `${stream}:dead`]);
      await client.quit();
    },
  };
}

export async function postgresProbe(): Promise<QueueProbe> {
  const table = unique('docidx').toLowerCase();
  const url = 'postgres://postgres@127.0.0.1:5432/test';
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  return {
    url: `${url}?table=${table}`,
    async deadLetters() {
      const { rows } = await pool.query<{ body: Buffer; error: string; code: string | null }>(
        `SELECT body, error, code FROM "${table}_dead" ORDER BY id`,
      );
      return rows.map((r) => ({ body: r.body.toString(), error: r.error, code: r.code ?? '' }));
    },
    async remaining() {
      return Number((await pool.query(`SELECT count(*) AS n FROM "${table}"`)).rows[0].n);
    },
    async cleanup() {
      await pool.query(`DROP TABLE IF EXISTS "${table}", "${table}_dead" CASCADE`);
      await pool.end();
    },
  };
}

export async function natsProbe(): Promise<QueueProbe> {
  const stream = unique('DOCIDX').toUpperCase();
  const nc = await natsConnect({ servers: '127.0.0.1:4222' });
  const jsm = await jetstreamManager(nc);
  return {
    url: `nats://127.0.0.1:4222/${stream}`,
    async deadLetters() {
      const info = await jsm.streams.info(`${stream}_DEAD`);
      const out: DeadLetterSeen[] = [];
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(`${stream}_DEAD`, { seq });
        if (m)
          out.push({
            body: m.string(),
            error: m.header.get('Sluice-Error'),
            code: m.header.get('Sluice-Error-Code'),
          });
      }
      return out;
    },
    async remaining() {
      const info = await jsm.consumers.info(stream, 'doc-index');
      return info.num_pending + info.num_ack_pending;
    },
    async cleanup() {
      for (const s of [stream, `${stream}_DEAD`]) await jsm.streams.delete(s).catch(() => {});
      await nc.close();
    },
  };
}

export async function amqpProbe(): Promise<QueueProbe> {
  const queue = unique('docidx');
  const conn = await amqplib.connect('amqp://guest:guest@127.0.0.1:5672');
  const ch = await conn.createChannel();
  return {
    url: `amqp://guest:guest@127.0.0.1:5672/${queue}`,
    async deadLetters() {
      const out: DeadLetterSeen[] = [];
      for (;;) {
        const m = await ch.get(`${queue}.dead`, { noAck: true });
        if (!m) return out;
        out.push({
          body: m.content.toString(),
          error: String(m.properties.headers?.['x-sluice-error']),
          code: String(m.properties.headers?.['x-sluice-error-code'] ?? ''),
        });
      }
    },
    async remaining() {
      const q = await ch.checkQueue(queue);
      // checkQueue counts ready messages only; unacked ones are held by a live consumer, and
      // the serve processes have exited (their channels closed) when this is asked.
      return q.messageCount;
    },
    async cleanup() {
      for (const q of [queue, `${queue}.dead`]) await ch.deleteQueue(q).catch(() => {});
      await ch.deleteExchange(`${queue}.dlx`).catch(() => {});
      await conn.close();
    },
  };
}
