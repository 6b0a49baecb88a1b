/**
 * `npm run fuzz [-- --seconds N] [-- <vitest file filters>]`: runs the fuzz suite for about N
 * seconds in total (default 60; or FUZZ_SECONDS), one file at a time, each property taking its
 * share, then prints the cases run per area and the replay line (FUZZ_SEED / FUZZ_PATH) of every
 * failure. FUZZ_ALL=1 or FUZZ_OPEN=flag,… turn known-open attacks back on (see known-open.ts).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
let seconds = Number(process.env.FUZZ_SECONDS ?? 60);
const filters: string[] = [];
for (let i = 0; i < args.length; i++) {
  const arg = args[i] as string;
  if (arg === '--seconds') seconds = Number(args[++i]);
  else if (arg.startsWith('--seconds=')) seconds = Number(arg.slice('--seconds='.length));
  else filters.push(arg);
}
if (!(seconds > 0)) {
  console.error(`--seconds must be a positive number, got ${seconds}`);
  process.exit(2);
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const vitest = fileURLToPath(new URL('../../node_modules/vitest/vitest.mjs', import.meta.url));
const targets = filters.length > 0 ? filters : ['test/fuzz/'];
console.log(`[fuzz] running ${targets.join(' ')} for about ${seconds} s`);
const child = spawn(process.execPath, [vitest, 'run', ...targets, '--no-file-parallelism'], {
  cwd: root,
  env: {
    ...process.env,
    FUZZ_SECONDS: String(seconds),
    FUZZ_REPORT: '1',
    // One property per file: the time is shared among the files asked for.
    ...(filters.length > 0 ? { FUZZ_PROPERTY_COUNT: String(filters.length) } : {}),
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
/** Colour codes vitest adds to output lines. */
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
const summary: string[] = [];
let pending = '';
child.stdout.on('data', (chunk: Buffer) => {
  process.stdout.write(chunk);
  pending += chunk.toString();
  const lines = pending.split('\n');
  pending = lines.pop() ?? '';
  for (const raw of lines) {
    const line = raw.replace(ANSI, '');
    if (line.startsWith('[fuzz]')) summary.push(line);
  }
});
child.on('exit', (code) => {
  console.log('\n[fuzz] summary');
  for (const line of summary) console.log(`  ${line}`);
  console.log(
    code === 0
      ? '[fuzz] no failures'
      : '[fuzz] failures above: replay one with its FUZZ_SEED and FUZZ_PATH',
  );
  process.exit(code ?? 1);
});
