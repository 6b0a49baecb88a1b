import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { withMachineLockSync } from './lock.js';
import { repoRoot } from './paths.js';

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const mtime = entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs;
    if (mtime > newest) newest = mtime;
  }
  return newest;
}

function distMtime(): number {
  try {
    return statSync(join(repoRoot, 'dist', 'index.js')).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Benchmarks import the built `dist/`, not `src/` through a loader, so the numbers are those of the
 * published package. Rebuilds with `npm run build` when any file under src/ is newer than
 * dist/index.js. A failing build is reported and the existing dist/ is used, so a half-written
 * core elsewhere in the tree does not block a run.
 */
export function ensureBuilt(): void {
  if (process.env.SLUICE_BENCH_BUILT || process.env.SLUICE_BENCH_DIST) return;
  // Under the machine lock: a child of another suite loading dist/ mid-rewrite would fail.
  withMachineLockSync(() => {
    if (newestMtime(join(repoRoot, 'src')) <= distMtime()) return;
    console.error('bench: src/ is newer than dist/, running `npm run build` ...');
    try {
      execFileSync('npm', ['run', '--silent', 'build'], { cwd: repoRoot, stdio: 'inherit' });
    } catch {
      console.error('bench: build failed; benchmarking the dist/ that exists');
    }
  });
  process.env.SLUICE_BENCH_BUILT = '1';
}
