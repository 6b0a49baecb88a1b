/**
 * Problems found by a second new-user trial of the CLI, one describe per problem.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
} from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { runIndex } from '../src/indexer.js';
import { formatSummary, type Summary } from '../src/report.js';
import { Store } from '../src/store.js';
import { CLI, cli, type Run } from './cli-harness.js';
import { BUNDLED_PDFS, REPO_ROOT, tempDir } from './helpers.js';
import { startOpenAiServer } from './openai-server.js';

const tmp = tempDir('doc-index-trial-');
afterAll(() => tmp.cleanup());

const AMSMIDX = join(BUNDLED_PDFS, 'amsmidx.pdf');

/** The CLI, as `cli()` runs it, with an extra command in front (e.g. to drop root). */
function cliAs(prefix: string[], args: string[], stdio: ('pipe' | number)[]): ChildProcess {
  const command = [...prefix, process.execPath, CLI, ...args];
  return spawn(command[0]!, command.slice(1), { cwd: REPO_ROOT, stdio: ['ignore', ...stdio] });
}

function finished(child: ChildProcess): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  return new Promise((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
}

/**
 * The write end of a pipe whose reader is already gone: every write to it fails with EPIPE, as
 * in `… | head -1` once head has exited, but with no race about who goes first.
 */
function closedPipe(name: string): number {
  const fifo = join(tmp.dir, name);
  expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(fifo, constants.O_WRONLY);
  closeSync(reader);
  return writer;
}

function tableNames(db: string): string[] {
  const conn = new Database(db, { readonly: true });
  try {
    return conn
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
      .pluck()
      .all() as string[];
  } finally {
    conn.close();
  }
}

describe('every failure names its document, whatever the error class', () => {
  it('an extraction timeout (raised by the ThreadPool, which knows no path) names the PDF', async () => {
    const summary = await runIndex({
      inputs: [BUNDLED_PDFS],
      db: join(tmp.dir, 'timeout.db'),
      threads: 1,
      extractTimeout: 50,
      extractModule: new URL('./fixtures/hang-extract.ts', import.meta.url),
    });
    expect(summary.failed).toHaveLength(4);
    for (const f of summary.failed) {
      expect(f).toMatchObject({ stage: 'extract', code: 'ERR_TIMEOUT' });
      expect(f.message.startsWith(`${f.path}: `)).toBe(true);
      expect(f.message).toMatch(/timed out/);
    }
    expect(formatSummary(summary)).toContain(`[extract ERR_TIMEOUT] ${AMSMIDX}: `);
  });
});

describe('the embedder is recorded with the first document, not at start', () => {
  it('a run that embedded nothing leaves the index open to any embedder', async () => {
    const server = await startOpenAiServer((_req, _n, res) => res.writeHead(500).end('down'));
    const db = join(tmp.dir, 'nothing-embedded.db');
    try {
      const failed = await cli([
        ...['index', AMSMIDX, '--db', db, '--threads', '1', '--progress', 'none'],
        ...['--embed-url', server.url, '--embed-model', 'm', '--embed-retries', '0'],
      ]);
      expect(failed.code).toBe(1);
      expect(failed.stdout).toMatch(/indexed 0 · .*failed 1/);
    } finally {
      await server.close();
    }
    const store = Store.open(db, { readonly: true });
    expect(store.embedder()).toBeUndefined();
    store.close();
    const lexical = await cli(['index', AMSMIDX, '--db', db, '--threads', '1']);
    expect(lexical.stderr).not.toContain('refusing to mix');
    expect(lexical.code).toBe(0);
    expect(lexical.stdout).toContain('indexed 1 ·');
  });
});

describe('a closed stdout or stderr (`| head -1`) ends quietly', () => {
  it('search and --help into a closed pipe: exit 0, no EPIPE stack trace', async () => {
    const db = join(tmp.dir, 'epipe.db');
    expect((await cli(['index', AMSMIDX, '--db', db, '--threads', '1'])).code).toBe(0);
    for (const args of [['search', 'multiple indexes', '--db', db], ['--help']]) {
      const stdout = closedPipe(`stdout-${args[0]}`);
      const run = finished(cliAs([], args, [stdout, 'pipe']));
      closeSync(stdout);
      const { code, stderr } = await run;
      expect(stderr).toBe('');
      expect(code).toBe(0);
    }
  });

  it('a closed stderr: the command still ends with its own exit code, not a crash', async () => {
    const stderr = closedPipe('stderr');
    const run = finished(cliAs([], ['index', '--threads', 'x'], ['pipe', stderr]));
    closeSync(stderr);
    // The usage error goes to the closed stderr; the exit code still says what happened.
    expect(await run).toMatchObject({ code: 2, stdout: '' });
  });
});

describe('--db that is not an index', () => {
  it('an unrelated SQLite database is refused (exit 2) and left as it was', async () => {
    const db = join(tmp.dir, 'app.db');
    const conn = new Database(db);
    conn.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)');
    conn.close();
    const run = await cli(['index', AMSMIDX, '--db', db]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      `${db} is not a sluice-doc-index database: it has other tables (users) and none of documents, chunks, vectors, meta`,
    );
    expect(tableNames(db)).toEqual(['users']);
    const check = new Database(db, { readonly: true });
    expect(check.pragma('journal_mode', { simple: true })).toBe('delete');
    check.close();
  });

  it('an empty SQLite file becomes an index', async () => {
    const db = join(tmp.dir, 'blank.db');
    new Database(db).close();
    expect((await cli(['index', AMSMIDX, '--db', db, '--threads', '1'])).code).toBe(0);
    expect(tableNames(db).filter((t) => !t.startsWith('chunks_fts'))).toEqual([
      'chunks',
      'documents',
      'meta',
      'vectors',
    ]);
    expect(tableNames(db)).toContain('chunks_fts');
  });

  // Root writes through chmod 444, so the test runs the CLI as nobody when it can.
  const uid = process.getuid?.();
  const canBeNobody = uid !== 0 || spawnSync('setpriv', ['--version']).status === 0;
  it.skipIf(!canBeNobody)(
    'a read-only index is refused at open (exit 2), before any document is extracted',
    async () => {
      const dir = join(tmp.dir, 'readonly');
      mkdirSync(dir);
      const db = join(dir, 'index.db');
      Store.open(db).close();
      chmodSync(db, 0o444);
      let asNobody: string[] = [];
      if (uid === 0) {
        // nobody owns the folder (SQLite may create -wal/-shm there) but not the file.
        chownSync(dir, 65534, 65534);
        chmodSync(tmp.dir, 0o755);
        asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
      }
      const run = await finished(
        cliAs(asNobody, ['index', AMSMIDX, '--db', db, '--threads', '1'], ['pipe', 'pipe']),
      );
      expect(run.stderr).toContain(
        `sluice-doc-index: cannot write the index ${db}: attempt to write a readonly database`,
      );
      expect(run.code).toBe(2);
      expect(run.stdout).toBe(''); // no summary: nothing was started
    },
  );
});

