import { join } from 'node:path';
import { ThreadPool } from 'sluice';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ExtractedDocument, ExtractJob } from '../src/extract.js';
import { HttpEmbedder, type HttpEmbedderOptions } from '../src/http-embedder.js';
import { runIndex } from '../src/indexer.js';
import { Store } from '../src/store.js';
import { BUNDLED_PDFS, tempDir } from './helpers.js';
import { type Behaviour, startOpenAiServer } from './openai-server.js';

// The HTTP embedder inside a full indexing run: the fake server misbehaves only for requests
// carrying upref.pdf's chunks, so each case shows that document's outcome while the other three
// bundled documents are indexed regardless.
const UPREF = join(BUNDLED_PDFS, 'upref.pdf');
const isUpref = (input: string[]) => input.some((t) => t.includes('The upref package'));

const tmp = tempDir();
// One extraction pool for every run in this file: starting threads (and pdfjs in them) costs
// more than extracting the four small documents.
const extractPool = new ThreadPool<ExtractJob, ExtractedDocument>(
  new URL('../src/extract.ts', import.meta.url),
  {
    threads: 1,
  },
);
afterAll(async () => {
  await extractPool.drain();
  tmp.cleanup();
});
let server: Awaited<ReturnType<typeof startOpenAiServer>> | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function indexWith(
  name: string,
  behaviour: Behaviour,
  opts: Partial<HttpEmbedderOptions> = {},
) {
  server = await startOpenAiServer(behaviour);
  const embedder = new HttpEmbedder({
    baseUrl: server.url,
    model: 'fake-embed',
    backoffBase: 1,
    ...opts,
  });
  const db = join(tmp.dir, `${name}.db`);
  const summary = await runIndex({ inputs: [BUNDLED_PDFS], db, embedder, extractPool });
  const store = Store.open(db, { readonly: true });
  const indexed = store.db.prepare('SELECT path FROM documents ORDER BY path').pluck().all();
  const embedderRow = store.embedder();
  store.close();
  return {
    summary,
    indexed,
    embedderRow,
    uprefRequests: server.seen.filter((r) => isUpref(r.input)),
  };
}

describe('indexing with the HTTP embedder', () => {
  it('indexes every document and records the embedder with its dimension', async () => {
    const { summary, indexed, embedderRow } = await indexWith('ok', (_r, _n, _res, ok) => ok());
    expect(summary.indexed).toBe(4);
    expect(indexed).toHaveLength(4);
    expect(embedderRow).toEqual({ kind: 'http', model: 'fake-embed', dimension: 16 });
    expect(summary.embedder).toEqual({ kind: 'http', model: 'fake-embed', dimension: 16 });
  });

  it('429 with Retry-After, then success: the document is indexed after the wait', async () => {
    let throttled = false;
    const run = await indexWith('429', (req, _n, res, ok) => {
      if (isUpref(req.input) && !throttled) {
        throttled = true;
        res.writeHead(429, { 'retry-after': '1' }).end('rate limited');
      } else ok();
    });
    expect(run.summary.failed).toEqual([]);
    expect(run.indexed).toContain(UPREF);
    expect(run.uprefRequests).toHaveLength(2);
    expect(run.uprefRequests[1]!.at - run.uprefRequests[0]!.at).toBeGreaterThanOrEqual(950);
  });

  it('500s until the retry budget ends: that document fails, the others are indexed', async () => {
    const run = await indexWith(
      '500',
      (req, _n, res, ok) => (isUpref(req.input) ? res.writeHead(500).end('overloaded') : ok()),
      { retries: 2 },
    );
    expect(run.uprefRequests).toHaveLength(3);
    expect(run.summary.failed).toEqual([
      {
        path: UPREF,
        stage: 'embed',
        code: 'ERR_EMBED_HTTP',
        message: expect.stringMatching(/upref\.pdf: .*answered 500 .*gave up after 3 attempts/),
      },
    ]);
    expect(run.indexed).toHaveLength(3);
    expect(run.indexed).not.toContain(UPREF);
  });

  it('a hang past the timeout fails that document with ERR_EMBED_TIMEOUT', async () => {
    const run = await indexWith(
      'hang',
      (req, _n, _res, ok) => (isUpref(req.input) ? undefined : ok()),
      {
        timeout: 150,
        retries: 1,
      },
    );
    expect(run.uprefRequests).toHaveLength(2);
    expect(run.summary.failed).toEqual([
      expect.objectContaining({
        path: UPREF,
        stage: 'embed',
        code: 'ERR_EMBED_TIMEOUT',
        message: expect.stringMatching(/timed out after 150 ms/),
      }),
    ]);
    expect(run.indexed).toHaveLength(3);
  });

  it('malformed JSON fails that document at once (no retry)', async () => {
    const run = await indexWith('malformed', (req, _n, res, ok) =>
      isUpref(req.input)
        ? res.writeHead(200, { 'content-type': 'application/json' }).end('{"data": [{')
        : ok(),
    );
    expect(run.uprefRequests).toHaveLength(1);
    expect(run.summary.failed).toEqual([
      expect.objectContaining({ path: UPREF, stage: 'embed', code: 'ERR_EMBED_MALFORMED' }),
    ]);
    expect(run.indexed).toHaveLength(3);
  });

  it('refuses to add HTTP vectors to an index built by the lexical embedder', async () => {
    const db = join(tmp.dir, 'mixed.db');
    await runIndex({ inputs: [UPREF], db, extractPool });
    const embedder = new HttpEmbedder({ baseUrl: 'http://127.0.0.1:9', model: 'other' });
    await expect(
      runIndex({ inputs: [BUNDLED_PDFS], db, embedder, extractPool }),
    ).rejects.toMatchObject({
      code: 'ERR_EMBEDDER_MISMATCH',
    });
  });
});
