/**
 * The queue URLs of `serve --from` and `enqueue --to`. One URL names both the broker and the
 * queue on it, so a deployment passes a single string:
 *
 * | URL                                                          | queue                                      |
 * | ------------------------------------------------------------ | ------------------------------------------ |
 * | `redis://[user:pass@]host:port/<stream>[?group=&db=]`        | stream, consumer group (default doc-index) |
 * | `nats://host:port/<stream>[?consumer=]`                      | JetStream stream, durable (default doc-index) |
 * | `amqp://user:pass@host:port/<queue>[?vhost=]`                | RabbitMQ queue (vhost default `/`)          |
 * | `postgres://[user@]host:port/<database>[?table=]`            | table queue (default doc_index)            |
 *
 * The path is the queue, not what the broker's own URLs use it for (Redis: the db number;
 * AMQP: the vhost) — those move to the query string. Unknown query parameters are refused so a
 * typo does not silently fall back to a default.
 *
 * @module
 */
import { UsageError } from './errors.js';

/** A parsed queue URL. `url` is the connection URL for the broker's client. */
export type BrokerSpec =
  | { kind: 'redis'; url: string; stream: string; group: string }
  | { kind: 'nats'; servers: string; stream: string; consumer: string }
  | { kind: 'amqp'; url: string; queue: string }
  | { kind: 'postgres'; url: string; table: string };

/** Help text listing the URL forms (for `--help` and errors). */
export const BROKER_URL_HELP = `
Queue URLs (--from / --to):
  redis://host:6379/<stream>[?group=doc-index&db=0]      Redis stream + consumer group
  nats://host:4222/<stream>[?consumer=doc-index]         NATS JetStream stream + durable consumer
  amqp://user:pass@host:5672/<queue>[?vhost=/]           RabbitMQ queue
  postgres://user@host:5432/<database>[?table=doc_index] PostgreSQL table queue
Dead letters: Redis <stream>:dead, NATS <stream>_DEAD, RabbitMQ <queue>.dead, PostgreSQL <table>_dead.
`;

const SCHEMES: Record<string, BrokerSpec['kind']> = {
  'redis:': 'redis',
  'rediss:': 'redis',
  'nats:': 'nats',
  'amqp:': 'amqp',
  'amqps:': 'amqp',
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
};

const NATS_NAME = /^[A-Za-z0-9_-]+$/;
const PG_TABLE = /^[a-z_][a-z0-9_]*$/;

/**
 * Parses a queue URL.
 *
 * @param flag the option it came from, named in error messages (e.g. `--from`).
 * @throws UsageError naming the problem: not a URL, an unknown scheme, a missing or invalid
 *   queue name, an unknown query parameter.
 * @example
 * ```ts
 * parseBrokerUrl('redis://127.0.0.1:6379/docs', '--from');
 * // { kind: 'redis', url: 'redis://127.0.0.1:6379', stream: 'docs', group: 'doc-index' }
 * ```
 */
export function parseBrokerUrl(text: string, flag = '--from'): BrokerSpec {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(
      `${flag}: not a URL: ${JSON.stringify(text)} (e.g. redis://127.0.0.1:6379/docs)`,
    );
  }
  const kind = SCHEMES[url.protocol];
  if (!kind) {
    throw new UsageError(
      `${flag}: unknown scheme "${url.protocol}" in ${redact(url)}; expected redis://, nats://, amqp:// or postgres://`,
    );
  }
  if (!url.hostname) throw new UsageError(`${flag}: ${redact(url)} names no host`);
  const name = queueName(url, kind, flag);
  const params = new Params(url, flag);
  switch (kind) {
    case 'redis': {
      const group = params.take('group') ?? 'doc-index';
      const db = params.take('db');
      if (db !== undefined && !/^\d+$/.test(db)) {
        throw new UsageError(`${flag}: db must be a database number, got ${JSON.stringify(db)}`);
      }
      params.done();
      return { kind, url: `${origin(url)}${db ? `/${db}` : ''}`, stream: name, group };
    }
    case 'nats': {
      const consumer = params.take('consumer') ?? 'doc-index';
      params.done();
      for (const [what, value] of [
        ['stream', name],
        ['consumer', consumer],
      ] as const) {
        if (!NATS_NAME.test(value)) {
          throw new UsageError(
            `${flag}: NATS ${what} name ${JSON.stringify(value)} may only hold letters, digits, - and _`,
          );
        }
      }
      return { kind, servers: `${url.hostname}:${url.port || '4222'}`, stream: name, consumer };
    }
    case 'amqp': {
      const vhost = params.take('vhost');
      params.done();
      return {
        kind,
        url: `${origin(url)}${vhost ? `/${encodeURIComponent(vhost)}` : ''}`,
        queue: name,
      };
    }
    case 'postgres': {
      const table = params.take('table') ?? 'doc_index';
      if (!PG_TABLE.test(table)) {
        throw new UsageError(
          `${flag}: table must be a plain lower-case identifier ([a-z_][a-z0-9_]*), got ${JSON.stringify(table)}`,
        );
      }
      // Other parameters (sslmode, application_name, …) are pg's: keep them on the connection URL.
      const conn = new URL(url.href);
      conn.searchParams.delete('table');
      return { kind, url: conn.href, table };
    }
  }
}

/** A URL with its password replaced, for messages and logs. */
function redact(url: URL | string): string {
  const u = new URL(String(url));
  if (u.password) u.password = '***';
  return u.href;
}

/** Where to send a human: the spec's queue, without credentials. */
export function describeSpec(spec: BrokerSpec): string {
  switch (spec.kind) {
    case 'redis':
      return `redis stream ${spec.stream} (group ${spec.group}) at ${redact(spec.url)}`;
    case 'nats':
      return `NATS stream ${spec.stream} (consumer ${spec.consumer}) at ${spec.servers}`;
    case 'amqp':
      return `RabbitMQ queue ${spec.queue} at ${redact(spec.url)}`;
    case 'postgres':
      return `PostgreSQL table ${spec.table} at ${redact(spec.url)}`;
  }
}

function origin(url: URL): string {
  const auth = url.username ? `${url.username}${url.password ? `:${url.password}` : ''}@` : '';
  return `${url.protocol}//${auth}${url.host}`;
}

function queueName(url: URL, kind: BrokerSpec['kind'], flag: string): string {
  const what = { redis: 'stream', nats: 'stream', amqp: 'queue', postgres: 'database' }[kind];
  const parts = url.pathname.split('/').filter(Boolean);
  if (parts.length !== 1) {
    throw new UsageError(
      `${flag}: ${redact(url)} must name exactly one ${what} as its path, e.g. ${url.protocol}//${url.host}/docs`,
    );
  }
  return decodeURIComponent(parts[0]!);
}

class Params {
  readonly #url: URL;
  readonly #flag: string;
  readonly #seen = new Set<string>();

  constructor(url: URL, flag: string) {
    this.#url = url;
    this.#flag = flag;
  }

  take(name: string): string | undefined {
    this.#seen.add(name);
    const value = this.#url.searchParams.get(name);
    if (value === '') throw new UsageError(`${this.#flag}: ${name}= is empty`);
    return value ?? undefined;
  }

  done(): void {
    for (const key of this.#url.searchParams.keys()) {
      if (!this.#seen.has(key)) {
        const known = [...this.#seen].join(', ') || 'none';
        throw new UsageError(
          `${this.#flag}: unknown parameter "${key}" in ${redact(this.#url)} (known: ${known})`,
        );
      }
    }
  }
}
