/**
 * The published package as `npm pack` builds it: nothing runs at install, every source map and
 * declaration map resolves inside the tarball, and every export points at a file in it.
 * (publint and attw check the rest: `npm run check:package`.) Needs a built dist (`pretest`).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
  types: string;
  main: string;
};

/** The files `npm pack` would put in the tarball (scripts skipped: dist is built already). */
function packedFiles(): Set<string> {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const [report] = JSON.parse(out) as [{ files: { path: string }[] }];
  return new Set(report.files.map((f) => f.path));
}

describe('the packed package', () => {
  const files = packedFiles();

  it('runs no script when installed', () => {
    const install = ['preinstall', 'install', 'postinstall', 'prepare', 'prepublish'];
    expect(Object.keys(pkg.scripts).filter((name) => install.includes(name))).toEqual([]);
  });

  it('ships the sources its source maps and declaration maps point to', () => {
    const maps = [...files].filter((f) => f.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(10);
    const missing: string[] = [];
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(join(ROOT, map), 'utf8')) as {
        sources: string[];
      };
      for (const source of sources) {
        const target = posix.normalize(posix.join(posix.dirname(map), source));
        if (!files.has(target)) missing.push(`${map} -> ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('has every export, its types and main in the tarball', () => {
    const targets = [pkg.main, pkg.types];
    for (const entry of Object.values(pkg.exports)) {
      targets.push(...(typeof entry === 'string' ? [entry] : Object.values(entry)));
    }
    expect(targets.map((t) => posix.normalize(t)).filter((t) => !files.has(t))).toEqual([]);
  });
});
