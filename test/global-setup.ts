/**
 * vitest globalSetup: before any test file runs, check that the four brokers the tests use
 * answer on loopback. When one is missing, `npm test` stops at once with one message naming each
 * missing broker and the command that starts it, instead of a silent skip or a wall of
 * timeouts. The tests never start, stop or reconfigure these servers (fault tests start private
 * instances of their own).
 */
import { connect } from 'node:net';
import pg from 'pg';

export interface Broker {
  name: string;
  port: number;
  start: string;
}

/** The brokers on their default ports, and how to start each (also in the README and .ci/run). */
export const BROKERS: Broker[] = [
  {
    name: 'PostgreSQL',
    port: 5432,
    start:
      'pg_ctlcluster <version> main start (Debian/Ubuntu), or: sudo systemctl start postgresql',
  },
  { name: 'Redis', port: 6379, start: 'redis-server --daemonize yes --save "" --appendonly no' },
  { name: 'RabbitMQ', port: 5672, start: 'rabbitmq-server -detached' },
  {
    name: 'NATS with JetStream',
    port: 4222,
    start: 'nats-server -js -a 127.0.0.1 -p 4222 -sd /tmp/nats &',
  },
];

/** The database the PostgreSQL tests use (postgres-helpers.ts). */
const PG_TEST_URL = 'postgres://postgres@127.0.0.1:5432/test';

function answers(port: number, ms = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(ms, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Why the `test` database cannot be used, or undefined when it can. */
async function postgresProblem(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: PG_TEST_URL, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return undefined;
  } catch (err) {
    return (
      `PostgreSQL answers on 5432 but ${PG_TEST_URL} does not work (${(err as Error).message}); ` +
      'the tests connect as user postgres without a password (trust on 127.0.0.1) to the ' +
      'database "test": createdb -h 127.0.0.1 -U postgres test'
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * The one message to print when some of `brokers` are not usable, or undefined when all are.
 * `database` also checks the PostgreSQL test database when PostgreSQL answers.
 */
export async function brokerProblems(
  brokers: Broker[],
  opts: { database?: boolean } = {},
): Promise<string | undefined> {
  const up = await Promise.all(brokers.map((b) => answers(b.port)));
  const problems = brokers
    .filter((_, i) => !up[i])
    .map((b) => `  - ${b.name} (127.0.0.1:${b.port}): start it with ${b.start}`);
  const pgUp = brokers.some((b, i) => b.name === 'PostgreSQL' && up[i]);
  if (opts.database && pgUp) {
    const pgProblem = await postgresProblem();
    if (pgProblem) problems.push(`  - ${pgProblem}`);
  }
  if (problems.length === 0) return undefined;
  const which = problems.length === 1 ? 'this one is' : 'these are';
  return (
    `npm test needs the four brokers on loopback, and ${which} not usable:\n` +
    `${problems.join('\n')}\n` +
    'See "Tests" in README.md (.ci/run starts them all).'
  );
}

export default async function preflight(): Promise<void> {
  const message = await brokerProblems(BROKERS, { database: true });
  if (message === undefined) return;
  // One message and a non-zero exit, before any test file is loaded.
  console.error(`\n${message}\n`);
  process.exit(1);
}
