import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SearchAnswer } from '../src/search.js';
import { cli } from './cli-harness.js';
import { EXAMPLE_DIR, GOOD_PDFS, tempDir } from './helpers.js';

const tmp = tempDir();
const db = join(tmp.dir, 'corpus.db');
afterAll(() => tmp.cleanup());

beforeAll(async () => {
  const run = await cli(['index', GOOD_PDFS, '--db', db, '--threads', '1', '--progress', 'none']);
  expect(run.code).toBe(0);
});

async function searchJson(query: string, ...flags: string[]) {
  const run = await cli(['search', query, '--db', db, '-k', '5', '--json', ...flags]);
  return { code: run.code, answer: JSON.parse(run.stdout) as SearchAnswer };
}

describe('search over the committed corpus', () => {
  it('--json: query, method, verdict, evidence and per-document results', async () => {
    const { code, answer } = await searchJson('DeclareMathOperator');
    expect(code).toBe(0);
    // A lexical (hashing) index is searched with BM25 alone unless --method says otherwise.
    expect(answer).toMatchObject({
      query: 'DeclareMathOperator',
      method: 'bm25',
      noGoodMatch: false,
    });
    expect(answer.evidence.coverage).toBe(1);
    expect(answer.results[0]).toEqual({
      document: join(GOOD_PDFS, 'amsopn.pdf'),
      page: expect.any(Number),
      score: expect.any(Number),
      snippet: expect.stringContaining('**DeclareMathOperator**'),
    });
    const docs = answer.results.map((r) => r.document);
    expect(new Set(docs).size).toBe(docs.length);
    const hybrid = await searchJson('DeclareMathOperator', '--method', 'hybrid');
    expect(hybrid.answer.method).toBe('hybrid');
    expect(hybrid.answer.results[0]).toMatchObject({
      document: join(GOOD_PDFS, 'amsopn.pdf'),
      cosine: expect.any(Number),
    });
  });

  it('a phrase and a prefix find their document first', async () => {
    const phrase = await searchJson('"landscape environment"', '--method', 'bm25');
    expect(phrase.answer.results.map((r) => r.document)).toEqual([join(GOOD_PDFS, 'lscape.pdf')]);
    const prefix = await searchJson('subequation*', '--method', 'bm25');
    expect(prefix.answer.results[0]!.document).toBe(join(GOOD_PDFS, 'subeqn.pdf'));
  });

  it('no relevant document: exit 3 and "noGoodMatch": true', async () => {
    for (const query of ['xyzzyqq', 'how to bake sourdough bread']) {
      const { code, answer } = await searchJson(query);
      expect(code).toBe(3);
      expect(answer.noGoodMatch).toBe(true);
    }
    const text = await cli(['search', 'kubernetes pod autoscaling', '--db', db]);
    expect(text.code).toBe(3);
    expect(text.stdout).toMatch(/^No good match for "kubernetes pod autoscaling"\./);
  });

  it('an index without full-text search is upgraded by the first search, once', async () => {
    const old = join(tmp.dir, 'old.db');
    // What the previous version wrote: the same tables, without chunks_fts and its triggers.
    const source = new Database(db, { readonly: true });
    source.exec(`VACUUM INTO '${old}'`);
    source.close();
    const raw = new Database(old);
    raw.exec(`DROP TRIGGER chunks_fts_insert; DROP TRIGGER chunks_fts_delete;
      DROP TABLE chunks_fts; PRAGMA user_version = 0;`);
    raw.close();
    const first = await cli(['search', 'longtable', '--db', old, '--json']);
    expect(first.stderr).toContain('added the full-text index (one-time upgrade)');
    expect(first.code).toBe(0);
    expect(first.stderr).toContain('added the full-text index (one-time upgrade)');
    expect((JSON.parse(first.stdout) as SearchAnswer).results[0]!.document).toBe(
      join(GOOD_PDFS, 'lscape.pdf'),
    );
    const second = await cli(['search', 'longtable', '--db', old]);
    expect(second.stderr).toBe('');
  });
});

describe('npm run eval', () => {
  it('scores every method on the labelled queries (lexical methods here; the model is slow)', () => {
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(EXAMPLE_DIR, 'eval', 'run.ts'), '--no-semantic', '--json'],
      { encoding: 'utf8', cwd: EXAMPLE_DIR },
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const rows = JSON.parse(run.stdout) as Array<{
      method: string;
      byClass: Record<
        string,
        { queries: number; hitAt5: number; mrrAt5: number; noGoodMatch: number }
      >;
    }>;
    const bm25 = rows.find((r) => r.method === 'BM25 (porter)')!;
    expect(bm25.byClass.keyword!.hitAt5).toBeGreaterThanOrEqual(0.9);
    expect(bm25.byClass.paraphrase!.hitAt5).toBeGreaterThanOrEqual(0.7);
    expect(bm25.byClass.none!.noGoodMatch).toBeGreaterThanOrEqual(0.8);
    expect(rows.map((r) => r.method)).toContain('hashing vectors (old default)');
  });
});
