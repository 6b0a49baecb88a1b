import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SearchAnswer } from '../src/search.js';
import { cli, type Run } from './cli-harness.js';
import { BUNDLED_PDFS, tempDir } from './helpers.js';

// Found by attacking `search` and `index` as a user would: each input below once answered with a
// stack trace, a hang, a misleading SQLite message or a "no good match" for a search never made.
const { dir, cleanup } = tempDir('doc-index-user-errors-');
const db = join(dir, 'index.db');
afterAll(cleanup);

// A file name with an escape sequence and a newline in it: a terminal must not run them.
const EVIL_NAME = 'evil\u001b[2Jname\nx.pdf';

beforeAll(async () => {
  const docs = join(dir, 'docs');
  mkdirSync(docs);
  copyFileSync(join(BUNDLED_PDFS, 'amsmidx.pdf'), join(docs, 'amsmidx.pdf'));
  copyFileSync(join(BUNDLED_PDFS, 'upref.pdf'), join(docs, EVIL_NAME));
  const run = await cli(['index', docs, '--db', db, '--threads', '1', '--progress', 'none']);
  expect(run.code).toBe(0);
});

const search = (...args: string[]) => cli(['search', ...args]);

/** A user error: exit 2, one line on stderr naming `named`, nothing on stdout, no stack trace. */
function expectUsageError(run: Run, named: string): void {
  expect(run.code).toBe(2);
  expect(run.stdout).toBe('');
  expect(run.stderr).toContain(named);
  expect(run.stderr.trim().split('\n')).toHaveLength(1);
  expect(run.stderr).not.toMatch(/\n\s+at /);
}

describe('search: queries that are not what FTS5 or the shell expects', () => {
  it('a query without a word ("", a quote, "*", "(", an emoji) is a usage error quoting it, exit 2', async () => {
    for (const [query, shown] of [
      ['', '""'],
      ['"', '"\\""'],
      ['*', '"*"'],
      ['(', '"("'],
      ['🔥📄', '"🔥📄"'],
    ] as const) {
      const run = await search(query, '--db', db);
      expectUsageError(run, `the query ${shown} has no word to search for`);
    }
    // --json too: a usage error is not an answer, so nothing is printed on stdout.
    expectUsageError(await search('*', '--db', db, '--json'), 'has no word to search for');
  }, 180_000);

  it('a query of common words only is searched (exit 3) and stderr says they were ignored and how to quote one', async () => {
    const run = await search('OR NOT', '--db', db, '--json');
    expect(run.code).toBe(3);
    expect((JSON.parse(run.stdout) as SearchAnswer).noGoodMatch).toBe(true);
    expect(run.stderr).toContain('only common words, which full-text search ignores (or, not)');
    expect(run.stderr).toContain(`'"or"'`);
    const quoted = await search('"multiple indexes"', '--db', db);
    expect(quoted.code).toBe(0);
    expect(quoted.stderr).toBe('');
  });

  it('fewer hits than -k asked for: text output says results are one per document and how many matched', async () => {
    const run = await search('multiple indexes', '--db', db, '-k', '3');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^1\. .*amsmidx\.pdf/m);
    expect(run.stdout).not.toMatch(/^2\. /m);
    expect(run.stdout).toContain(
      '(1 of 3 asked for: results are one per document, and only 1 document matches)',
    );
    const json = JSON.parse(
      (await search('multiple indexes', '--db', db, '-k', '3', '--json')).stdout,
    );
    expect((json as SearchAnswer).results).toHaveLength(1);
  });

  it('FTS5 syntax in a query is plain text: NEAR(, a:b, {col}:, ^, AND never fail', async () => {
    for (const query of ['NEAR(index', 'a:b index', '{text}: index', '^index', 'index AND (']) {
      const run = await search(query, '--db', db, '--json');
      expect(run.stderr).toBe('');
      expect([0, 3]).toContain(run.code);
      expect((JSON.parse(run.stdout) as SearchAnswer).query).toBe(query);
    }
  }, 180_000);

  it('text output quotes the query inertly: an escape sequence stays visible, a 10,000-character query is cut to 100', async () => {
    const esc = await search('zzq\u001b[31mred', '--db', db);
    expect(esc.code).toBe(3);
    expect(esc.stdout).not.toContain('\u001b');
    expect(esc.stdout).toContain('No good match for "zzq\\u001b[31mred".');
    const long = await search('q'.repeat(10_000), '--db', db);
    expect(long.code).toBe(3);
    expect(long.stdout).toBe(`No good match for "${'q'.repeat(100)}"….\n`);
    // --json keeps the query whole: it is data, not display.
    const json = await search('q'.repeat(10_000), '--db', db, '--json');
    expect((JSON.parse(json.stdout) as SearchAnswer).query).toHaveLength(10_000);
  });

  it('text output replaces control characters in document paths and snippets', async () => {
    const run = await search('hyperref', '--db', db);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('evil\ufffd[2Jname\ufffdx.pdf');
    expect(run.stdout).not.toContain('\u001b');
    expect(run.stdout).not.toContain('name\nx.pdf');
    const json = await search('hyperref', '--db', db, '--json');
    const documents = (JSON.parse(json.stdout) as SearchAnswer).results.map((r) => r.document);
    expect(documents).toContain(join(dir, 'docs', EVIL_NAME)); // --json keeps the real path
  });

  it('a query starting with "-" is refused as an option with a hint to put it after --, where it is searched', async () => {
    const refused = await search('-x', '--db', db);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("unknown option '-x'");
    expect(refused.stderr).toContain('a query starting with "-" goes after --');
    const after = await search('--db', db, '--json', '--', '-indexes');
    expect(after.code).toBe(0);
    expect((JSON.parse(after.stdout) as SearchAnswer).query).toBe('-indexes');
  });

  it('search --help explains the query syntax and how to pass a query starting with "-"', async () => {
    const run = await search('--help');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Nothing is FTS5 syntax');
    expect(run.stdout).toContain('search --db index.db -- "-x"');
  });
});

