import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from './cli-harness.js';
import { BUNDLED_PDFS, tempDir } from './helpers.js';

const { dir, cleanup } = tempDir('doc-index-bad-db-');
afterAll(cleanup);

// Found by a new-user trial: these crashed with a raw SqliteError stack and exit 1.
describe('CLI: a --db that is not an index', () => {
  // An empty file is also what a search sees while `index` is creating a new index.
  it('search on an empty file: usage error saying it holds no index yet, exit 2', async () => {
    const db = join(dir, 'empty.db');
    writeFileSync(db, '');
    const run = await cli(['search', 'xy', '--db', db]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${db} holds no index yet: it is empty (run "index" first)`);
    expect(run.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
  });

  it('index or search on a file that is not SQLite: usage error, exit 2', async () => {
    const db = join(dir, 'garbage.db');
    writeFileSync(db, 'garbage, not a database\n');
    for (const args of [
      ['search', 'xy', '--db', db],
      ['index', BUNDLED_PDFS, '--db', db],
    ]) {
      const run = await cli(args);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('is not a sluice-doc-index database: file is not a database');
    }
  });

  it('a query that matches nothing answers "no good match" with exit 3', async () => {
    const db = join(dir, 'index.db');
    expect((await cli(['index', BUNDLED_PDFS, '--db', db, '--threads', '1'])).code).toBe(0);
    const run = await cli(['search', 'zzzqqq', '--db', db]);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/^No good match for "zzzqqq"\./);
  });
});
