import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

/** Version of an installed package as read from node_modules/<name>/package.json. */
export function packageVersion(name: string): string {
  try {
    const json = readFileSync(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8');
    return (JSON.parse(json) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

/** Version of sluice itself, from the root package.json. */
export function sluiceVersion(): string {
  const json = readFileSync(join(repoRoot, 'package.json'), 'utf8');
  return (JSON.parse(json) as { version: string }).version;
}

/** `abc1234` (HEAD), with ` + uncommitted src/` when src/ differs from it. */
export function sluiceCommit(): string {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8' }).trim();
    const dirty = git('status', '--porcelain', '--', 'src') !== '';
    return `${git('rev-parse', '--short', 'HEAD')}${dirty ? ' + uncommitted src/' : ''}`;
  } catch {
    return 'unknown commit';
  }
}

/** One line describing where the numbers come from: CPU, cores, memory, OS, Node. */
export function machineLine(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? 'unknown CPU';
  const gib = (os.totalmem() / 1024 ** 3).toFixed(0);
  return `${model}, ${cpus.length} cores, ${gib} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
}

/** `name version` for each package, comma separated: `p-map 7.1.1, fastq 1.20.3`. */
export function versionsLine(names: string[]): string {
  return names.map((name) => `${name} ${packageVersion(name)}`).join(', ');
}

/** Header printed at the top of every suite's output. */
export function printHeader(title: string, packages: string[] = []): void {
  console.log(`# ${title}`);
  // SLUICE_BENCH_DIST benchmarks another build: name it, not this checkout's commit.
  const dist = process.env.SLUICE_BENCH_DIST;
  const which = dist ? `the build in ${dist}` : `dist/ of ${sluiceCommit()}`;
  console.log(`${machineLine()}; sluice ${sluiceVersion()} (${which})`);
  if (packages.length) console.log(versionsLine(packages));
  // Other work on a small machine moves the numbers; say how busy it was.
  const load = os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  console.log(`${new Date().toISOString()}, load average ${load}\n`);
}
