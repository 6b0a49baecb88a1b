/**
 * `enqueue` + two `serve` processes sharing one queue and one SQLite index, on each real broker:
 * the 12 PDFs of the committed corpus, one broken PDF and one malformed message. The work is split, every good
 * document is indexed exactly once, both bad messages are dead-lettered with their error, and
 * SIGTERM drains both servers to exit 0.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from 'redis';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { parseBrokerUrl } from '../src/broker-url.js';
import { openProducer } from '../src/queue.js';
import type { ServeSummary } from '../src/serve.js';
import {
  cli,
  completeness,
  documentCount,
  indexedPaths,
  type Started,
  start,
  until,
} from './cli-harness.js';
import { BAD_PDFS, GOOD_COUNT, GOOD_PDFS, tempDir } from './helpers.js';
import { startOpenAiServer } from './openai-server.js';
import {
  amqpProbe,
  natsProbe,
  postgresProbe,
  type QueueProbe,
  redisProbe,
} from './queue-probes.js';

// The committed corpus: enough documents that two servers each holding two cannot take them
// all before the other one starts, few enough to keep each broker's run to a few seconds.
const good = readdirSync(GOOD_PDFS)
  .filter((f) => f.endsWith('.pdf'))
  .map((f) => join(GOOD_PDFS, f))
  .sort();
const messages = GOOD_COUNT + 2; // the good documents, the broken PDF, the malformed message

const tmp = tempDir('doc-index-serve-');
afterAll(() => tmp.cleanup());
const broken = join(tmp.dir, 'broken.pdf');
writeFileSync(broken, '%PDF-1.4\nthis is not the rest of a PDF\n');

/** Lines of `stderr` that report a finished message (indexed, skipped or dead-lettered). */
const finished = (s: Started) =>
  s.stderr().match(/^(indexed|skipped|dead-lettered) /gm)?.length ?? 0;

/** `serve --from url --db db --threads 1 …extra`, started (not yet waited for). */
const serve = (url: string, db: string, ...extra: string[]) =>
  start(['serve', '--from', url, '--db', db, '--threads', '1', ...extra]);

/** A `serve` that is consuming; killed when the test ends if it is still running. */
async function serving(url: string, db: string, ...extra: string[]): Promise<Started> {
  const server = serve(url, db, ...extra);
  onTestFinished(() => {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
  });
  await until(() => server.stderr().includes('serving '), 'server ready', 20_000);
  return server;
}

/** Puts `payloads` on the queue at `url` with the CLI's own producer. */
async function send(url: string, payloads: unknown[]): Promise<void> {
  const producer = await openProducer(parseBrokerUrl(url));
  await producer.send(payloads);
  await producer.close();
}

