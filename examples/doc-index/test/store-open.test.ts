/**
 * Opening one new index from several processes at once (two `serve`s sharing an index start
 * together). Regression: CI saw "cannot open the index …: database is locked" because SQLite
 * answers some lock races with SQLITE_BUSY at once instead of waiting out busy_timeout.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { retryWhileBusy, Store } from '../src/store.js';
import { EXAMPLE_DIR, tempDir } from './helpers.js';

const busy = (code: string) => Object.assign(new Error('database is locked'), { code });

describe('retryWhileBusy', () => {
  it('tries again after SQLITE_BUSY and its extended codes, then returns', () => {
    const codes = ['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_RECOVERY'];
    let calls = 0;
    retryWhileBusy(() => {
      const code = codes[calls++];
      if (code) throw busy(code);
    }, 5_000);
    expect(calls).toBe(4);
  });

  it('rethrows any other error at once', () => {
    let calls = 0;
    const notADb = Object.assign(new Error('file is not a database'), { code: 'SQLITE_NOTADB' });
    expect(() =>
      retryWhileBusy(() => {
        calls++;
        throw notADb;
      }, 5_000),
    ).toThrow(notADb);
    expect(calls).toBe(1);
  });

  it('gives up with the last BUSY error once the deadline has passed', () => {
    let calls = 0;
    expect(() =>
      retryWhileBusy(() => {
        calls++;
        throw busy('SQLITE_BUSY');
      }, 20),
    ).toThrow(/database is locked/);
    // 5 + 10 ms of backoff fit in 20 ms, the next 20 ms wait does not.
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThanOrEqual(3);
  });
});

describe('Store.open from several processes at once', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir('store-open-');
  });
  afterEach(() => tmp.cleanup());

  // A smoke test of the whole set-up under real contention. It does not reliably fail on the old
  // code (the race hit ~1 open in 100), so the retry itself is pinned down deterministically by
  // the retryWhileBusy tests above.
  it('every process opens the same new index, and the schema exists once', async () => {
    const db = join(tmp.dir, 'shared.db');
    const storeUrl = pathToFileURL(join(EXAMPLE_DIR, 'src', 'store.ts')).href;
    // Each child sleeps (not spins: 8 spinning processes on 2 cores would take turns) until a
    // common start time, so that their set-ups overlap.
    const startAt = Date.now() + 2500;
    const script = `
      const { Store } = await import(${JSON.stringify(storeUrl)});
      const wait = ${startAt} - Date.now();
      if (wait > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
      Store.open(${JSON.stringify(db)}).close();
      console.log('opened');`;
    const runs = await Promise.all(
      Array.from({ length: 8 }, () => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', '--input-type=module', '-e', script],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (out += d));
        return new Promise<{ code: number | null; out: string }>((resolve) =>
          child.on('close', (code) => resolve({ code, out })),
        );
      }),
    );
    for (const r of runs) expect(r, r.out).toEqual({ code: 0, out: 'opened\n' });
    const conn = new Database(db, { readonly: true });
    const tables = conn
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
      .pluck()
      .all();
    expect(conn.pragma('journal_mode', { simple: true })).toBe('wal');
    conn.close();
    // FTS5 keeps its index in shadow tables named after the virtual table.
    expect(tables).toEqual([
      'chunks',
      'chunks_fts',
      'chunks_fts_config',
      'chunks_fts_data',
      'chunks_fts_docsize',
      'chunks_fts_idx',
      'documents',
      'meta',
      'vectors',
    ]);
  });

  it('a file that is not SQLite still fails at once as not an index', () => {
    const path = join(tmp.dir, 'not.db');
    writeFileSync(path, 'plain text, not a database'.repeat(100));
    const started = Date.now();
    expect(() => Store.open(path)).toThrow(/is not a sluice-doc-index database/);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
