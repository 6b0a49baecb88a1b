import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIndex } from '../src/indexer.js';
import { LexicalEmbedder } from '../src/lexical-embedder.js';
import type { Summary } from '../src/report.js';
import { search } from '../src/search.js';
import { Store } from '../src/store.js';
import { BAD_PDFS, GOOD_PDFS, tempDir } from './helpers.js';

// The real input: all 170 corpus PDFs plus the 5 broken files, through the real pipeline
// (extraction in a ThreadPool of 2 threads). About 10 s on 2 cores.
const good = readdirSync(GOOD_PDFS).filter((f) => f.endsWith('.pdf'));
const bad = readdirSync(BAD_PDFS);

describe('indexing the real corpus', () => {
  const tmp = tempDir();
  const db = join(tmp.dir, 'corpus.db');
  let summary: Summary;

  beforeAll(async () => {
    summary = await runIndex({
      inputs: [GOOD_PDFS, BAD_PDFS],
      db,
      threads: 2,
    });
  }, 120_000);
  afterAll(() => tmp.cleanup());

  it('indexes every good document and completes the run', () => {
    expect(good).toHaveLength(170);
    expect(summary.total).toBe(175);
    expect(summary.indexed).toBe(170);
    const store = Store.open(db, { readonly: true });
    try {
      const paths = store.db.prepare('SELECT path FROM documents ORDER BY path').pluck().all();
      expect(paths).toEqual(good.map((f) => join(GOOD_PDFS, f)).sort());
      const orphans = store.db
        .prepare(
          `SELECT count(*) FROM documents d WHERE d.chunks !=
             (SELECT count(*) FROM chunks c JOIN vectors v ON v.chunk_id = c.id WHERE c.document_id = d.id)`,
        )
        .pluck()
        .get();
      expect(orphans).toBe(0);
    } finally {
      store.close();
    }
  });

  it('fails each bad document with a clear error naming it', () => {
    expect(summary.failed.map((f) => f.path).sort()).toEqual(
      bad.map((f) => join(BAD_PDFS, f)).sort(),
    );
    for (const f of summary.failed) {
      expect(f).toMatchObject({ stage: 'extract', code: 'ERR_EXTRACT' });
      expect(f.message).toContain(f.path);
      expect(f.message).toMatch(/empty|not a PDF|not a readable PDF/);
    }
  });

  it('reports per-stage figures and names the bottleneck', () => {
    expect(summary.stages.map((s) => s.name)).toEqual(['extract', 'embed', 'insert']);
    expect(summary.stages.find((s) => s.name === 'extract')).toMatchObject({
      concurrency: 2,
      done: 175,
      failed: 5,
    });
    expect(summary.stages.find((s) => s.name === 'insert')).toMatchObject({ done: 170, failed: 0 });
    expect(summary.bottleneck).toBe('extract');
    expect(summary.docsPerSecond).toBeGreaterThan(0);
  });

  it('finds a known document first for a phrase taken from it', async () => {
    const store = Store.open(db, { readonly: true });
    try {
      const hits = await search(
        store,
        new LexicalEmbedder(),
        'Memcheck: a memory error detector',
        5,
      );
      expect(hits[0]!.path).toBe(join(GOOD_PDFS, 'valgrind_manual.pdf'));
      const tasn = await search(
        store,
        new LexicalEmbedder(),
        'DER encoding of ASN.1 structures',
        5,
      );
      expect(tasn[0]!.path).toBe(join(GOOD_PDFS, 'libtasn1.pdf'));
    } finally {
      store.close();
    }
  });

  it('skips every document on a re-run (same content hash)', async () => {
    const again = await runIndex({ inputs: [GOOD_PDFS], db, threads: 1 });
    expect({ indexed: again.indexed, skipped: again.skipped, failed: again.failed }).toEqual({
      indexed: 0,
      skipped: 170,
      failed: [],
    });
  });
});
