/**
 * The package's bin is a committed launcher, not dist/cli.js: npm links workspace bins at
 * `npm ci`, before anything is built, and silently skips a bin whose file is missing (found by a
 * new-user trial: `npx sluice-doc-index` did not work on a fresh clone).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXAMPLE_DIR, tempDir } from './helpers.js';

const LAUNCHER = join(EXAMPLE_DIR, 'bin', 'sluice-doc-index.js');
const tmp = tempDir('doc-index-bin-');
afterAll(() => tmp.cleanup());

// A copy of the launcher in a package of its own, so that dist/ can be absent or a stub.
function launcherCopy(name: string): string {
  const root = join(tmp.dir, name);
  mkdirSync(join(root, 'bin'), { recursive: true });
  writeFileSync(join(root, 'package.json'), '{"type": "module"}\n');
  copyFileSync(LAUNCHER, join(root, 'bin', 'sluice-doc-index.js'));
  return root;
}

describe('the sluice-doc-index bin', () => {
  it('is the committed launcher, an executable node script', () => {
    const pkg = JSON.parse(readFileSync(join(EXAMPLE_DIR, 'package.json'), 'utf8'));
    expect(pkg.bin).toEqual({ 'sluice-doc-index': './bin/sluice-doc-index.js' });
    expect(readFileSync(LAUNCHER, 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
    // Committed as 100755: a checkout makes it executable by its owner whatever the umask (077
    // leaves no x for group and others; npm sets a bin's mode itself when it links it).
    expect(statSync(LAUNCHER).mode & 0o100).toBe(0o100);
  });

  it('before a build: says how to build and exits 2', () => {
    const root = launcherCopy('unbuilt');
    const run = spawnSync(join(root, 'bin', 'sluice-doc-index.js'), ['--help'], {
      encoding: 'utf8',
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('run `npm run build -w sluice-doc-index` first');
  });

  it('once built: runs dist/cli.js with the same arguments and exit code', () => {
    const root = launcherCopy('built');
    mkdirSync(join(root, 'dist'));
    writeFileSync(
      join(root, 'dist', 'cli.js'),
      'process.stdout.write(JSON.stringify(process.argv.slice(2)));\nprocess.exitCode = 7;\n',
    );
    const run = spawnSync(join(root, 'bin', 'sluice-doc-index.js'), ['search', 'a b'], {
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(7);
    expect(JSON.parse(run.stdout)).toEqual(['search', 'a b']);
  });
});