async function twoServersShareOneQueue(probe: QueueProbe): Promise<void> {
  const db = join(tmp.dir, `${parseBrokerUrl(probe.url).kind}.db`);
  const servers = [1, 2].map(() => serve(probe.url, db, '--concurrency', '2', '--json'));
  try {
    // Both are consuming before the first message exists, so neither can take the whole queue.
    await until(
      () => {
        const exited = servers.find((s) => s.child.exitCode !== null);
        if (exited) throw new Error(`serve exited early:\n${exited.stderr()}`);
        return servers.every((s) => s.stderr().includes('serving '));
      },
      'both servers ready',
      20_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${servers.map((s) => s.stderr()).join('\n---\n')}`);
    });
    const enqueued = await cli(['enqueue', ...good, broken, '--to', probe.url]);
    expect(enqueued.stdout, enqueued.stderr).toMatch(`enqueued ${GOOD_COUNT + 1} documents`);
    expect(enqueued.code).toBe(0);
    await send(probe.url, [{ file: 'no path here' }]);

    await until(
      () => servers.reduce((n, s) => n + finished(s), 0) >= messages,
      `all ${messages} messages handled`,
      20_000,
    );
    // At-least-once: under load a delivery can come again (e.g. an ack lost with a dropped
    // connection) and is then a cheap hash skip. Stop only once the queue itself is empty.
    for (let ready = await probe.remaining(); ready > 0; ready = await probe.remaining()) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const s of servers) s.child.kill('SIGTERM');
    const runs = await Promise.all(servers.map((s) => s.done));
    const summaries = runs.map((r) => JSON.parse(r.stdout) as ServeSummary);

    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    // Split: each server handled at least one message.
    for (const s of summaries) {
      expect(s.indexed + s.skipped + s.deadLettered.length).toBeGreaterThanOrEqual(1);
      expect(s.interruptedBy).toBe('SIGTERM');
      expect(s.consumer.peakHeld).toBeLessThanOrEqual(2);
    }
    // Exactly once: one complete row per document, and as many inserts (none indexed twice).
    expect(good).toHaveLength(GOOD_COUNT);
    expect(indexedPaths(db)).toEqual(good);
    expect(completeness(db)).toEqual({ docs: GOOD_COUNT, incomplete: 0, orphans: 0 });
    expect(summaries[0]!.indexed + summaries[1]!.indexed).toBe(GOOD_COUNT);

    const dead = await probe.deadLetters();
    expect(dead).toHaveLength(2);
    const byBody = Object.fromEntries(dead.map((d) => [d.body, d.error]));
    expect(byBody[JSON.stringify({ path: broken })]).toMatch(
      /cannot extract text from .*broken\.pdf: not a readable PDF/,
    );
    expect(byBody[JSON.stringify({ file: 'no path here' })]).toMatch(/no "path" string/);
    // Each under its own error's code, so `dead-letters … --code ERR_EXTRACT` finds the PDFs.
    const codes = Object.fromEntries(dead.map((d) => [d.body, d.code]));
    expect(codes).toEqual({
      [JSON.stringify({ path: broken })]: 'ERR_EXTRACT',
      [JSON.stringify({ file: 'no path here' })]: 'ERR_MESSAGE_MALFORMED',
    });
    const reported = summaries.flatMap((s) => s.deadLettered.map((d) => d.message)).sort();
    expect(reported).toEqual(dead.map((d) => d.error).sort());
    expect(await probe.remaining()).toBe(0);
  } finally {
    for (const s of servers) if (s.child.exitCode === null) s.child.kill('SIGKILL');
    await probe.cleanup();
  }
}

describe('serve: two processes share one queue and one index', () => {
  it('Redis stream + consumer group', async () => {
    await twoServersShareOneQueue(await redisProbe());
  });
  it('PostgreSQL table queue', async () => {
    await twoServersShareOneQueue(await postgresProbe());
  });
  it('NATS JetStream durable consumer', async () => {
    await twoServersShareOneQueue(await natsProbe());
  });
  it('RabbitMQ queue', async () => {
    await twoServersShareOneQueue(await amqpProbe());
  });
});

describe('serve: signals', () => {
  it('SIGTERM waits for the document in flight; a second SIGTERM aborts it (exit 143, message back on the queue, nothing committed)', async () => {
    // An embeddings server that never answers keeps the one document in flight, deterministically.
    const embeddings = await startOpenAiServer(() => {});
    const probe = await redisProbe();
    const db = join(tmp.dir, 'abort.db');
    try {
      const server = await serving(
        probe.url,
        db,
        '--concurrency',
        '1',
        '--json',
        '--embed-url',
        embeddings.url,
        '--embed-model',
        'hang',
        '--embed-timeout',
        '60000',
      );
      await send(probe.url, [{ path: good[0] }]);
      await until(() => embeddings.seen.length > 0, 'the embeddings request', 20_000);
      server.child.kill('SIGTERM');
      await until(() => server.stderr().includes('SIGTERM: draining'), 'the drain to start');
      // Repeats within 100 ms count as one signal (see signals.ts): the second must come later.
      await new Promise((r) => setTimeout(r, 150));
      expect(server.child.exitCode).toBe(null); // still draining: the document is in flight
      server.child.kill('SIGTERM');
      const run = await server.done;
      expect(run.code, run.stderr).toBe(143);
      const summary = JSON.parse(run.stdout) as ServeSummary;
      expect(summary).toMatchObject({ indexed: 0, canceled: 1, deadLettered: [] });
      expect(documentCount(db)).toBe(0);
      expect(await probe.remaining()).toBe(1);
    } finally {
      await embeddings.close();
      await probe.cleanup();
    }
  });

  it('SIGINT on an idle server: summary, exit 0', async () => {
    const probe = await redisProbe();
    try {
      const server = await serving(probe.url, join(tmp.dir, 'idle.db'));
      server.child.kill('SIGINT');
      const run = await server.done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/Drained \(SIGINT\)\.\n {2}indexed 0 /);
    } finally {
      await probe.cleanup();
    }
  });
});

describe('serve: the summary counts every dead letter', () => {
  it('malformed bodies, bad paths, broken PDFs and an entry without a body field: 7 dead letters, 7 in the summary', async () => {
    const probe = await redisProbe();
    const stream = parseBrokerUrl(probe.url);
    const client = createClient({ url: 'redis://127.0.0.1:6379' });
    await client.connect();
    const db = join(tmp.dir, 'dead.db');
    try {
      const server = await serving(probe.url, db, '--concurrency', '2', '--json');
      const name = stream.kind === 'redis' ? stream.stream : '';
      const bodies = [
        '{not json',
        '[1,2]',
        JSON.stringify({ path: 'relative/a.pdf' }),
        '{"path":123}',
        JSON.stringify({ path: join(tmp.dir, 'missing.pdf') }),
        JSON.stringify({ path: join(BAD_PDFS, 'truncated-head.pdf') }),
        JSON.stringify({ path: good[0] }),
      ];
      for (const body of bodies) await client.sendCommand(['XADD', name, '*', 'body', body]);
      // Not a message at all: the consumer dead-letters it before any decoder or handler runs.
      await client.sendCommand(['XADD', name, '*', 'payload', JSON.stringify({ path: good[1] })]);
      await until(() => finished(server) >= 8, 'all 8 entries handled', 20_000);
      for (let ready = await probe.remaining(); ready > 0; ready = await probe.remaining()) {
        await new Promise((r) => setTimeout(r, 50));
      }
      server.child.kill('SIGTERM');
      const run = await server.done;
      expect(run.code, run.stderr).toBe(0);
      const summary = JSON.parse(run.stdout) as ServeSummary;
      const dead = await probe.deadLetters();
      expect(dead).toHaveLength(7);
      expect(summary.indexed).toBe(1);
      expect(summary.deadLettered).toHaveLength(7);
      expect(summary.consumer.deadLettered).toBe(7);
      expect(summary.deadLettered.map((d) => d.message).sort()).toEqual(
        dead.map((d) => d.error).sort(),
      );
      const noBody = summary.deadLettered.filter((d) => /no "body" field/.test(d.message));
      expect(noBody).toHaveLength(1);
      expect(run.stderr).toContain(`dead-lettered message ${noBody[0]!.id}: `);
    } finally {
      await client.quit();
      await probe.cleanup();
    }
  });

  it('the text summary prints the count and one line per dead letter, the bodiless entry included', async () => {
    const probe = await redisProbe();
    const stream = parseBrokerUrl(probe.url);
    const client = createClient({ url: 'redis://127.0.0.1:6379' });
    await client.connect();
    try {
      const server = await serving(probe.url, join(tmp.dir, 'dead-text.db'));
      const name = stream.kind === 'redis' ? stream.stream : '';
      await client.sendCommand(['XADD', name, '*', 'body', '{not json']);
      await client.sendCommand(['XADD', name, '*', 'other', 'x']);
      await until(() => finished(server) >= 2, 'both entries handled', 20_000);
      server.child.kill('SIGTERM');
      const run = await server.done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain('dead-lettered 2 ·');
      expect(run.stdout).toMatch(/ {4}\[\S+\] message body is not JSON/);
      expect(run.stdout).toMatch(/ {4}\[\S+\] stream entry has no "body" field/);
    } finally {
      await client.quit();
      await probe.cleanup();
    }
  });
});

describe('serve: --drain-timeout', () => {
  it('a document still in flight at the deadline is canceled and goes back on the queue; exit 0', async () => {
    const embeddings = await startOpenAiServer(() => {}); // never answers
    const probe = await redisProbe();
    const db = join(tmp.dir, 'drain-timeout.db');
    try {
      const server = await serving(
        probe.url,
        db,
        '--concurrency',
        '1',
        '--json',
        '--embed-url',
        embeddings.url,
        '--embed-model',
        'hang',
        '--drain-timeout',
        '300',
      );
      await send(probe.url, [{ path: good[0] }]);
      await until(() => embeddings.seen.length > 0, 'the embeddings request', 20_000);
      server.child.kill('SIGTERM');
      const run = await server.done; // one signal only: the deadline ends the drain
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain('for up to 300 ms');
      const summary = JSON.parse(run.stdout) as ServeSummary;
      expect(summary).toMatchObject({ indexed: 0, canceled: 1, deadLettered: [] });
      expect(documentCount(db)).toBe(0);
      expect(await probe.remaining()).toBe(1);
    } finally {
      await embeddings.close();
      await probe.cleanup();
    }
  });
});

describe('serve: idempotent by content hash', () => {
  it('a document delivered again after it was indexed is skipped, not indexed twice', async () => {
    const probe = await postgresProbe();
    const db = join(tmp.dir, 'twice.db');
    try {
      const server = await serving(probe.url, db, '--concurrency', '1', '--json');
      await send(probe.url, [{ path: good[0] }, { path: good[0] }]);
      await until(() => finished(server) === 2, 'both messages handled', 20_000);
      server.child.kill('SIGTERM');
      const run = await server.done;
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ indexed: 1, skipped: 1, deadLettered: [] });
      expect(indexedPaths(db)).toEqual([good[0]]);
      expect(await probe.remaining()).toBe(0);
    } finally {
      await probe.cleanup();
    }
  });
});

describe('serve and enqueue: usage errors exit 2 naming the problem', () => {
  it('an unknown scheme', async () => {
    const run = await cli([
      'serve',
      '--from',
      'http://127.0.0.1/docs',
      '--db',
      join(tmp.dir, 'x.db'),
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/unknown scheme "http:"/);
  });
  it('an unreachable broker fails at once instead of waiting forever', async () => {
    const runs = await Promise.all([
      cli(['serve', '--from', 'redis://127.0.0.1:1/docs', '--db', join(tmp.dir, 'y.db')]),
      cli(['enqueue', broken, '--to', 'amqp://guest:guest@127.0.0.1:1/docs']),
    ]);
    for (const run of runs) expect(run.code, run.stderr).toBe(2);
    expect(runs[0]!.stderr).toMatch(/cannot open redis stream docs .*ECONNREFUSED/);
    expect(runs[1]!.stderr).toMatch(
      /cannot open RabbitMQ queue docs at amqp:\/\/guest:\*\*\*@.*ECONNREFUSED/,
    );
  });
  it('a URL without a queue', async () => {
    const run = await cli(['enqueue', broken, '--to', 'redis://127.0.0.1:6379']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--to: .* must name exactly one stream/);
  });
});
