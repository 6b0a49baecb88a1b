import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LexicalEmbedder } from '../src/lexical-embedder.js';
import { parseQuery, toMatchExpression } from '../src/query.js';
import { search } from '../src/search.js';
import { type IndexedDocument, Store } from '../src/store.js';
import { tempDir } from './helpers.js';

const embedder = new LexicalEmbedder({ dimension: 64 });

function doc(path: string, texts: string[], sha256 = 'h'): IndexedDocument {
  return {
    path,
    sha256,
    bytes: 100,
    pageCount: texts.length,
    chunks: texts.map((text, i) => ({ page: i + 1, ordinal: i, text })),
    vectors: texts.map((t) => embedder.embedOne(t)),
  };
}

const documents = (answer: { results: { document: string }[] }) =>
  answer.results.map((r) => r.document);

describe('parseQuery', () => {
  it('splits words, quoted phrases and prefixes, dropping stop words outside phrases', () => {
    expect(parseQuery('how do I rotate "the landscape pages" hyperlink*')).toEqual({
      terms: ['rotate'],
      phrases: [['the', 'landscape', 'pages']],
      prefixes: ['hyperlink'],
    });
  });

  it('quotes every piece, so FTS5 operators and punctuation typed by a user are plain text', () => {
    const match = toMatchExpression(parseQuery('foo-bar (NEAR) "unclosed OR: xy*'));
    expect(match).toBe('"unclosed or xy" OR "foo" OR "bar" OR "near"');
    expect(toMatchExpression(parseQuery('the of ?!'))).toBeUndefined();
  });
});

describe('search (full-text and fused)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: Store;
  beforeEach(() => {
    tmp = tempDir();
    store = Store.open(join(tmp.dir, 'index.db'));
    store.insert(
      doc('/landscape.pdf', ['intro', 'rotate landscape pages by 90 degrees']),
      embedder.identity,
    );
    store.insert(
      doc('/scattered.pdf', ['landscape photography', 'empty pages at the end']),
      embedder.identity,
    );
    store.insert(
      doc('/links.pdf', ['hyperlinks in the PDF output', 'colour of links']),
      embedder.identity,
    );
  });
  afterEach(() => {
    store.close();
    tmp.cleanup();
  });

  it('finds the document holding the words, best chunk first, with its page and a marked snippet', async () => {
    const answer = await search(store, 'rotating pages', { method: 'bm25' });
    expect(answer.results[0]).toMatchObject({
      document: '/landscape.pdf',
      page: 2,
      snippet: '**rotate** landscape **pages** by 90 degrees',
    });
    expect(answer.noGoodMatch).toBe(false);
  });

  it('a quoted phrase matches only its words adjacent and in order', async () => {
    const phrase = await search(store, '"landscape pages"', { method: 'bm25' });
    expect(documents(phrase)).toEqual(['/landscape.pdf']);
    const words = await search(store, 'landscape pages', { method: 'bm25' });
    expect(documents(words).sort()).toEqual(['/landscape.pdf', '/scattered.pdf']);
  });

  it('a prefix matches every word starting with it', async () => {
    const answer = await search(store, 'hyperlink*', { method: 'bm25' });
    expect(documents(answer)).toEqual(['/links.pdf']);
    expect(answer.results[0]!.snippet).toContain('**hyperlinks**');
  });

  it('groups results per document: one entry each, at most k', async () => {
    store.insert(doc('/more.pdf', ['pages', 'pages and pages', 'more pages']), embedder.identity);
    const answer = await search(store, 'pages', { method: 'bm25', k: 2 });
    expect(answer.results).toHaveLength(2);
    expect(new Set(documents(answer)).size).toBe(2);
  });

  it('hybrid fuses both legs; a word in no chunk is "no good match" with weak guesses', async () => {
    const found = await search(store, 'hyperlinks colour', { embedder });
    expect(found.method).toBe('hybrid');
    expect(found.results[0]!.document).toBe('/links.pdf');
    const none = await search(store, 'xyzzyqq', { embedder });
    expect(none.noGoodMatch).toBe(true);
    expect(none.evidence.coverage).toBe(0);
  });

  it('keeps the full-text index in step when a document is replaced', async () => {
    store.insert(doc('/links.pdf', ['bookmarks only'], 'h2'), embedder.identity);
    expect(documents(await search(store, 'hyperlinks', { method: 'bm25' }))).toEqual([]);
    expect(documents(await search(store, 'bookmarks', { method: 'bm25' }))).toEqual(['/links.pdf']);
  });

  it('refuses a vector method without the embedder, and a bad k', async () => {
    await expect(search(store, 'x', { method: 'vector' })).rejects.toThrow(
      /needs the index's embedder/,
    );
    await expect(search(store, 'x', { k: 0 })).rejects.toThrow(RangeError);
  });
});

describe('an index written before full-text search', () => {
  it('is migrated by a writable open (FTS filled from its chunks), and reported by a read-only one', async () => {
    const tmp = tempDir();
    try {
      const path = join(tmp.dir, 'old.db');
      // What version 0 wrote: the tables without chunks_fts.
      const old = new Database(path);
      old.exec(`
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE documents (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL,
          bytes INTEGER NOT NULL, pages INTEGER NOT NULL, chunks INTEGER NOT NULL, indexed_at TEXT NOT NULL);
        CREATE TABLE chunks (id INTEGER PRIMARY KEY, document_id INTEGER NOT NULL REFERENCES documents(id)
          ON DELETE CASCADE, page INTEGER NOT NULL, ordinal INTEGER NOT NULL, text TEXT NOT NULL);
        CREATE TABLE vectors (chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
          embedding BLOB NOT NULL);
        INSERT INTO documents VALUES (1, '/old.pdf', 'h', 1, 1, 1, 'then');
        INSERT INTO chunks VALUES (1, 1, 1, 0, 'an index from before');`);
      old.close();
      const readOnly = Store.open(path, { readonly: true });
      expect(readOnly.hasFullText()).toBe(false);
      readOnly.close();
      const migrated = Store.open(path);
      try {
        expect(migrated.hasFullText()).toBe(true);
        expect(migrated.db.pragma('user_version', { simple: true })).toBe(1);
        const answer = await search(migrated, 'before', { method: 'bm25' });
        expect(documents(answer)).toEqual(['/old.pdf']);
      } finally {
        migrated.close();
      }
    } finally {
      tmp.cleanup();
    }
  });
});
