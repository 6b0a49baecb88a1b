// Runs every bench/*.ts suite (or the ones named), one after another, each in its own process.
//   npm run bench                 all suites
//   npm run bench -- core flood   only these (names without .ts)
//   npm run bench -- core --quick flags after the names are passed to every suite
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt } from './lib/build.js';
import { benchDir, repoRoot } from './lib/paths.js';

const args = process.argv.slice(2);
const wanted = args.filter((arg) => !arg.startsWith('-'));
const flags = args.filter((arg) => arg.startsWith('-'));
const suites = readdirSync(benchDir)
  .filter((file) => file.endsWith('.ts') && file !== 'run.ts')
  .map((file) => file.slice(0, -3))
  .sort();

const unknown = wanted.filter((name) => !suites.includes(name));
if (unknown.length) {
  console.error(`bench: no suite named ${unknown.join(', ')}; have: ${suites.join(', ')}`);
  process.exit(2);
}

ensureBuilt();
const failed: string[] = [];
for (const suite of wanted.length ? wanted : suites) {
  console.error(`\nbench: ${suite}`);
  const tsx = join(repoRoot, 'node_modules', 'tsx', 'dist', 'cli.mjs');
  const { status } = spawnSync(process.execPath, [tsx, join(benchDir, `${suite}.ts`), ...flags], {
    cwd: repoRoot,
    stdio: 'inherit',
    env: { ...process.env, SLUICE_BENCH_BUILT: '1' },
  });
  if (status !== 0) failed.push(suite);
}
if (failed.length) {
  console.error(`bench: failed: ${failed.join(', ')}`);
  process.exit(1);
}
