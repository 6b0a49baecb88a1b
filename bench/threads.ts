// ThreadPool throughput: sluice against piscina, tinypool and workerpool, each contender in its
// own child process, on three workloads (tiny also against a hand-written batched loop of two
// bare worker_threads at batch 1/16/64/256: the message-passing limit to aim at):
//   tiny      100,000 jobs of x*2, all submitted at once           -> jobs/s, peak RSS
//   sha256    SHA-256 of a 64 KiB buffer (copied in), 1 and 2 threads -> jobs/s, scaling
//   transfer  a fresh 1 MiB ArrayBuffer moved in and moved back out, 8 jobs in flight -> jobs/s, peak RSS
//   npx tsx bench/threads.ts [--runs=3] [--quick] [--only=tiny,sha256] [--contenders=sluice,piscina]
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  type CaseContext,
  type Cases,
  count,
  ensureBuilt,
  type IsolatedRun,
  isMain,
  loadSluice,
  markdownTable,
  median,
  mib,
  ns,
  printHeader,
  range,
  ratio,
  runIsolated,
  scratchDir,
  timed,
} from './lib/index.js';

type Workload = 'tiny' | 'sha256' | 'transfer';
type Lib = 'sluice' | 'piscina' | 'tinypool' | 'workerpool' | 'raw';

const workerDir = join(scratchDir, 'threads-workers');
const KIB64 = 64 * 1024;
const MIB = 1024 * 1024;

// ---- worker modules (written to the scratch folder; every library gets the same work) ----

const BODIES: Record<Workload, string> = {
  tiny: 'return job * 2;',
  sha256: "return createHash('sha256').update(job).digest('hex');",
  transfer: 'new Uint8Array(job)[0] += 1;\n  return MOVE(job);',
};

function workerSource(lib: Lib, workload: Workload): string {
  if (lib === 'raw') return RAW_WORKER.replace('BODY', BODIES[workload]);
  const move: Record<Exclude<Lib, 'raw'>, string> = {
    sluice: '',
    piscina: "import { move } from 'piscina';",
    tinypool: "import { Tinypool } from 'tinypool';",
    workerpool: "import workerpool from 'workerpool';",
  };
  const moveCall: Record<Exclude<Lib, 'raw'>, string> = {
    sluice: '(ctx.transfer([job]), job)',
    piscina: 'move(job)',
    tinypool: 'Tinypool.move(job)',
    workerpool: 'new workerpool.Transfer(job, [job])',
  };
  const body = BODIES[workload].replace(/MOVE\(job\)/, moveCall[lib]);
  const head = `import { createHash } from 'node:crypto';\n${move[lib]}\n`;
  if (lib === 'workerpool') {
    return `${head}function run(job) {\n  ${body}\n}\nworkerpool.worker({ run });\n`;
  }
  return `${head}export default function run(job, ctx) {\n  ${body}\n}\n`;
}

function workerFile(lib: Lib, workload: Workload): string {
  return join(workerDir, `${lib}-${workload}.mjs`);
}

function writeWorkers(): void {
  mkdirSync(workerDir, { recursive: true });
  for (const lib of ['sluice', 'piscina', 'tinypool', 'workerpool'] as const) {
    for (const workload of ['tiny', 'sha256', 'transfer'] as const) {
      writeFileSync(workerFile(lib, workload), workerSource(lib, workload));
    }
  }
  writeFileSync(workerFile('raw', 'tiny'), workerSource('raw', 'tiny'));
}

// ---- the raw batched loop: no pool, the least a batch round trip can cost ----

// Each message in is an array of jobs, each message out the array of their results.
const RAW_WORKER = `import { parentPort } from 'node:worker_threads';
function run(job) {
  BODY
}
parentPort.on('message', (jobs) => {
  const out = new Array(jobs.length);
  for (let i = 0; i < jobs.length; i++) out[i] = run(jobs[i]);
  parentPort.postMessage(out);
});
`;

