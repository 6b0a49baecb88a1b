import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Summary } from '../src/report.js';
import { BAD_PDFS, BUNDLED_PDFS, EXAMPLE_DIR, GOOD_PDFS, tempDir } from './helpers.js';
import { startOpenAiServer } from './openai-server.js';

// These tests run the built CLI as users do (node dist/cli.js), so they build it first.
const CLI = join(EXAMPLE_DIR, 'dist', 'cli.js');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(args: string[]): { child: ChildProcess; done: Promise<Run>; stderr: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done, stderr: () => stderr };
}

const cli = (args: string[]) => start(args).done;

/** Resolves once `predicate()` is true, checking every 20 ms (the child gives no other event). */
async function until(predicate: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function completeness(db: string) {
  const conn = new Database(db, { readonly: true });
  try {
    const docs = conn.prepare('SELECT count(*) FROM documents').pluck().get() as number;
    const incomplete = conn
      .prepare(
        `SELECT count(*) FROM documents d WHERE d.chunks !=
           (SELECT count(*) FROM chunks c JOIN vectors v ON v.chunk_id = c.id WHERE c.document_id = d.id)`,
      )
      .pluck()
      .get() as number;
    const orphans = conn
      .prepare(
        'SELECT count(*) FROM chunks c LEFT JOIN documents d ON d.id = c.document_id WHERE d.id IS NULL',
      )
      .pluck()
      .get() as number;
    return { docs, incomplete, orphans };
  } finally {
    conn.close();
  }
}

function documentCount(db: string): number {
  if (!existsSync(db)) return 0;
  const conn = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return conn.prepare('SELECT count(*) FROM documents').pluck().get() as number;
  } catch {
    return 0; // the schema is not there yet
  } finally {
    conn.close();
  }
}

const tmp = tempDir();
beforeAll(() => {
  execFileSync(process.execPath, [tsc, '-p', join(EXAMPLE_DIR, 'tsconfig.json')], {
    stdio: 'inherit',
  });
}, 60_000);
afterAll(() => tmp.cleanup());

describe('sluice-doc-index CLI', () => {
  it('documents its exit codes in --help and exits 0 for it', async () => {
    const run = await cli(['index', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/130 +interrupted by SIGINT/);
    expect(run.stdout).toMatch(/--threads <n>/);
  });

  it('exits 2 on usage errors', async () => {
    expect((await cli(['index', BUNDLED_PDFS])).code).toBe(2); // no --db
    const missing = await cli(['index', '/no/such/folder', '--db', join(tmp.dir, 'x.db')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no such file or folder: /no/such/folder');
    expect(
      (await cli(['index', BUNDLED_PDFS, '--db', join(tmp.dir, 'x.db'), '--threads', '0'])).code,
    ).toBe(2);
  });

  it('indexes, exits 1 listing failed documents, then searches', async () => {
    const db = join(tmp.dir, 'bundled.db');
    const run = await cli([
      'index',
      BUNDLED_PDFS,
      join(BAD_PDFS, 'empty.pdf'),
      '--db',
      db,
      '--progress',
      'none',
    ]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/indexed 4 · skipped 0 \(unchanged\) · failed 1/);
    expect(run.stdout).toMatch(/\[extract ERR_EXTRACT\] .*empty\.pdf: the file is empty/);
    expect(run.stdout).toMatch(/<- bottleneck/);
    const found = await cli(['search', 'multiple indexes', '--db', db, '-k', '3', '--json']);
    expect(found.code).toBe(0);
    expect(JSON.parse(found.stdout)[0].path).toBe(join(BUNDLED_PDFS, 'amsmidx.pdf'));
    // Searching with another embedder than the one that built the index is refused.
    const mixed = await cli([
      'search',
      'x',
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

  it('on SIGTERM commits only complete documents and exits 143; a re-run indexes exactly the rest', async () => {
    const db = join(tmp.dir, 'sigterm.db');
    const args = ['index', GOOD_PDFS, '--db', db, '--progress', 'none', '--json'];
    const first = start([...args, '--threads', '1']);
    await until(() => documentCount(db) >= 10, '10 committed documents');
    first.child.kill('SIGTERM');
    const stopped = await first.done;
    expect(stopped.code).toBe(143);
    const partial = JSON.parse(stopped.stdout) as Summary;
    expect(partial.interruptedBy).toBe('SIGTERM');
    expect(partial.failed).toEqual([]);
    expect(partial.indexed).toBeGreaterThanOrEqual(10);
    expect(partial.notStarted).toBeGreaterThan(0);
    expect(completeness(db)).toEqual({ docs: partial.indexed, incomplete: 0, orphans: 0 });

    const rerun = await start([...args, '--threads', '2']).done;
    expect(rerun.code).toBe(0);
    const rest = JSON.parse(rerun.stdout) as Summary;
    expect({ skipped: rest.skipped, indexed: rest.indexed }).toEqual({
      skipped: partial.indexed,
      indexed: 170 - partial.indexed,
    });
    expect(completeness(db)).toEqual({ docs: 170, incomplete: 0, orphans: 0 });
  }, 90_000);

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