describe('--db that cannot be an index', () => {
  it('a directory: usage error naming it, for search and index', async () => {
    for (const args of [
      ['search', 'index', '--db', dir],
      ['index', BUNDLED_PDFS, '--db', dir],
    ]) {
      expectUsageError(await cli(args), `cannot open the index ${dir}: it is a directory`);
    }
  });

  it('a FIFO is refused at once (a read-only open of one would wait for a writer forever)', async () => {
    const fifo = join(dir, 'fifo.db');
    execFileSync('mkfifo', [fifo]);
    for (const args of [
      ['search', 'index', '--db', fifo],
      ['index', BUNDLED_PDFS, '--db', fifo],
    ]) {
      expectUsageError(await cli(args), `cannot open the index ${fifo}: it is not a regular file`);
    }
  });

  it('a character device (/dev/null) is not taken for an empty index', async () => {
    expectUsageError(
      await search('index', '--db', '/dev/null'),
      'cannot open the index /dev/null: it is not a regular file',
    );
  });

  it('a missing file: search says there is no index there, not SQLite\'s "unable to open"', async () => {
    const missing = join(dir, 'missing.db');
    const run = await search('index', '--db', missing);
    expectUsageError(run, `no index at ${missing}: no such file (run "index" first)`);
    expect(run.stderr).not.toContain('unable to open');
  });

  it('an index whose recorded embedder is unreadable: usage error naming the file, for search and index', async () => {
    for (const value of ['{oops', '{"kind":"martian"}', 'null']) {
      const damaged = join(dir, `damaged-${value.length}.db`);
      copyFileSync(db, damaged);
      const conn = new Database(damaged);
      conn.prepare(`UPDATE meta SET value = ? WHERE key = 'embedder'`).run(value);
      conn.close();
      for (const args of [
        ['search', 'index', '--db', damaged],
        ['index', BUNDLED_PDFS, '--db', damaged, '--progress', 'none'],
      ]) {
        expectUsageError(
          await cli(args),
          `${damaged} is a damaged index: its recorded embedder is not readable`,
        );
      }
    }
  }, 180_000);
});

describe('index inputs', () => {
  it('a symbolic link loop is named as one, not as a missing file', async () => {
    const loop = join(dir, 'loop');
    symlinkSync(loop, loop);
    expectUsageError(
      await cli(['index', loop, '--db', join(dir, 'loop.db')]),
      `cannot read ${loop}: too many symbolic links`,
    );
  });
});

describe('index: the run report and metrics flags', () => {
  it('a --metrics-port already in use is a usage error naming the port, exit 2, before any document is read', async () => {
    const { createServer } = await import('node:net');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const fresh = join(dir, 'metrics-port.db');
      const run = await cli(['index', BUNDLED_PDFS, '--db', fresh, '--metrics-port', `${port}`]);
      expectUsageError(
        run,
        `--metrics-port ${port}: cannot listen on 127.0.0.1:${port} (EADDRINUSE)`,
      );
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it('a huge --threads or --embed-threads is a usage error naming the range, before any thread starts', async () => {
    const fresh = join(dir, 'threads.db');
    for (const flag of ['--threads', '--embed-threads']) {
      const run = await cli(['index', BUNDLED_PDFS, '--db', fresh, flag, '99999999999']);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(
        /argument '99999999999' is invalid. expected an integer from 1 to \d+/,
      );
    }
  });

  it('an empty --report is a usage error, not a report silently skipped', async () => {
    const run = await cli(['index', BUNDLED_PDFS, '--db', join(dir, 'r.db'), '--report', '']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("'--report <file.html>' argument '' is invalid");
  });
});
