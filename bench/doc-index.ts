// Document indexer on the real corpus (../shared/corpus/pdf, 170 PDFs): the whole pipeline
// (extract in a ThreadPool → embed → insert into SQLite) with 1 and 2 extraction threads, against
// the extraction stage run alone over the same files — the bottleneck's floor: the pipeline
// cannot beat it, and the goal is to come within 15% of it. Each run is a fresh process; its
// peak RSS (threads included) is the kernel's high-water mark.
//   npx tsx bench/doc-index.ts [--runs=3] [--corpus=../shared/corpus/pdf]
// Measures the built code: the root dist/ and examples/doc-index/dist/ (rebuilt here first).
import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ensureBuilt,
  markdownTable,
  median,
  mib,
  printHeader,
  range,
  repoRoot,
  seconds,
} from './lib/index.js';

interface CaseParams {
  mode: 'pipeline' | 'extract-only';
  threads: number;
  corpus: string;
}

interface StageRow {
  name: string;
  concurrency: number;
  utilization: number;
  p50: number;
  p99: number;
}

interface CaseResult {
  elapsedMs: number;
  docs: number;
  failed: number;
  stages: StageRow[];
  bottleneck?: string;
  maxRssBytes: number;
}

const exampleDist = join(repoRoot, 'examples', 'doc-index', 'dist');

/** Runs in the child: one indexing (or extraction-only) run over the corpus. */
async function runCase(p: CaseParams): Promise<CaseResult> {
  if (p.mode === 'pipeline') {
    const { runIndex } = (await import(
      pathToFileURL(join(exampleDist, 'indexer.js')).href
    )) as typeof import('../examples/doc-index/src/indexer.js');
    const dir = mkdtempSync(join(tmpdir(), 'bench-doc-index-'));
    try {
      const s = await runIndex({
        inputs: [p.corpus],
        db: join(dir, 'bench.db'),
        threads: p.threads,
      });
      return {
        elapsedMs: s.elapsedMs,
        docs: s.indexed,
        failed: s.failed.length,
        stages: s.stages,
        bottleneck: s.bottleneck,
        maxRssBytes: process.resourceUsage().maxRSS * 1024,
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  // The floor: the same ThreadPool and extract module, fed the same paths, nothing after it.
  const { pipeline, ThreadPool } = await import('sluice');
  const started = performance.now();
  const pool = new ThreadPool(pathToFileURL(join(exampleDist, 'extract.js')), {
    threads: p.threads,
  });
  const paths = readdirSync(p.corpus)
    .filter((f) => f.endsWith('.pdf'))
    .sort()
    .map((f) => join(p.corpus, f));
  const run = pipeline(paths.map((path) => ({ path }))).stage('extract', pool, {
    concurrency: p.threads,
  });
  let docs = 0;
  let failed = 0;
  for await (const r of run) r.ok ? docs++ : failed++;
  const elapsedMs = performance.now() - started;
  const stages = run.stats().map((s) => ({ ...s, p50: s.runTime.p50, p99: s.runTime.p99 }));
  await pool.drain();
  return { elapsedMs, docs, failed, stages, maxRssBytes: process.resourceUsage().maxRSS * 1024 };
}

function inChild(p: CaseParams): Promise<CaseResult> {
  return new Promise((resolvePromise, reject) => {
    const child = fork(process.argv[1]!, ['--child', JSON.stringify(p)], {
      cwd: repoRoot,
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.once('message', (m) => resolvePromise(m as CaseResult));
    child.once('exit', (code) => code !== 0 && reject(new Error(`bench child exited ${code}`)));
  });
}

function arg(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.slice(name.length + 3) : fallback;
}

async function main(): Promise<void> {
  const runs = Number(arg('runs', '3'));
  const corpus = resolve(arg('corpus', join(repoRoot, '..', 'shared', 'corpus', 'pdf')));
  ensureBuilt();
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(
    process.execPath,
    [tsc, '-p', join(repoRoot, 'examples', 'doc-index', 'tsconfig.json')],
    {
      stdio: 'inherit',
    },
  );
  printHeader('Document indexer (examples/doc-index) on the 170-PDF corpus', [
    'pdfjs-dist',
    'better-sqlite3',
  ]);
  const configs: Array<Omit<CaseParams, 'corpus'>> = [
    { mode: 'extract-only', threads: 1 },
    { mode: 'pipeline', threads: 1 },
    { mode: 'extract-only', threads: 2 },
    { mode: 'pipeline', threads: 2 },
  ];
  const results = new Map<string, CaseResult[]>();
  // Interleave the configurations so a burst of load on the machine hits them all alike.
  for (let i = 0; i < runs; i++) {
    for (const c of configs) {
      const key = `${c.mode} ${c.threads}`;
      const r = await inChild({ ...c, corpus });
      console.error(
        `run ${i + 1}/${runs} ${key}: ${seconds(r.elapsedMs)}, ${r.docs} docs, peak ${mib(r.maxRssBytes)}`,
      );
      results.set(key, [...(results.get(key) ?? []), r]);
    }
  }
  report(configs, results);
}

function report(
  configs: Array<Omit<CaseParams, 'corpus'>>,
  results: Map<string, CaseResult[]>,
): void {
  const rows = configs.map((c) => {
    const rs = results.get(`${c.mode} ${c.threads}`)!;
    const floor = results.get(`extract-only ${c.threads}`)!.map((r) => r.elapsedMs);
    const walls = rs.map((r) => r.elapsedMs);
    const { min: best, max: worst } = range(walls);
    const vs = (a: number, b: number) => `${a >= b ? '+' : ''}${((a / b - 1) * 100).toFixed(1)}%`;
    const util = (name: string) => {
      const u = rs.map((r) => r.stages.find((s) => s.name === name)?.utilization);
      return u[0] === undefined ? '–' : `${(median(u as number[]) * 100).toFixed(0)}%`;
    };
    return [
      c.mode === 'pipeline' ? 'full pipeline' : 'extract stage alone',
      c.threads,
      seconds(median(walls)),
      `${seconds(best)}–${seconds(worst)}`,
      (rs[0]!.docs / (median(walls) / 1000)).toFixed(1),
      c.mode === 'pipeline'
        ? `${vs(median(walls), median(floor))} / ${vs(best, range(floor).min)}`
        : '–',
      util('extract'),
      util('embed'),
      util('insert'),
      rs[0]!.bottleneck ?? '–',
      mib(Math.max(...rs.map((r) => r.maxRssBytes))),
    ];
  });
  console.log(
    markdownTable(
      [
        'run',
        'threads',
        'wall (median)',
        'best–worst',
        'docs/s (median)',
        'vs extract alone (median / best)',
        'extract util',
        'embed util',
        'insert util',
        'bottleneck',
        'peak RSS',
      ],
      rows,
    ),
  );
}

const childArg = process.argv.indexOf('--child');
if (childArg !== -1) {
  const result = await runCase(JSON.parse(process.argv[childArg + 1]!) as CaseParams);
  process.send!(result, () => process.disconnect());
} else {
  await main();
}
