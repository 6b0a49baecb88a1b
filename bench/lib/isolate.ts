import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { bundleChild } from './bundle.js';
import type { ChildMessage, ParentMessage } from './child.js';
import { withMachineLock } from './lock.js';
import { repoRoot } from './paths.js';

/** One RSS reading of the child, `tMs` after it was forked. */
export interface RssSample {
  tMs: number;
  rssBytes: number;
}

/** Options of {@link runIsolated}. */
export interface IsolateOptions {
  /** How often the parent reads the child's RSS from /proc, in ms. Default 10. */
  sampleEveryMs?: number;
  /** Kill the child (SIGKILL) after this many ms and report `timedOut`. Default 600_000. */
  timeoutMs?: number;
  /** Extra `node` flags for the child, e.g. `['--max-old-space-size=16384']`. */
  nodeArgs?: string[];
}

/** What one isolated run produced. `value` is absent when the child failed or timed out. */
export interface IsolatedRun<R> {
  value?: R;
  error?: string;
  timedOut: boolean;
  /** Kernel high-water mark of the child's RSS (VmHWM / maxRSS), in bytes. */
  peakRssBytes: number;
  /** RSS read every `sampleEveryMs` while the child ran. */
  samples: RssSample[];
  /** RSS at the moments the case called `ctx.mark(label)` (read when the message arrived). */
  marks: Array<RssSample & { label: string }>;
  /** Fork to exit, in ms (includes start-up; cases time their own work). */
  wallMs: number;
}

interface ProcStatus {
  rssBytes: number;
  hwmBytes: number;
}

/** Reads VmRSS and VmHWM (Linux). Undefined once the process is gone. */
function readStatus(pid: number): ProcStatus | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
    return { rssBytes: kb('VmRSS') * 1024, hwmBytes: kb('VmHWM') * 1024 };
  } catch {
    return undefined;
  }
}

/**
 * Runs `cases[caseName](params)` of a suite in a fresh `node` process (its own heap, nothing
 * left over from other contenders) and watches its memory from the outside: the parent reads
 * /proc/<pid>/status every `sampleEveryMs`, which works even while the child's event loop is
 * saturated with microtasks (an in-process setInterval would never get to run). The peak is the
 * kernel's high-water mark, so nothing between two samples is missed. Children of all suites
 * take turns through a machine-wide lock (see lock.ts), so concurrent benchmark runs by other
 * people do not skew each other.
 */
export async function runIsolated<R>(
  suitePath: string,
  caseName: string,
  params: unknown,
  opts: IsolateOptions = {},
): Promise<IsolatedRun<R>> {
  const program = await bundleChild(suitePath);
  return withMachineLock(() => runChild<R>(program, caseName, params, opts));
}

async function runChild<R>(
  program: string,
  caseName: string,
  params: unknown,
  opts: IsolateOptions,
): Promise<IsolatedRun<R>> {
  const started = performance.now();
  const child = fork(program, [caseName, JSON.stringify(params)], {
    cwd: repoRoot,
    execArgv: opts.nodeArgs ?? [],
    env: { ...process.env, SLUICE_BENCH_CHILD: '1' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const run: IsolatedRun<R> = {
    timedOut: false,
    peakRssBytes: 0,
    samples: [],
    marks: [],
    wallMs: 0,
  };
  const pid = child.pid ?? -1;
  const sample = () => {
    const status = readStatus(pid);
    if (!status) return undefined;
    const reading = { tMs: performance.now() - started, rssBytes: status.rssBytes };
    run.peakRssBytes = Math.max(run.peakRssBytes, status.hwmBytes);
    return reading;
  };
  const sampler = setInterval(() => {
    const reading = sample();
    if (reading) run.samples.push(reading);
  }, opts.sampleEveryMs ?? 10);
  const killer = setTimeout(() => {
    run.timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 600_000);

  // A mark acknowledgement can race the child's exit; that is not a benchmark failure.
  child.on('error', () => {});
  child.on('message', (message: ChildMessage) => {
    if (message.type === 'mark') {
      const reading = sample();
      if (reading) run.marks.push({ ...reading, label: message.label });
      child.send({ type: 'marked', label: message.label } satisfies ParentMessage);
    } else if (message.type === 'result') {
      run.value = (message.value ?? null) as R;
      run.peakRssBytes = Math.max(run.peakRssBytes, message.maxRssBytes);
    } else {
      run.error = message.message;
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearInterval(sampler);
  clearTimeout(killer);
  run.wallMs = performance.now() - started;
  if (run.value === undefined && !run.error) {
    run.error = run.timedOut
      ? `killed after ${opts.timeoutMs ?? 600_000} ms`
      : `exited with ${code}`;
  }
  return run;
}

/**
 * RSS growth after a mark: the highest sampled RSS from the moment the case called
 * `ctx.mark(label)` on, minus the RSS at that mark. Sampled, so a spike shorter than the sample
 * interval can be missed; `peakRssBytes` (the kernel high-water mark) never misses one but covers
 * the child's whole life, warm-up included.
 */
export function rssGrowthSince(run: IsolatedRun<unknown>, label = 'start'): number {
  const mark = run.marks.find((m) => m.label === label);
  if (!mark) return Number.NaN;
  let highest = mark.rssBytes;
  for (const sample of run.samples) {
    if (sample.tMs >= mark.tMs && sample.rssBytes > highest) highest = sample.rssBytes;
  }
  return highest - mark.rssBytes;
}
