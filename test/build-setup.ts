/**
 * vitest globalSetup: some tests run built code, because a worker thread or child process that
 * starts from TypeScript pays for tsx's loader on every start (about half a second each here,
 * hundreds of starts per run): the ThreadPool crash-at-every-position tests import sluice's
 * dist/, the doc-index CLI tests run examples/doc-index/dist/cli.js with plain node. So that
 * they never test stale code, this rebuilds either output when a source file is newer than it.
 * `npm test` builds sluice first (pretest), so there it only builds the example, once.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

interface Output {
  name: string;
  /** Folders whose files the output is built from. */
  sources: string[];
  /** A file every build writes. */
  marker: string;
  tsconfig: string;
}

const OUTPUTS: Output[] = [
  {
    name: 'sluice',
    sources: [join(ROOT, 'src'), join(ROOT, 'tsconfig.json'), join(ROOT, 'tsconfig.build.json')],
    marker: join(ROOT, 'dist', 'index.js'),
    tsconfig: join(ROOT, 'tsconfig.build.json'),
  },
  {
    name: 'sluice-doc-index',
    sources: [
      join(ROOT, 'examples', 'doc-index', 'src'),
      join(ROOT, 'examples', 'doc-index', 'tsconfig.json'),
    ],
    marker: join(ROOT, 'examples', 'doc-index', 'dist', 'cli.js'),
    tsconfig: join(ROOT, 'examples', 'doc-index', 'tsconfig.json'),
  },
];

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs; // a deleted or renamed file changes its folder
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

export default function build(): void {
  for (const out of OUTPUTS) {
    const builtAt = existsSync(out.marker) ? statSync(out.marker).mtimeMs : -1;
    if (Math.max(...out.sources.map(newestMtime)) <= builtAt) continue;
    process.stderr.write(`build-setup: ${out.name}'s build is missing or stale: building it\n`);
    try {
      execFileSync(process.execPath, [TSC, '-p', out.tsconfig], { cwd: ROOT, stdio: 'pipe' });
    } catch (err) {
      // Type errors still emit (noEmitOnError is off): the typecheck step reports them.
      const output = String((err as { stdout?: unknown }).stdout ?? err);
      if (!existsSync(out.marker) || statSync(out.marker).mtimeMs <= builtAt) {
        throw new Error(`building ${out.name} failed:\n${output}`);
      }
      process.stderr.write(`build-setup: ${out.name} built with type errors:\n${output}\n`);
    }
  }
}
