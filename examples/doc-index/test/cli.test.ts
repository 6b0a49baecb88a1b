import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Summary } from '../src/report.js';
import { cli, completeness, start, startFromSource, until } from './cli-harness.js';
import { BAD_PDFS, BUNDLED_PDFS, tempDir } from './helpers.js';
import { startOpenAiServer } from './openai-server.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('sluice-doc-index CLI', () => {
  it('documents its exit codes and signals in --help and exits 0 for it', async () => {
    const run = await cli(['index', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/130 +interrupted by SIGINT/);
    expect(run.stdout).toMatch(/a second one aborts/);
    expect(run.stdout).toMatch(/--threads <n>/);
  });

  it('exits 2 on usage errors', async () => {
    expect((await cli(['index', BUNDLED_PDFS])).code).toBe(2); // no --db
    const missing = await cli(['index', '/no/such/folder', '--db', join(tmp.dir, 'x.db')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no such file or folder: /no/such/folder');
    const zero = await cli([
      'index',
      BUNDLED_PDFS,
      '--db',
      join(tmp.dir, 'x.db'),
      '--threads',
      '0',
    ]);
    expect(zero.code).toBe(2);
  });

  it('indexes, exits 1 listing the failed document, then searches', async () => {
    const db = join(tmp.dir, 'bundled.db');
    const args = ['index', BUNDLED_PDFS, join(BAD_PDFS, 'empty.pdf'), '--db', db, '--threads', '1'];
    // From source, as in development: src/cli.ts through tsx, src/extract.ts in the threads.
    const run = await startFromSource([...args, '--progress', 'lines']).done;
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/indexed 4 · skipped 0 \(unchanged\) · failed 1/);
    expect(run.stdout).toMatch(/\[extract ERR_EXTRACT\] .*empty\.pdf: the file is empty/);
    expect(run.stdout).toMatch(/<- bottleneck/);
    const found = await cli(['search', 'multiple indexes', '--db', db, '-k', '3', '--json']);
    expect(found.code).toBe(0);
    expect(JSON.parse(found.stdout).results[0]).toMatchObject({
      document: join(BUNDLED_PDFS, 'amsmidx.pdf'),
      page: 1,
    });
    // Searching with another embedder than the one that built the index is refused.
    const mixed = await cli([
      'search',
      'indexes',
      '--db',
      db,
      '--embed-url',
      'http://127.0.0.1:9',
      '--embed-model',
      'm',
    ]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toMatch(/built with embedder lexical lexical-v1 \(1024 dims\)/);
  });

  it('a second signal aborts the documents in flight: exit 143, nothing half-written', async () => {
    // Every embeddings request hangs, so documents are provably in flight when the signals come.
    const server = await startOpenAiServer(() => {});
    try {
      const db = join(tmp.dir, 'abort.db');
      const run = start([
        'index',
        BUNDLED_PDFS,
        '--db',
        db,
        '--threads',
        '1',
        '--progress',
        'none',
        '--json',
        '--embed-url',
        server.url,
        '--embed-model',
        'm',
        '--embed-timeout',
        '60000',
      ]);
      await until(() => server.seen.length > 0, 'an embeddings request');
      run.child.kill('SIGTERM');
      await until(
        () => run.stderr().includes('not starting new documents'),
        'the first signal to register',
      );
      // Past the 100 ms window in which a repeat counts as the same signal (by design).
      await new Promise((r) => setTimeout(r, 150));
      run.child.kill('SIGTERM');
      const aborted = await run.done;
      expect(aborted.code).toBe(143);
      expect(aborted.stderr).toContain('SIGTERM again: aborting the documents in flight');
      const summary = JSON.parse(aborted.stdout) as Summary;
      expect(summary).toMatchObject({ indexed: 0, failed: [], interruptedBy: 'SIGTERM' });
      expect(summary.canceled).toBeGreaterThan(0);
      expect(completeness(db)).toEqual({ docs: 0, incomplete: 0, orphans: 0 });
    } finally {
      await server.close();
    }
  });
});
