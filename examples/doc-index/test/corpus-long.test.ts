import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Summary } from '../src/report.js';
import type { SearchAnswer } from '../src/search.js';
import { cli, completeness, documentCount, indexedPaths, start, until } from './cli-harness.js';
import { LONG_CORPUS, tempDir } from './helpers.js';

// Opt-in (SLUICE_LONG_CORPUS=<folder with pdf/ and bad/>): the project's 170-PDF corpus plus the
// five broken files, through the CLI. The first run is stopped with SIGTERM once 60 documents
// are committed; the re-run must index exactly the rest. Together they are one pass over the
// corpus (about 10-15 s on 2 cores). The tests in this file run in order and share the database.
// corpus.test.ts runs the same story on the committed corpus in every `npm test`.
if (!LONG_CORPUS) {
  console.log(
    'corpus-long.test.ts skipped: set SLUICE_LONG_CORPUS to a folder with pdf/ (170 PDFs) and bad/ to run it',
  );
}
const GOOD_PDFS = join(LONG_CORPUS ?? '.', 'pdf');
const BAD_PDFS = join(LONG_CORPUS ?? '.', 'bad');
const good = (LONG_CORPUS ? readdirSync(GOOD_PDFS) : [])
  .filter((f) => f.endsWith('.pdf'))
  .map((f) => join(GOOD_PDFS, f))
  .sort();
const bad = (LONG_CORPUS ? readdirSync(BAD_PDFS) : []).map((f) => join(BAD_PDFS, f)).sort();

describe.skipIf(!LONG_CORPUS)('the 170-PDF corpus, interrupted and resumed', () => {
  // vitest collects a skipped suite too: create the folder only when it runs.
  const tmp = LONG_CORPUS ? tempDir() : { dir: '', cleanup: () => {} };
  afterAll(() => tmp.cleanup());
  const db = join(tmp.dir, 'corpus.db');
  const args = [
    'index',
    GOOD_PDFS,
    BAD_PDFS,
    '--db',
    db,
    '--threads',
    '2',
    '--progress',
    'none',
    '--json',
  ];
  let first: Summary;
  let rerun: Summary;

  it('SIGTERM halfway: exits 143 and the database holds only complete documents', async () => {
    expect(good).toHaveLength(170);
    const run = start(args);
    await until(() => documentCount(db) >= 60, '60 committed documents');
    run.child.kill('SIGTERM');
    const stopped = await run.done;
    expect(stopped.code).toBe(143);
    first = JSON.parse(stopped.stdout) as Summary;
    expect(first.interruptedBy).toBe('SIGTERM');
    expect(first.indexed).toBeGreaterThanOrEqual(60);
    expect(first.notStarted).toBeGreaterThan(0);
    expect(completeness(db)).toEqual({ docs: first.indexed, incomplete: 0, orphans: 0 });
  }, 90_000);

  it('the re-run indexes exactly the rest and completes despite the bad files (exit 1)', async () => {
    const run = await cli(args);
    expect(run.code).toBe(1);
    rerun = JSON.parse(run.stdout) as Summary;
    expect({ skipped: rerun.skipped, indexed: rerun.indexed }).toEqual({
      skipped: first.indexed,
      indexed: 170 - first.indexed,
    });
    expect(indexedPaths(db)).toEqual(good);
    expect(completeness(db)).toEqual({ docs: 170, incomplete: 0, orphans: 0 });
  }, 90_000);

  it('fails every bad document with a clear error naming it, and only those', () => {
    expect(rerun.failed.map((f) => f.path).sort()).toEqual(bad);
    for (const f of rerun.failed) {
      expect(f).toMatchObject({ stage: 'extract', code: 'ERR_EXTRACT' });
      expect(f.message).toContain(f.path);
      expect(f.message).toMatch(/: (the file is empty|not a PDF|not a readable PDF) \(?/);
    }
  });

  it('reports per-stage figures and names extraction as the bottleneck', () => {
    expect(rerun.stages.map((s) => s.name)).toEqual(['extract', 'embed', 'insert']);
    expect(rerun.stages[0]).toMatchObject({ concurrency: 2, failed: 5 });
    expect(rerun.stages[2]).toMatchObject({ done: 170 - first.indexed, failed: 0 });
    expect(rerun.bottleneck).toBe('extract');
    expect(rerun.docsPerSecond).toBeGreaterThan(0);
  });

  it('a phrase from a known document finds that document first', async () => {
    const search = async (q: string) =>
      (
        JSON.parse(
          (await cli(['search', q, '--db', db, '-k', '3', '--json'])).stdout,
        ) as SearchAnswer
      ).results;
    expect((await search('Memcheck: a memory error detector'))[0]!.document).toBe(
      join(GOOD_PDFS, 'valgrind_manual.pdf'),
    );
    expect((await search('DER encoding of ASN.1 structures'))[0]!.document).toBe(
      join(GOOD_PDFS, 'libtasn1.pdf'),
    );
  });
});
