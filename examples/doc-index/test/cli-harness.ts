import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EXAMPLE_DIR, REPO_ROOT } from './helpers.js';

// The CLI runs built (`node dist/cli.js`, what the package's bin runs; test/build-setup.ts
// rebuilds dist/ when a source is newer): from source through tsx, every run and every thread
// it starts paid for tsx's loader, 2.5 s of a 4 s index run here, hundreds of runs per `npm
// test`. `startFromSource` runs it through tsx the way `tsx` users do in development (the
// ThreadPool then loads src/extract.ts in its threads through tsx too); cli.test.ts uses it.
export const CLI = join(EXAMPLE_DIR, 'dist', 'cli.js');
const CLI_SOURCE = join(EXAMPLE_DIR, 'src', 'cli.ts');

/** How a CLI run ended. */
export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running CLI; `stderr()` reads what it has printed so far. */
export interface Started {
  child: ChildProcess;
  done: Promise<Run>;
  stderr: () => string;
}

export function start(args: string[]): Started {
  return spawnCli([CLI, ...args]);
}

/** `start`, from source through tsx. */
export function startFromSource(args: string[]): Started {
  return spawnCli(['--import', 'tsx', CLI_SOURCE, ...args]);
}

function spawnCli(nodeArgs: string[]): Started {
  const child = spawn(process.execPath, nodeArgs, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done, stderr: () => stderr };
}

export const cli = (args: string[]) => start(args).done;

/** Resolves once `predicate()` holds, checking every 20 ms (the child emits no event for it). */
export async function until(
  predicate: () => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function query<T>(db: string, sql: string): T {
  const conn = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return conn.prepare(sql).pluck().get() as T;
  } finally {
    conn.close();
  }
}

/** Committed documents; 0 before the child has created the file and its schema. */
export function documentCount(db: string): number {
  if (!existsSync(db)) return 0;
  try {
    return query<number>(db, 'SELECT count(*) FROM documents');
  } catch {
    return 0;
  }
}

/** Documents, and how many of them lack chunks or vectors; chunks without a document. */
export function completeness(db: string) {
  return {
    docs: query<number>(db, 'SELECT count(*) FROM documents'),
    incomplete: query<number>(
      db,
      `SELECT count(*) FROM documents d WHERE d.chunks !=
         (SELECT count(*) FROM chunks c JOIN vectors v ON v.chunk_id = c.id WHERE c.document_id = d.id)`,
    ),
    orphans: query<number>(
      db,
      'SELECT count(*) FROM chunks c LEFT JOIN documents d ON d.id = c.document_id WHERE d.id IS NULL',
    ),
  };
}

/** Paths of the committed documents, sorted. */
export function indexedPaths(db: string): string[] {
  const conn = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return conn.prepare('SELECT path FROM documents ORDER BY path').pluck().all() as string[];
  } finally {
    conn.close();
  }
}