/**
 * Two bare workers fed in batches of \`batch\` jobs, two batches in flight per worker (so a
 * worker never waits for a round trip), each batch's results back in one message. Dispatch
 * runs once per event-loop turn, as sluice's does. No cancellation, timeouts, crash handling,
 * stats or backpressure: what is left is the cost of the messages themselves.
 */
async function openRaw(file: string, threads: number, batch: number): Promise<Contender> {
  const { Worker } = await import('node:worker_threads');
  type Waiter = (value: unknown) => void;
  const queue: { job: unknown; resolve: Waiter }[] = [];
  let head = 0;
  let pending = false;
  const lanes = Array.from({ length: threads }, () => {
    const worker = new Worker(file);
    const inFlight: Waiter[][] = [];
    worker.on('message', (out: unknown[]) => {
      const waiters = inFlight.shift() ?? [];
      for (let i = 0; i < out.length; i++) waiters[i]?.(out[i]);
      schedule();
    });
    return { worker, inFlight };
  });
  const dispatch = () => {
    pending = false;
    for (const lane of lanes) {
      while (lane.inFlight.length < 2 && head < queue.length) {
        const jobs: unknown[] = [];
        const waiters: Waiter[] = [];
        for (; jobs.length < batch && head < queue.length; head++) {
          const item = queue[head]!;
          jobs.push(item.job);
          waiters.push(item.resolve);
        }
        lane.inFlight.push(waiters);
        lane.worker.postMessage(jobs);
      }
    }
    if (head === queue.length) {
      queue.length = 0;
      head = 0;
    }
  };
  const schedule = () => {
    if (pending) return;
    pending = true;
    setImmediate(dispatch);
  };
  return {
    run: (job) =>
      new Promise((resolve) => {
        queue.push({ job, resolve });
        schedule();
      }),
    close: () => Promise.all(lanes.map((lane) => lane.worker.terminate())),
  };
}

// ---- contenders (inside the child) ----

interface Contender {
  run(job: unknown, transfer?: ArrayBuffer[]): Promise<unknown>;
  close(): Promise<unknown>;
}

interface CaseParams {
  workload: Workload;
  threads: number;
  n: number;
  warmup: number;
  /** sluice only: the queueSize option ('default' = 2 x threads, 'unbounded' = Infinity). */
  queueSize?: number | 'default' | 'unbounded';
  /** raw only: jobs per message. */
  batch?: number;
}

async function open(lib: Lib, p: CaseParams): Promise<Contender> {
  const file = workerFile(lib, p.workload);
  const threads = p.threads;
  switch (lib) {
    case 'raw':
      return openRaw(file, threads, p.batch ?? 64);
    case 'sluice': {
      const { ThreadPool } = await loadSluice();
      const queueSize =
        p.queueSize === 'default'
          ? undefined
          : p.queueSize === 'unbounded'
            ? Number.POSITIVE_INFINITY
            : p.queueSize;
      const pool = new ThreadPool(pathToFileURL(file), { threads, queueSize });
      await pool.ready;
      return {
        run: (job, transfer) => pool.run(job, transfer ? { transfer } : undefined),
        close: () => pool.drain(),
      };
    }
    case 'piscina':
    case 'tinypool': {
      // Each library is loaded only in its own child, so none carries another's code in its RSS.
      // tinypool is a piscina fork: same constructor options, run() and destroy().
      const Pool =
        lib === 'piscina' ? (await import('piscina')).Piscina : (await import('tinypool')).Tinypool;
      const pool = new Pool({
        filename: pathToFileURL(file).href,
        minThreads: threads,
        maxThreads: threads,
      });
      return {
        run: (job, transfer) => pool.run(job, transfer ? { transferList: transfer } : undefined),
        close: () => pool.destroy(),
      };
    }
    case 'workerpool': {
      const { default: workerpool } = await import('workerpool');
      const pool = workerpool.pool(file, {
        minWorkers: threads,
        maxWorkers: threads,
        workerType: 'thread',
      });
      return {
        run: (job, transfer) =>
          pool.exec(
            'run',
            [job],
            transfer ? { transfer } : undefined,
          ) as unknown as Promise<unknown>,
        close: async () => {
          await pool.terminate();
        },
      };
    }
  }
}

