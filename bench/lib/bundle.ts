import { mkdirSync, rmSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { build } from 'esbuild';
import { benchDir, repoRoot, scratchDir } from './paths.js';

const distDir = join(repoRoot, 'dist');
/**
 * `SLUICE_BENCH_DIST=/some/dir` benchmarks another build of sluice (e.g. an older commit built
 * with `tsc -p tsconfig.build.json --outDir /some/dir`) for before/after comparisons.
 */
const distOverride = process.env.SLUICE_BENCH_DIST
  ? resolve(process.env.SLUICE_BENCH_DIST)
  : undefined;
const bundles = new Map<string, Promise<string>>();

/**
 * Turns a suite file into one plain `.mjs` child program, so isolated children run on bare
 * `node` without a TypeScript loader (tsx's loader thread alone adds ~35 MB of RSS and would
 * blur memory figures). The suite's own code and bench/lib are inlined; npm packages and the
 * built sluice `dist/` stay real imports, so every contender runs exactly its published code.
 * Cached per suite for the life of the parent process.
 */
export function bundleChild(suitePath: string): Promise<string> {
  const absolute = resolve(suitePath);
  let pending = bundles.get(absolute);
  if (!pending) {
    pending = bundle(absolute);
    bundles.set(absolute, pending);
  }
  return pending;
}

async function bundle(suitePath: string): Promise<string> {
  mkdirSync(scratchDir, { recursive: true });
  const outfile = join(scratchDir, `${basename(suitePath, '.ts')}.${process.pid}.child.mjs`);
  process.once('exit', () => rmSync(outfile, { force: true }));
  const entry = [
    `import { cases } from ${JSON.stringify(suitePath)};`,
    `import { serveChild } from ${JSON.stringify(join(benchDir, 'lib', 'child.ts'))};`,
    'await serveChild(cases);',
  ].join('\n');
  await build({
    stdin: { contents: entry, resolveDir: benchDir, loader: 'ts', sourcefile: 'child-entry.ts' },
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
    plugins: [
      {
        // The parent-side helpers come along with bench/lib; their esbuild import must not load
        // esbuild into every child (its memory would count against the contender).
        name: 'no-esbuild-in-child',
        setup(b) {
          b.onResolve({ filter: /^esbuild$/ }, () => ({ path: 'esbuild', namespace: 'stub' }));
          b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
            contents:
              'export function build() { throw new Error("esbuild is not loaded in children"); }',
            loader: 'js',
          }));
        },
      },
      {
        // Keep sluice as a real import of the built package rather than a bundled copy: its
        // root and every subpath (dist/brokers/…), each taken from SLUICE_BENCH_DIST when set.
        name: 'sluice-dist-external',
        setup(b) {
          b.onResolve({ filter: /dist\/.*\.js$/ }, (args) => {
            const path = resolve(args.resolveDir, args.path);
            if (!path.startsWith(`${distDir}/`)) return undefined;
            const within = relative(distDir, path);
            return { path: distOverride ? join(distOverride, within) : path, external: true };
          });
        },
      },
    ],
  });
  return outfile;
}
