// Instructions per burst, counted by callgrind: repeatable whatever else the machine runs, so
// two builds can be compared to a per cent on a busy machine where timings swing ±20%.
//   npx tsx bench/instructions.ts [--dist=name=/dir ...] [--n=10000,100000] [--steady=300000]
// Each figure is one fresh `node --predictable` process (V8 then compiles and collects garbage on
// the main thread, in a fixed order, so the count is the same run after run) minus the same
// process with a burst of 0 jobs (module loading and warm-up excluded). `cold`: the process's
// first burst; `steady`: one burst after three of 50,000 jobs, per job. Needs valgrind (skipped,
// with a message, without it). What --predictable changes against a real process: no background
// compile or GC threads, so the counts include work that normally runs beside the burst.
import { execFileSync, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { machineLine, packageVersion, sluiceCommit } from './lib/machine.js';
import { benchDir, repoRoot } from './lib/paths.js';

const child = join(benchDir, 'lib', 'burst-child.mjs');

function flag(name: string): string[] {
  return process.argv
    .slice(2)
    .filter((arg) => arg.startsWith(`--${name}=`))
    .map((arg) => arg.slice(name.length + 3));
}

/** Instructions (`Ir`) of one process, as callgrind's summary line reports them. */
function instructions(contender: string, dist: string, warm: number, n: number): number {
  const run = spawnSync(
    'valgrind',
    [
      '--tool=callgrind',
      '--callgrind-out-file=/dev/null',
      process.execPath,
      '--predictable',
      child,
      contender,
      dist,
      String(warm),
      String(n),
    ],
    { cwd: repoRoot, encoding: 'utf8' },
  );
  const match = /Collected : (\d+)/.exec(run.stderr);
  if (run.status !== 0 || !match) {
    throw new Error(`callgrind ${contender} ${n}: exit ${run.status}\n${run.stderr.slice(-2000)}`);
  }
  return Number(match[1]);
}

function hasValgrind(): boolean {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const millions = (ir: number) => (ir / 1e6).toFixed(1);

function main(): void {
  if (!hasValgrind()) {
    console.log('bench/instructions: valgrind is not installed; skipped');
    return;
  }
  const dists = flag('dist').map((spec) => {
    const at = spec.indexOf('=');
    return { name: spec.slice(0, at), dir: resolve(spec.slice(at + 1)) };
  });
  dists.unshift({ name: 'current', dir: join(repoRoot, 'dist') });
  const sizes = (flag('n')[0] ?? '10000,100000').split(',').map(Number);
  const steadyN = Number(flag('steady')[0] ?? 300_000);

  console.log(`# Instructions per burst (callgrind, node --predictable)\n`);
  console.log(`${machineLine()}; sluice ${sluiceCommit()}; p-map ${packageVersion('p-map')}\n`);
  const pmapBase = instructions('p-map', '', 0, 0);
  const pmap = new Map(sizes.map((n) => [n, instructions('p-map', '', 0, n) - pmapBase]));
  console.log(
    `| contender | ${sizes.map((n) => `cold ${n.toLocaleString('en-US')} (M)`).join(' | ')} | ${sizes.map((n) => `/ p-map @ ${n.toLocaleString('en-US')}`).join(' | ')} | steady, per job |`,
  );
  console.log(`| --- |${' ---: |'.repeat(sizes.length * 2 + 1)}`);
  console.log(
    `| p-map | ${sizes.map((n) => millions(pmap.get(n)!)).join(' | ')} | ${sizes.map(() => '1.00x').join(' | ')} | |`,
  );
  for (const { name, dir } of dists) {
    const base = instructions('runPool', dir, 0, 0);
    const cold = sizes.map((n) => instructions('runPool', dir, 0, n) - base);
    const warmBase = instructions('runPool', dir, 3, 0);
    const perJob = (instructions('runPool', dir, 3, steadyN) - warmBase) / steadyN;
    const ratios = cold.map((ir, i) => `${(ir / pmap.get(sizes[i]!)!).toFixed(2)}x`);
    console.log(
      `| runPool @ ${name} | ${cold.map(millions).join(' | ')} | ${ratios.join(' | ')} | ${Math.round(perJob)} |`,
    );
  }
}

main();