const SHA_INPUT = new Uint8Array(KIB64).map((_, i) => (i * 31) & 0xff);
const SHA_EXPECTED = createHash('sha256').update(SHA_INPUT).digest('hex');

/** Runs one batch of `n` jobs and checks every result, so a dropped or wrong result fails. */
async function drive(c: Contender, workload: Workload, n: number): Promise<void> {
  if (workload === 'tiny') {
    const out = await Promise.all(Array.from({ length: n }, (_, i) => c.run(i)));
    let sum = 0;
    for (const value of out) sum += value as number;
    if (sum !== n * (n - 1)) throw new Error(`tiny: wrong sum ${sum}`);
  } else if (workload === 'sha256') {
    const out = await Promise.all(Array.from({ length: n }, () => c.run(SHA_INPUT)));
    if (out.some((digest) => digest !== SHA_EXPECTED)) throw new Error('sha256: wrong digest');
  } else {
    // 8 jobs in flight, each with a fresh 1 MiB buffer: memory then shows the pool's copies.
    let next = 0;
    const lane = async () => {
      while (next < n) {
        next++;
        const buf = new ArrayBuffer(MIB);
        const back = (await c.run(buf, [buf])) as ArrayBuffer;
        if (buf.byteLength !== 0) throw new Error('transfer: input was copied, not moved');
        if (back.byteLength !== MIB || new Uint8Array(back)[0] !== 1)
          throw new Error('transfer: bad result');
      }
    };
    await Promise.all(Array.from({ length: 8 }, lane));
  }
}

interface CaseValue {
  elapsedNs: number;
  /** CPU time of the main thread alone during the timed run (ns; 10 ms ticks), Linux only. */
  mainCpuNs: number;
  /** CPU time of the whole process (every thread) during the timed run (ns). */
  cpuNs: number;
}

/**
 * The main thread's CPU time (ns) from /proc (utime + stime of the thread whose id is the
 * process id, in 10 ms ticks); NaN elsewhere. On a machine shared with other work, CPU time is
 * disturbed less than wall time: the main thread is what limits tiny jobs.
 */
function mainThreadCpuNs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 1e7;
  } catch {
    return Number.NaN;
  }
}

function processCpuNs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) * 1e3;
}

function asCase(lib: Lib) {
  return async (p: CaseParams, ctx: CaseContext): Promise<CaseValue> => {
    const contender = await open(lib, p);
    for (let round = 0; round < 3; round++) await drive(contender, p.workload, p.warmup);
    (globalThis as { gc?: () => void }).gc?.();
    await ctx.mark('start');
    const main = mainThreadCpuNs();
    const cpu = processCpuNs();
    const { elapsedNs } = await timed(() => drive(contender, p.workload, p.n));
    const mainCpuNs = mainThreadCpuNs() - main;
    const cpuNs = processCpuNs() - cpu;
    await contender.close();
    return { elapsedNs, mainCpuNs, cpuNs };
  };
}

export const cases: Cases = {
  sluice: asCase('sluice'),
  piscina: asCase('piscina'),
  tinypool: asCase('tinypool'),
  workerpool: asCase('workerpool'),
  raw: asCase('raw'),
};

// ---- parent ----

interface Entry {
  label: string;
  lib: Lib;
  queueSize?: CaseParams['queueSize'];
  batch?: number;
  /** Runs only for these workloads (default: all). */
  workloads?: Workload[];
}

const RAW: Entry[] = [1, 16, 64, 256].map((batch) => ({
  label: `raw batched loop (batch ${batch})`,
  lib: 'raw',
  batch,
  workloads: ['tiny'],
}));

