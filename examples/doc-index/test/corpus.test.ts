import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Summary } from '../src/report.js';
import type { SearchAnswer } from '../src/search.js';
import { cli, completeness, indexedPaths, start, until } from './cli-harness.js';
import { BAD_PDFS, GOOD_COUNT, GOOD_PDFS, tempDir } from './helpers.js';
import { startOpenAiServer } from './openai-server.js';

// The committed corpus (test/corpus: twelve real PDFs and the five broken files) through the
// CLI. The first run is stopped with SIGTERM while documents are in flight; the re-run must index
// exactly the rest. The embeddings server holds every request until the signal has been sent,
// so the interruption always lands mid-run, however fast the machine. The tests in this file run
// in order and share the database. corpus-long.test.ts tells the same story on 170 PDFs (opt-in).
const good = readdirSync(GOOD_PDFS)
  .filter((f) => f.endsWith('.pdf'))
  .map((f) => join(GOOD_PDFS, f))
  .sort();
const bad = readdirSync(BAD_PDFS)
  .map((f) => join(BAD_PDFS, f))
  .sort();

/** Answers embeddings requests once `open()` was called; holds them until then. */
function gate() {
  let isOpen = false;
  const held: Array<() => void> = [];
  return {
    behaviour: (_r: unknown, _n: number, _res: unknown, ok: () => void) =>
      isOpen ? ok() : void held.push(ok),
    open() {
      isOpen = true;
      for (const ok of held.splice(0)) ok();
    },
  };
}

describe('the committed corpus, interrupted and resumed', () => {
  const tmp = tempDir();
  const embeddings = gate();
  const server = startOpenAiServer(embeddings.behaviour, { dimension: 1024 });
  afterAll(async () => {
    await (await server).close();
    tmp.cleanup();
  });
  const db = join(tmp.dir, 'corpus.db');
  const args = async () => [
    'index',
    GOOD_PDFS,
    BAD_PDFS,
    '--db',
    db,
    '--threads',
    '1',
    '--embed-concurrency',
    '1',
    '--embed-url',
    (await server).url,
    '--embed-model',
    'test',
    '--progress',
    'none',
    '--json',
  ];
  let first: Summary;
  let rerun: Summary;

  it('SIGTERM mid-run: exits 143 and the database holds only complete documents', async () => {
    expect(good).toHaveLength(GOOD_COUNT);
    const run = start(await args());
    // Once a document waits for its vectors, the pipeline fills and stalls there.
    const { seen } = await server;
    await until(() => seen.length > 0 || run.child.exitCode !== null, 'an embeddings request');
    run.child.kill('SIGTERM');
    await until(() => run.stderr().includes('SIGTERM: not starting new documents'), 'the drain');
    embeddings.open();
    const stopped = await run.done;
    expect(stopped.code, stopped.stderr).toBe(143);
    first = JSON.parse(stopped.stdout) as Summary;
    expect(first.interruptedBy).toBe('SIGTERM');
    expect(first.indexed).toBeGreaterThanOrEqual(1);
    expect(first.notStarted).toBeGreaterThan(0);
    expect(completeness(db)).toEqual({ docs: first.indexed, incomplete: 0, orphans: 0 });
  });

  it('the re-run indexes exactly the rest and completes despite the bad files (exit 1)', async () => {
    const run = await cli(await args());
    expect(run.code, run.stderr).toBe(1);
    rerun = JSON.parse(run.stdout) as Summary;
    expect({ skipped: rerun.skipped, indexed: rerun.indexed }).toEqual({
      skipped: first.indexed,
      indexed: GOOD_COUNT - first.indexed,
    });
    expect(indexedPaths(db)).toEqual(good);
    expect(completeness(db)).toEqual({ docs: GOOD_COUNT, incomplete: 0, orphans: 0 });
  });

  it('fails every bad document with a clear error naming it, and only those', () => {
    expect(rerun.failed.map((f) => f.path).sort()).toEqual(bad);
    for (const f of rerun.failed) {
      expect(f).toMatchObject({ stage: 'extract', code: 'ERR_EXTRACT' });
      expect(f.message).toContain(f.path);
      expect(f.message).toMatch(/: (the file is empty|not a PDF|not a readable PDF) \(?/);
    }
  });

  it('reports per-stage figures', () => {
    expect(rerun.stages.map((s) => s.name)).toEqual(['extract', 'embed', 'insert']);
    expect(rerun.stages[0]).toMatchObject({ concurrency: 1, failed: 5 });
    expect(rerun.stages[2]).toMatchObject({ done: GOOD_COUNT - first.indexed, failed: 0 });
    expect(rerun.docsPerSecond).toBeGreaterThan(0);
  });

  it('a phrase from a known document finds that document first', async () => {
    const { url } = await server;
    const search = async (q: string) =>
      (
        JSON.parse(
          (await cli(['search', q, '--db', db, '-k', '3', '--json', '--embed-url', url])).stdout,
        ) as SearchAnswer
      ).results;
    expect((await search('fonts.conf font configuration files'))[0]!.document).toBe(
      join(GOOD_PDFS, 'fontconfig-user.pdf'),
    );
    expect(
      (await search('the landscape environment is rotated through 90 degrees'))[0]!.document,
    ).toBe(join(GOOD_PDFS, 'lscape.pdf'));
  });
});
