// Core throughput: sluice runPool and Pool against a bare loop (the floor) and the usual peers,
// concurrency 16, a trivial async job, each contender in its own child process.
//   npx tsx bench/core.ts [--quick] [--runs=5] [--sizes=200000,1000000] [--only=floor,p-map]
//                         [--no-gc-table]
// The "+ no-op event subscribers" and "+ collectMetrics" rows are the cost of observing a pool
// (README "Events", "Metrics"): compare them with "sluice runPool" / "sluice Pool".
import diagnostics from 'node:diagnostics_channel';
import { fileURLToPath } from 'node:url';
import async from 'async';
import fastq from 'fastq';
import pLimit from 'p-limit';
import pMap, { pMapIterable } from 'p-map';
import PQueue from 'p-queue';
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
  rssGrowthSince,
  runIsolated,
  type Sluice,
  timed,
} from './lib/index.js';

let sluice: Sluice;

const double = async (x: number) => x * 2;

function* upTo(n: number): Generator<number> {
  for (let i = 0; i < n; i++) yield i;
}

/** Runs `n` jobs at `concurrency`, consumes every result, returns the sum of the results. */
type Contender = (n: number, concurrency: number) => Promise<number>;

/** 16 async loops pulling a shared counter: what any pool has to add its bookkeeping to. */
const floor: Contender = async (n, concurrency) => {
  let next = 0;
  let sum = 0;
  const loop = async () => {
    while (next < n) {
      // Not `sum += await …`: that reads `sum` before the await and loses the other loops' adds.
      const value = await double(next++);
      sum += value;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return sum;
};

/**
 * A reference, not a product: the least a runPool-shaped API can do. 16 slots started from the
 * source, each result pushed to a queue and handed out through `for await`. No cancellation,
 * timeouts, ordering or error wrapping. The gap to the floor is the price of the async-iterator
 * protocol itself (a promise and an IteratorResult per result); the gap above it is sluice's.
 */
const minimalIterator: Contender = async (n, concurrency) => {
  const source = upTo(n);
  const ready: Array<{ job: number; value: number }> = [];
  let head = 0;
  let running = 0;
  let exhausted = false;
  let waiter: ((step: IteratorResult<{ job: number; value: number }>) => void) | undefined;
  const push = (result: { job: number; value: number }) => {
    running--;
    const w = waiter;
    waiter = undefined;
    if (w) {
      fill();
      w({ done: false, value: result });
    } else ready.push(result);
  };
  const fill = () => {
    while (!exhausted && running < concurrency && ready.length - head < concurrency) {
      const step = source.next();
      if (step.done) exhausted = true;
      else {
        running++;
        const job = step.value;
        double(job).then((value) => push({ job, value }));
      }
    }
  };
  const results: AsyncIterableIterator<{ job: number; value: number }> = {
    [Symbol.asyncIterator]: () => results,
    next() {
      if (head < ready.length) {
        const value = ready[head]!;
        ready[head++] = undefined as never;
        if (head > 1024 && head * 2 > ready.length) {
          ready.splice(0, head);
          head = 0;
        }
        fill();
        return Promise.resolve({ done: false, value });
      }
      if (exhausted && running === 0) return Promise.resolve({ done: true, value: undefined });
      return new Promise((resolve) => {
        waiter = resolve;
        fill();
      });
    },
  };
  let sum = 0;
  for await (const result of results) sum += result.value;
  return sum;
};

/**
 * The same reference without the results stream: each result goes to a callback. The gap
 * between this row and the one above is the price of the `for await` step alone.
 */
const minimalCallback: Contender = (n, concurrency) =>
  new Promise((resolve) => {
    const source = upTo(n);
    let running = 0;
    let exhausted = false;
    let sum = 0;
    // Like for like with the for-await reference: the same { job, value } record per result.
    const settle = (result: { job: number; value: number }) => {
      running--;
      sum += result.value;
      fill();
    };
    const fill = () => {
      while (!exhausted && running < concurrency) {
        const step = source.next();
        if (step.done) exhausted = true;
        else {
          running++;
          const job = step.value;
          double(job).then((value) => settle({ job, value }));
        }
      }
      if (exhausted && running === 0) resolve(sum);
    };
    fill();
  });

const sluiceRunPool: Contender = async (n, concurrency) => {
  let sum = 0;
  for await (const result of sluice.runPool(upTo(n), double, { concurrency })) {
    if (!result.ok) throw result.error;
    sum += result.value;
  }
  return sum;
};

/** The service-pool idiom: await submit (the backpressure), then take each task's result. */
const sluicePool: Contender = async (n, concurrency) => {
  const pool = new sluice.Pool(double, { concurrency });
  let sum = 0;
  let settled = 0;
  const add = (result: { ok: boolean; value?: number; error?: Error }) => {
    if (!result.ok) throw result.error;
    sum += result.value!;
    settled++;
  };
  for (let i = 0; i < n; i++) (await pool.submit(i)).result.then(add);
  pool.close();
  await pool.drain();
  while (settled < n) await new Promise(setImmediate);
  return sum;
};

/** Every sluice channel a subscriber can listen on (the events issue's cost rows). */
const PLAIN_CHANNELS = [
  'sluice:job:accepted',
  'sluice:job:retried',
  'sluice:job:settled',
  'sluice:job:rate-limited',
  'sluice:pool:state',
  'sluice:pool:created',
  'sluice:message:settled',
];

/** `contender` with a no-op subscriber on every sluice channel while it runs. */
function withSubscribers(contender: Contender): Contender {
  return async (n, concurrency) => {
    const noop = () => {};
    const trace = { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop };
    for (const name of PLAIN_CHANNELS) diagnostics.subscribe(name, noop);
    diagnostics.tracingChannel('sluice:job').subscribe(trace);
    try {
      return await contender(n, concurrency);
    } finally {
      for (const name of PLAIN_CHANNELS) diagnostics.unsubscribe(name, noop);
      diagnostics.tracingChannel('sluice:job').unsubscribe(trace);
    }
  };
}

/** `contender` with `sluice/prometheus` collecting into a fresh registry while it runs. */
function withMetrics(contender: Contender): Contender {
  return async (n, concurrency) => {
    const { Registry } = await import('prom-client');
    const { collectMetrics } = await import('../dist/prometheus/index.js');
    const registry = new Registry();
    const metrics = collectMetrics({ registry });
    try {
      return await contender(n, concurrency);
    } finally {
      // Scraped once, so the run pays for nothing the registry could defer.
      await registry.metrics();
      metrics.close();
    }
  };
}

/** p-map's usual call: a lazy input, an array of every result at the end. */
const pMapAll: Contender = async (n, concurrency) => {
  const values = await pMap(upTo(n), double, { concurrency });
  let sum = 0;
  for (const value of values) sum += value;
  return sum;
};

/** p-map's streaming form, the closest peer to runPool (backpressure defaults to concurrency). */
const pMapStream: Contender = async (n, concurrency) => {
  let sum = 0;
  for await (const value of pMapIterable(upTo(n), double, { concurrency })) sum += value;
  return sum;
};

/** p-limit's usual call: a limited promise per job, all of them held by Promise.all. */
const pLimitAll: Contender = async (n, concurrency) => {
  const limit = pLimit(concurrency);
  const promises = new Array<Promise<number>>(n);
  for (let i = 0; i < n; i++) promises[i] = limit(double, i);
  let sum = 0;
  for (const value of await Promise.all(promises)) sum += value;
  return sum;
};

/** p-queue fed with its own backpressure hook, so the queue stays at most `concurrency` long. */
const pQueueBounded: Contender = async (n, concurrency) => {
  const queue = new PQueue({ concurrency });
  let sum = 0;
  const add = (value: number) => {
    sum += value;
  };
  for (let i = 0; i < n; i++) {
    if (queue.size >= concurrency) await queue.onSizeLessThan(concurrency);
    queue.add(() => double(i)).then(add);
  }
  await queue.onIdle();
  await new Promise(setImmediate);
  return sum;
};

/** async.queue fed until `concurrency` wait, then paused until its `unsaturated` event. */
const asyncQueueBounded: Contender = async (n, concurrency) => {
  const queue = async.queue<number, number>(double, concurrency);
  let sum = 0;
  const add = (err: Error | null | undefined, value?: number) => {
    if (err) throw err;
    sum += value!;
  };
  for (let i = 0; i < n; i++) {
    if (queue.length() >= concurrency) await queue.unsaturated();
    queue.push(i, add);
  }
  if (!queue.idle()) await queue.drain();
  return sum;
};

/** fastq's promise API fed until `concurrency` wait, then paused until its `empty` hook. */
const fastqBounded: Contender = async (n, concurrency) => {
  const queue = fastq.promise(double, concurrency);
  let wake: (() => void) | undefined;
  queue.empty = () => {
    wake?.();
    wake = undefined;
  };
  let sum = 0;
  const add = (value: number) => {
    sum += value;
  };
  for (let i = 0; i < n; i++) {
    if (queue.length() >= concurrency) await new Promise<void>((resolve) => (wake = resolve));
    queue.push(i).then(add);
  }
  await queue.drained();
  await new Promise(setImmediate);
  return sum;
};

const contenders: Record<string, Contender> = {
  'floor (16 bare loops)': floor,
  'ref: minimal pool, callback': minimalCallback,
  'ref: minimal for-await pool': minimalIterator,
  'sluice runPool': sluiceRunPool,
  'sluice Pool': sluicePool,
  'sluice runPool + no-op event subscribers': withSubscribers(sluiceRunPool),
  'sluice Pool + no-op event subscribers': withSubscribers(sluicePool),
  'sluice runPool + collectMetrics': withMetrics(sluiceRunPool),
  'sluice Pool + collectMetrics': withMetrics(sluicePool),
  'p-map': pMapAll,
  'p-map pMapIterable': pMapStream,
  'p-limit': pLimitAll,
  'p-queue': pQueueBounded,
  'async.queue': asyncQueueBounded,
  fastq: fastqBounded,
};

interface CaseParams {
  n: number;
  concurrency: number;
  warmup: number;
  /** Force a full GC between warm-up and the timed run (the "after a full GC" table). */
  gcFirst?: boolean;
}

interface CaseValue {
  elapsedNs: number;
}

/** Warm up (JIT), mark the baseline RSS, then time one run and check its sum. */
function asCase(contender: Contender) {
  return async (params: CaseParams, ctx: CaseContext): Promise<CaseValue> => {
    const { n, concurrency, warmup } = params;
    sluice = await loadSluice();
    // Several rounds: the engines reach their optimised tiers only after ~100k jobs.
    for (let round = 0; round < 3; round++) await contender(warmup, concurrency);
    // Not by default: a full GC that collects the warm-up's pools also drops sluice's
    // optimised code (its classes' maps die with their last instance), so the timed run
    // measures a re-warm-up, not the steady state. Shown separately. See BENCHMARKS.md, "Core".
    if (params.gcFirst) (globalThis as { gc?: () => void }).gc?.();
    await ctx.mark('start');
    const { value, elapsedNs } = await timed(() => contender(n, concurrency));
    if (value !== n * (n - 1)) throw new Error(`wrong sum ${value} for ${n} jobs`);
    return { elapsedNs };
  };
}

export const cases: Cases = Object.fromEntries(
  Object.entries(contenders).map(([name, contender]) => [name, asCase(contender)]),
);

interface Options {
  sizes: number[];
  runs: number;
  only: string[];
  noGc: boolean;
}

function parseArgs(argv: string[]): Options {
  const value = (flag: string) => argv.find((arg) => arg.startsWith(`--${flag}=`))?.split('=')[1];
  const quick = argv.includes('--quick');
  return {
    sizes: (value('sizes') ?? (quick ? '50000' : '200000,1000000')).split(',').map(Number),
    runs: Number(value('runs') ?? (quick ? 1 : 5)),
    only: value('only')?.split(',') ?? [],
    noGc: quick || argv.includes('--no-gc-table'),
  };
}

type Measured = { name: string; runs: IsolatedRun<CaseValue>[] };

async function measure(
  n: number,
  names: string[],
  repeats: number,
  gcFirst = false,
): Promise<Measured[]> {
  const measured = names.map((name) => ({ name, runs: [] as IsolatedRun<CaseValue>[] }));
  // Contenders take turns within each repetition, so a noisy minute hits all of them alike.
  for (let rep = 0; rep < repeats; rep++) {
    for (const entry of measured) {
      const run = await runIsolated<CaseValue>(
        fileURLToPath(import.meta.url),
        entry.name,
        { n, concurrency: 16, warmup: 50_000, gcFirst } satisfies CaseParams,
        { timeoutMs: 180_000, nodeArgs: gcFirst ? ['--expose-gc'] : [] },
      );
      if (run.error) console.error(`${entry.name} @ ${n}: ${run.error}`);
      entry.runs.push(run);
    }
  }
  return measured;
}

function summarize(n: number, measured: Measured[]) {
  const rows = measured.map(({ name, runs }) => {
    const ok = runs.filter((run) => run.value);
    const perJob = ok.map((run) => run.value!.elapsedNs / n);
    const peaks = ok.map((run) => run.peakRssBytes);
    const added = ok.map((run) => rssGrowthSince(run));
    return {
      name,
      nsPerJob: perJob.length ? median(perJob) : Number.NaN,
      spread: perJob.length ? range(perJob) : { min: Number.NaN, max: Number.NaN },
      peak: peaks.length ? median(peaks) : Number.NaN,
      added: added.length ? median(added) : Number.NaN,
    };
  });
  return rows;
}

function printSize(n: number, rows: ReturnType<typeof summarize>, runs: number) {
  const base = rows.find((row) => row.name.startsWith('floor'));
  console.log(`\n### ${count(n)} jobs, concurrency 16 (${runs} runs each)\n`);
  console.log(
    markdownTable(
      [
        'contender',
        'ns/job median',
        'best',
        'worst',
        'vs floor',
        'vs floor (best)',
        'peak RSS',
        'RSS added',
      ],
      rows.map((row) => [
        row.name,
        ns(row.nsPerJob),
        ns(row.spread.min),
        ns(row.spread.max),
        ratio(row.nsPerJob, base?.nsPerJob ?? Number.NaN),
        ratio(row.spread.min, base?.spread.min ?? Number.NaN),
        mib(row.peak),
        mib(row.added),
      ]),
    ),
  );
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  ensureBuilt();
  printHeader('Core throughput', ['p-map', 'p-limit', 'p-queue', 'async', 'fastq']);
  const names = Object.keys(contenders).filter(
    (name) => !opts.only.length || opts.only.some((part) => name.includes(part)),
  );
  const bySize = new Map<number, ReturnType<typeof summarize>>();
  for (const n of opts.sizes) {
    const rows = summarize(n, await measure(n, names, opts.runs));
    bySize.set(n, rows);
    printSize(n, rows, opts.runs);
  }
  printGoals(bySize);
  if (!opts.noGc) await printAfterGc(names, opts.runs);
}

/** The first run after a full GC that collected the warm-up's pools, against the steady state. */
async function printAfterGc(names: string[], runs: number) {
  const n = 200_000;
  const picked = names.filter((name) => GC_ROWS.includes(name));
  if (!picked.length) return;
  const after = summarize(n, await measure(n, picked, runs, true));
  const steady = summarize(n, await measure(n, picked, runs, false));
  console.log(`\n### First ${count(n)} jobs after a full GC (${runs} runs each)\n`);
  console.log(
    markdownTable(
      ['contender', 'steady ns/job', 'after gc() ns/job', 'ratio'],
      picked.map((name, i) => [
        name,
        ns(steady[i]!.nsPerJob),
        ns(after[i]!.nsPerJob),
        ratio(after[i]!.nsPerJob, steady[i]!.nsPerJob),
      ]),
    ),
  );
}

const GC_ROWS = ['floor (16 bare loops)', 'sluice runPool', 'sluice Pool', 'p-map', 'fastq'];

function printGoals(bySize: Map<number, ReturnType<typeof summarize>>) {
  const sizes = [...bySize.keys()];
  const get = (n: number, name: string) => bySize.get(n)?.find((row) => row.name === name);
  const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
  console.log('\n### Goals (median; best in brackets)\n');
  for (const n of sizes) {
    const floorRow = bySize.get(n)?.find((row) => row.name.startsWith('floor'));
    const rp = get(n, 'sluice runPool');
    const pm = get(n, 'p-map');
    if (!floorRow || !rp || !pm) continue;
    const vsFloor = rp.nsPerJob / floorRow.nsPerJob;
    const vsFloorBest = rp.spread.min / floorRow.spread.min;
    const vsPMap = pm.nsPerJob / rp.nsPerJob;
    const vsPMapBest = pm.spread.min / rp.spread.min;
    console.log(
      `- ${count(n)} jobs: runPool ${vsFloor.toFixed(2)}x the floor [${vsFloorBest.toFixed(2)}x] ` +
        `(goal <= 2: ${verdict(vsFloor <= 2)}); p-map ${vsPMap.toFixed(2)}x [${vsPMapBest.toFixed(2)}x] ` +
        `the time of runPool (goal >= 3: ${verdict(vsPMap >= 3)})`,
    );
  }
  if (sizes.length >= 2) {
    const [small, large] = [sizes[0]!, sizes[sizes.length - 1]!];
    for (const name of ['sluice runPool', 'sluice Pool']) {
      const a = get(small, name);
      const b = get(large, name);
      if (a && b) {
        console.log(
          `- ${name}: peak RSS ${mib(a.peak)} at ${count(small)} jobs, ${mib(b.peak)} at ${count(large)} ` +
            `(${ratio(b.peak, a.peak)}); added by the run ${mib(a.added)} and ${mib(b.added)}`,
        );
      }
    }
  }
}

if (isMain(import.meta.url)) await main();