const ENTRIES: Entry[] = [
  ...RAW,
  { label: 'sluice ThreadPool (unbounded queue)', lib: 'sluice', queueSize: 'unbounded' },
  { label: 'sluice ThreadPool (queueSize 1024)', lib: 'sluice', queueSize: 1024 },
  { label: 'sluice ThreadPool (default queueSize)', lib: 'sluice', queueSize: 'default' },
  { label: 'piscina', lib: 'piscina' },
  { label: 'tinypool', lib: 'tinypool' },
  { label: 'workerpool', lib: 'workerpool' },
];

interface Row {
  label: string;
  jobsPerSec: number;
  best: number;
  worst: number;
  peak: number;
  /** Median CPU per job (ns): the main thread's, and the whole process's. */
  mainCpu: number;
  cpu: number;
  errors: string[];
}

async function measure(
  params: Omit<CaseParams, 'queueSize' | 'batch'>,
  all: Entry[],
  runs: number,
): Promise<Row[]> {
  const entries = all.filter(
    (entry) => !entry.workloads || entry.workloads.includes(params.workload),
  );
  const collected = entries.map((entry) => ({ entry, runs: [] as IsolatedRun<CaseValue>[] }));
  for (let rep = 0; rep < runs; rep++) {
    for (const item of collected) {
      const run = await runIsolated<CaseValue>(
        fileURLToPath(import.meta.url),
        item.entry.lib,
        {
          ...params,
          queueSize: item.entry.queueSize,
          batch: item.entry.batch,
        } satisfies CaseParams,
        { nodeArgs: ['--expose-gc'], timeoutMs: 300_000 },
      );
      if (run.error) console.error(`${item.entry.label} ${params.workload}: ${run.error}`);
      item.runs.push(run);
    }
  }
  return collected.map(({ entry, runs: done }) => {
    const ok = done.filter((run) => run.value);
    const rates = ok.map((run) => params.n / (run.value!.elapsedNs / 1e9));
    const spread = rates.length ? range(rates) : { min: Number.NaN, max: Number.NaN };
    return {
      label: entry.label,
      jobsPerSec: rates.length ? median(rates) : Number.NaN,
      best: spread.max,
      worst: spread.min,
      peak: ok.length ? median(ok.map((run) => run.peakRssBytes)) : Number.NaN,
      mainCpu: ok.length ? median(ok.map((run) => run.value!.mainCpuNs / params.n)) : Number.NaN,
      cpu: ok.length ? median(ok.map((run) => run.value!.cpuNs / params.n)) : Number.NaN,
      errors: done.flatMap((run) => (run.error ? [run.error] : [])),
    };
  });
}

function print(title: string, rows: Row[]): void {
  const piscina = rows.find((row) => row.label === 'piscina');
  console.log(`\n### ${title}\n`);
  console.log(
    markdownTable(
      [
        'contender',
        'jobs/s median',
        'best',
        'worst',
        'vs piscina',
        'main-thread CPU/job',
        'process CPU/job',
        'peak RSS',
      ],
      rows.map((row) => [
        row.label,
        count(Math.round(row.jobsPerSec)),
        count(Math.round(row.best)),
        count(Math.round(row.worst)),
        ratio(row.jobsPerSec, piscina?.jobsPerSec ?? Number.NaN),
        ns(row.mainCpu),
        ns(row.cpu),
        mib(row.peak),
      ]),
    ),
  );
}