describe('inputs without a PDF', () => {
  it('are a usage error (exit 2), and no database is created', async () => {
    const dir = join(tmp.dir, 'no-pdfs');
    mkdirSync(dir);
    const db = join(tmp.dir, 'none.db');
    const run = await cli(['index', dir, '--db', db]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`no PDF files found in ${dir}`);
    expect(existsSync(db)).toBe(false);
  });

  it('a re-run that skips every PDF is a success with no bottleneck named', async () => {
    const db = join(tmp.dir, 'rerun.db');
    const args = ['index', AMSMIDX, '--db', db, '--threads', '1', '--progress', 'none'];
    expect((await cli(args)).code).toBe(0);
    const rerun = await cli([...args, '--json']);
    expect(rerun.code).toBe(0);
    const summary = JSON.parse(rerun.stdout) as Summary;
    expect(summary).toMatchObject({ indexed: 0, skipped: 1, total: 1 });
    expect(summary.bottleneck).toBeUndefined();
    expect(formatSummary(summary)).not.toContain('bottleneck\n');
    expect(formatSummary(summary)).not.toContain('<- bottleneck');
  });
});

describe('flag parsing', () => {
  const db = join(tmp.dir, 'flags.db');
  it.each([
    [['--threads', '0x2'], "argument '0x2' is invalid. expected an integer from 1 to "],
    [['--threads', '1e1'], "argument '1e1' is invalid. expected an integer from 1 to "],
    [['--threads', '2abc'], "argument '2abc' is invalid. expected an integer from 1 to "],
    [['--threads', ' 2'], "argument ' 2' is invalid. expected an integer from 1 to "],
    [['--embed-model', 'x'], '--embed-model needs --embed-url'],
    [['--embed-batch', '8'], '--embed-batch needs --embed-url'],
    [['--embed-retries', '0'], '--embed-retries needs --embed-url'],
    [['--embed-requests', 'auto'], '--embed-requests needs --embed-url'],
    [['--embed-requests', 'some'], "argument 'some' is invalid. expected auto or an integer >= 1"],
    [['--embed-url', 'http://127.0.0.1:9'], '--embed-url needs --embed-model'],
    [
      ['--embed-url', 'ftp://x', '--embed-model', 'm'],
      "argument 'ftp://x' is invalid. expected an http:// or https:// URL",
    ],
    [['--embed-url', 'not a url', '--embed-model', 'm'], 'expected an http:// or https:// URL'],
  ])('index %j: usage error, exit 2', async (flags, message) => {
    const run = await cli(['index', AMSMIDX, '--db', db, ...flags]);
    expect(run.stderr).toContain(message);
    expect(run.code).toBe(2);
    expect(existsSync(db)).toBe(false); // refused before the index was touched
  });

  it('search --embed-model without --embed-url: usage error, exit 2', async () => {
    const run = await cli(['search', 'x', '--db', db, '--embed-model', 'm']);
    expect(run.stderr).toContain('--embed-model needs --embed-url');
    expect(run.code).toBe(2);
  });
});

describe('top-level --help', () => {
  it('says which command exits how on signals (serve drains to exit 0)', async () => {
    const run = await cli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /0 +success; for serve also a drain after the first SIGINT\/SIGTERM/,
    );
    expect(run.stdout).toMatch(/130 +index: interrupted by SIGINT/);
    expect(run.stdout).toMatch(/serve: a second SIGINT aborted/);
  });
});
