import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LexicalEmbedder } from '../src/lexical-embedder.js';
import { search, snippet } from '../src/search.js';
import { pendingDocuments } from '../src/sources.js';
import { type IndexedDocument, Store } from '../src/store.js';
import { tempDir } from './helpers.js';

const embedder = new LexicalEmbedder({ dimension: 64 });

function doc(path: string, sha256: string, texts: string[]): IndexedDocument {
  return {
    path,
    sha256,
    bytes: 100,
    pageCount: texts.length,
    chunks: texts.map((text, i) => ({ page: i + 1, ordinal: i, text })),
    vectors: texts.map((t) => embedder.embedOne(t)),
  };
}

const count = (store: Store, table: string) =>
  (store.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

describe('Store', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: Store;
  beforeEach(() => {
    tmp = tempDir();
    store = Store.open(join(tmp.dir, 'sub', 'index.db'));
  });
  afterEach(() => {
    store.close();
    tmp.cleanup();
  });

  it('opens in WAL mode and writes a document with its chunks and vectors', () => {
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    store.insert(doc('/a.pdf', 'h1', ['alpha page', 'beta page']), embedder.identity);
    expect([count(store, 'documents'), count(store, 'chunks'), count(store, 'vectors')]).toEqual([
      1, 2, 2,
    ]);
  });

  it('rolls a document back entirely when a write fails midway', () => {
    const broken = doc('/a.pdf', 'h1', ['alpha page', 'beta page', 'gamma page']);
    // The second vector blows up after the document row and the first chunk were written.
    broken.vectors[1] = {
      get buffer(): ArrayBuffer {
        throw new Error('disk on fire');
      },
    } as unknown as Float32Array;
    expect(() => store.insert(broken, embedder.identity)).toThrow(/disk on fire/);
    expect([count(store, 'documents'), count(store, 'chunks'), count(store, 'vectors')]).toEqual([
      0, 0, 0,
    ]);
  });

  it('keeps the old version when replacing a changed document fails', () => {
    store.insert(doc('/a.pdf', 'old', ['old text']), embedder.identity);
    const broken = doc('/a.pdf', 'new', ['new text', 'more']);
    broken.vectors.pop();
    expect(() => store.insert(broken, embedder.identity)).toThrow(/2 chunks but 1 vectors/);
    expect(store.isIndexed('/a.pdf', 'old')).toBe(true);
    store.insert(doc('/a.pdf', 'new', ['new text', 'more']), embedder.identity);
    expect(store.isIndexed('/a.pdf', 'new')).toBe(true);
    expect([count(store, 'documents'), count(store, 'chunks')]).toEqual([1, 2]);
  });

  it('skips documents whose path and content hash are already indexed', async () => {
    const a = join(tmp.dir, 'a.pdf');
    const b = join(tmp.dir, 'b.pdf');
    writeFileSync(a, 'content A');
    writeFileSync(b, 'content B');
    const sha = createHash('sha256').update('content A').digest('hex');
    store.insert(doc(a, sha, ['text of a']), embedder.identity);
    const skipped: string[] = [];
    const pending = [];
    for await (const job of pendingDocuments([a, b], store, { onSkip: (p) => skipped.push(p) }))
      pending.push(job.path);
    expect({ skipped, pending }).toEqual({ skipped: [a], pending: [b] });
    // Changed content is indexed again.
    writeFileSync(a, 'content A, edited');
    const again = [];
    for await (const job of pendingDocuments([a], store)) again.push(job.path);
    expect(again).toEqual([a]);
  });

  it('stops yielding once the stop signal fires', async () => {
    const stop = new AbortController();
    const seen: string[] = [];
    for await (const job of pendingDocuments(['/x/1.pdf', '/x/2.pdf', '/x/3.pdf'], store, {
      stop: stop.signal,
    })) {
      seen.push(job.path);
      stop.abort();
    }
    expect(seen).toEqual(['/x/1.pdf']);
  });

  it('records the embedder with the first document and refuses to mix in another one', () => {
    store.checkEmbedder(embedder.identity);
    expect(store.embedder()).toBeUndefined(); // a check writes nothing
    store.insert(doc('/a.pdf', 'h', ['text']), embedder.identity);
    expect(store.embedder()).toEqual({ kind: 'lexical', model: 'lexical-v1', dimension: 64 });
    expect(() => store.checkEmbedder({ kind: 'http', model: 'nomic-embed-text' })).toThrow(
      expect.objectContaining({ code: 'ERR_EMBEDDER_MISMATCH' }),
    );
    expect(() => store.claimEmbedder({ kind: 'http', model: 'nomic-embed-text' })).toThrow(
      expect.objectContaining({ code: 'ERR_EMBEDDER_MISMATCH' }),
    );
    expect(() =>
      store.claimEmbedder({ kind: 'lexical', model: 'lexical-v1', dimension: 1024 }),
    ).toThrow(/lexical lexical-v1 \(64 dims\)/);
  });

  it('an index without documents takes any embedder, even over a record left by an empty run', () => {
    store.claimEmbedder({ kind: 'http', model: 'm' });
    expect(() => store.checkEmbedder(embedder.identity)).not.toThrow();
    store.insert(doc('/a.pdf', 'h', ['text']), embedder.identity);
    expect(store.embedder()).toEqual({ kind: 'lexical', model: 'lexical-v1', dimension: 64 });
  });

  it('learns an HTTP embedder dimension from the first document', () => {
    const http = { kind: 'http' as const, model: 'm' };
    store.claimEmbedder(http);
    store.insert(doc('/a.pdf', 'h', ['text']), http);
    expect(store.embedder()).toEqual({ kind: 'http', model: 'm', dimension: 64 });
    const wide = { ...doc('/b.pdf', 'h', ['text']), vectors: [new Float32Array(128)] };
    expect(() => store.insert(wide, http)).toThrow(/64 dims/);
    expect(store.documentCount()).toBe(1);
  });

  it('ranks documents by BM25 and cosine, fused, with document, page and snippet', async () => {
    store.insert(
      doc('/colour.pdf', 'h1', ['intro', 'colour in tables and rows']),
      embedder.identity,
    );
    store.insert(
      doc('/memory.pdf', 'h2', ['memory errors detected by memcheck']),
      embedder.identity,
    );
    const { results: hits } = await search(store, 'memcheck memory errors', { embedder, k: 2 });
    expect(hits[0]).toMatchObject({
      document: '/memory.pdf',
      page: 1,
      snippet: '**memory** **errors** detected by **memcheck**',
    });
    expect(hits[0]!.score).toBeGreaterThan(hits[1]!.score);
  });
});

describe('snippet', () => {
  it('centres on the first query word and cuts on word boundaries', () => {
    const text = `${'alpha '.repeat(60)}needle ${'omega '.repeat(60)}`;
    const s = snippet(text, 'needle', 120);
    expect(s).toMatch(/^…alpha .*needle .*omega…$/);
    expect(s.length).toBeLessThanOrEqual(122);
    expect(snippet('short text', 'x')).toBe('short text');
  });
});