function parseArgs(argv: string[]) {
  const value = (flag: string) => argv.find((arg) => arg.startsWith(`--${flag}=`))?.split('=')[1];
  const quick = argv.includes('--quick');
  return {
    quick,
    runs: Number(value('runs') ?? (quick ? 1 : 3)),
    only: (value('only')?.split(',') ?? ['tiny', 'sha256', 'transfer']) as Workload[],
    contenders: value('contenders')?.split(',') ?? [],
  };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  ensureBuilt();
  writeWorkers();
  printHeader('ThreadPool throughput (2 threads unless stated)', [
    'piscina',
    'tinypool',
    'workerpool',
  ]);
  const entries = ENTRIES.filter(
    (entry) =>
      !opts.contenders.length || opts.contenders.some((name) => entry.label.includes(name)),
  );
  const scale = opts.quick ? 0.2 : 1;
  const goals: string[] = [];
  const rate = (rows: Row[], label: string) =>
    rows.find((row) => row.label === label)?.jobsPerSec ?? Number.NaN;
  const best = 'sluice ThreadPool (queueSize 1024)';
  if (opts.only.includes('tiny')) {
    const n = Math.round(100_000 * scale);
    const rows = await measure(
      { workload: 'tiny', threads: 2, n, warmup: 20_000 },
      entries,
      opts.runs,
    );
    print(
      `(a) ${count(n)} tiny jobs (x*2), all submitted at once, 2 threads (${opts.runs} runs)`,
      rows,
    );
    const raw64 = rate(rows, 'raw batched loop (batch 64)');
    for (const label of [
      'sluice ThreadPool (unbounded queue)',
      best,
      'sluice ThreadPool (default queueSize)',
    ]) {
      const jobs = rate(rows, label);
      if (Number.isNaN(jobs)) continue;
      const vsRaw = jobs / raw64;
      const vsPiscina = jobs / rate(rows, 'piscina');
      const met = jobs >= 400_000 && vsRaw >= 0.45 && vsPiscina >= 15;
      // The same comparison in main-thread CPU per job, which a shared machine disturbs less.
      const cpuOf = (name: string) => rows.find((row) => row.label === name)?.mainCpu ?? Number.NaN;
      const cpuVsRaw = cpuOf('raw batched loop (batch 64)') / cpuOf(label);
      goals.push(
        `(a) tiny, ${label}: ${count(Math.round(jobs))} jobs/s, ${vsRaw.toFixed(2)}x raw batch 64 (${cpuVsRaw.toFixed(2)}x by main-thread CPU/job), ${vsPiscina.toFixed(1)}x piscina (goal >= 400,000, >= 0.45x, >= 15x: ${met ? 'met' : 'MISSED'})`,
      );
    }
  }
  if (opts.only.includes('sha256')) {
    const n = Math.round(20_000 * scale);
    const perThreads: Record<number, Row[]> = {};
    for (const threads of [1, 2]) {
      const rows = await measure(
        { workload: 'sha256', threads, n, warmup: 2_000 },
        entries,
        opts.runs,
      );
      perThreads[threads] = rows;
      print(
        `(b) SHA-256 of 64 KiB, ${count(n)} jobs, ${threads} thread${threads > 1 ? 's' : ''} (${opts.runs} runs)`,
        rows,
      );
    }
    const scaling = entries.map((entry) => [
      entry.label,
      ratio(rate(perThreads[2] ?? [], entry.label), rate(perThreads[1] ?? [], entry.label)),
    ]);
    console.log(`\n${markdownTable(['contender', 'scaling 1 -> 2 threads'], scaling)}`);
    const r = rate(perThreads[2] ?? [], best) / rate(perThreads[2] ?? [], 'piscina');
    goals.push(
      `(b) sha256: sluice ${r.toFixed(2)}x piscina at 2 threads (goal >= 1: ${r >= 1 ? 'met' : 'MISSED'})`,
    );
  }
  if (opts.only.includes('transfer')) {
    const n = Math.round(5_000 * scale);
    const rows = await measure(
      { workload: 'transfer', threads: 2, n, warmup: 500 },
      entries,
      opts.runs,
    );
    print(
      `(c) 1 MiB buffers moved in and out, ${count(n)} jobs, 8 in flight, 2 threads (${opts.runs} runs)`,
      rows,
    );
    const r = rate(rows, best) / rate(rows, 'piscina');
    goals.push(
      `(c) transfer: sluice ${r.toFixed(2)}x piscina (goal >= 1: ${r >= 1 ? 'met' : 'MISSED'})`,
    );
  }
  console.log(`\n### Goals (medians)\n\n${goals.map((goal) => `- ${goal}`).join('\n')}`);
}

if (isMain(import.meta.url)) await main();
