/**
 * `sluice-doc-index dead-letters list|replay|purge --from <URL>` against the real brokers:
 * documents a consumer gave up on are listed newest first, replayed back to the queue (and then
 * delivered again as first deliveries) and purged.
 */
import { consume } from 'sluice/redis';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseBrokerUrl } from '../src/broker-url.js';
import { openDeadLetters } from '../src/dead-letters.js';
import { openProducer, openSource } from '../src/queue.js';
import { cli } from './cli-harness.js';
import { postgresProbe, type QueueProbe, redisProbe } from './queue-probes.js';

interface Doc {
  path: string;
}

const docs: [string, string][] = [
  ['/docs/a.pdf', 'ERR_EXTRACT'],
  ['/docs/b.pdf', 'ERR_EXTRACT'],
  ['/docs/c.pdf', 'ERR_EMBED_TIMEOUT'],
];

/** Sends the documents, and runs them one by one through a consumer that fails each for good. */
async function deadLetterDocs(url: string): Promise<void> {
  const spec = parseBrokerUrl(url);
  const producer = await openProducer(spec);
  await producer.send(docs.map(([path]) => ({ path })));
  await producer.close();
  const codes = new Map(docs);
  const consumer = consume<Doc>(
    await openSource(spec),
    ({ path }) => {
      throw Object.assign(new Error(`cannot index ${path}`), { code: codes.get(path) });
    },
    { concurrency: 1, maxDeliveries: 1 },
  );
  const dead = await openDeadLetters(spec);
  try {
    const end = Date.now() + 20_000;
    while ((await dead.list()).letters.length < docs.length) {
      if (Date.now() > end) throw new Error('the documents were not dead-lettered');
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await dead.close();
    await consumer.close();
  }
}

/** Consumes until `n` documents ran; their paths and delivery counts. */
async function consumeBack(url: string, n: number): Promise<[string, number][]> {
  const ran: [string, number][] = [];
  let done: () => void = () => {};
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  const consumer = consume<Doc>(
    await openSource(parseBrokerUrl(url)),
    ({ path }, { message }) => {
      ran.push([path, message.deliveryCount]);
      if (ran.length >= n) done();
    },
    { concurrency: 2 },
  );
  await all;
  await consumer.close();
  return ran.sort();
}

const json = (stdout: string) => JSON.parse(stdout);

describe.each([
  ['Redis', redisProbe],
  ['PostgreSQL', postgresProbe],
])('dead-letters on %s', (_, probe: () => Promise<QueueProbe>) => {
  it('lists the dead documents newest first in pages, replays by code, purges by id', async () => {
    const q = await probe();
    onTestFinished(() => q.cleanup());
    await deadLetterDocs(q.url);

    const first = await cli(['dead-letters', 'list', '--from', q.url, '--limit', '2', '--json']);
    expect(first.code).toBe(0);
    const page1 = json(first.stdout);
    expect(page1.letters.map((l: { body: string }) => JSON.parse(l.body).path)).toEqual([
      '/docs/c.pdf',
      '/docs/b.pdf',
    ]);
    expect(page1.letters[0]).toMatchObject({
      error: 'cannot index /docs/c.pdf',
      code: 'ERR_EMBED_TIMEOUT',
      attempts: 1,
    });
    expect(Date.parse(page1.letters[0].lastFailedAt)).toBeGreaterThan(Date.now() - 60_000);
    // Failed once: its first failure is its last (the clocks of this host and the broker's).
    const { firstFailedAt, lastFailedAt } = page1.letters[0];
    expect(Math.abs(Date.parse(firstFailedAt) - Date.parse(lastFailedAt))).toBeLessThan(1000);
    expect(page1.next).toEqual(expect.any(String));
    const second = await cli([
      'dead-letters',
      'list',
      '--from',
      q.url,
      '--json',
      '--cursor',
      page1.next,
    ]);
    const page2 = json(second.stdout);
    expect(page2.letters.map((l: { body: string }) => JSON.parse(l.body).path)).toEqual([
      '/docs/a.pdf',
    ]);
    expect(page2.next).toBeNull();

    const text = await cli(['dead-letters', 'list', '--from', q.url, '--limit', '2']);
    expect(text.stdout).toContain('/docs/c.pdf');
    expect(text.stdout).toContain('code ERR_EMBED_TIMEOUT');
    expect(text.stdout).toContain('error: cannot index /docs/c.pdf');
    expect(text.stdout).toContain(`more: --cursor ${page1.next}`);

    const replay = await cli(['dead-letters', 'replay', '--from', q.url, '--code', 'ERR_EXTRACT']);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toMatch(/^replayed 2 dead letters back to /);
    // Back on the queue as new messages: first deliveries again.
    expect(await consumeBack(q.url, 2)).toEqual([
      ['/docs/a.pdf', 1],
      ['/docs/b.pdf', 1],
    ]);

    const left = json((await cli(['dead-letters', 'list', '--from', q.url, '--json'])).stdout);
    expect(left.letters).toHaveLength(1);
    const purge = await cli([
      'dead-letters',
      'purge',
      '--from',
      q.url,
      '--id',
      left.letters[0].id,
      '--json',
    ]);
    expect(json(purge.stdout)).toEqual({ purged: 1 });
    const empty = await cli(['dead-letters', 'list', '--from', q.url]);
    expect(empty.stdout).toMatch(/^No dead letters on /);
    expect(await q.remaining()).toBe(0);
  });

  it('an --id that names no dead letter (gone, or a message id) is reported with exit 2, after the count', async () => {
    const q = await probe();
    onTestFinished(() => q.cleanup());
    await deadLetterDocs(q.url);
    const listed = await cli(['dead-letters', 'list', '--from', q.url, '--json']);
    const first = (json(listed.stdout).letters as { id: string; messageId: string | null }[])[0]!;
    const text = await cli(['dead-letters', 'list', '--from', q.url]);
    if (first.messageId !== null) expect(text.stdout).toContain(`message ${first.messageId}`);
    expect((await cli(['dead-letters', 'purge', '--from', q.url, '--all'])).code).toBe(0);
    const replay = await cli(['dead-letters', 'replay', '--from', q.url, '--id', first.id]);
    expect(replay.stdout).toMatch(/^replayed 0 dead letters back to /);
    expect(replay.code).toBe(2);
    expect(replay.stderr).toContain('1 of the 1 --id given is not a dead letter');
  });

  it('refuses a replay or purge that selects nothing, and a bad cursor, with exit 2', async () => {
    const q = await probe();
    onTestFinished(() => q.cleanup());
    const bare = await cli(['dead-letters', 'purge', '--from', q.url]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('purge needs --all, --id <id> or a filter');
    const mixed = await cli(['dead-letters', 'replay', '--from', q.url, '--all', '--code', 'X']);
    expect(mixed.code).toBe(2);
    const cursor = await cli(['dead-letters', 'list', '--from', q.url, '--cursor', 'nonsense']);
    expect(cursor.code).toBe(2);
    expect(cursor.stderr).toContain('cursor');
    const all = await cli(['dead-letters', 'purge', '--from', q.url, '--all']);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/^purged 0 dead letters from /);
  });
});
