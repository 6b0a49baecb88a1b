// The scheduling core's costs (issue "one scheduler for every pool"): the ungated path against an
// older build (A/B), a never-limiting rate gate, cold first bursts in fresh processes, and
// contenders interleaved in one busy process. Each part is described in BENCHMARKS.md, "Scheduler".
//   npx tsx bench/scheduler.ts [--parts=ab,cold,busy] [--runs=N] [--dist=name=/dir ...]
//                              [--cold-runs=N] [--mixes=quiet,json,timers,http]
//                              [--no-extras | --extras=<contender>,<contender>]
import diagnostics from 'node:diagnostics_channel';
import { Agent, createServer, request } from 'node:http';
import { join, resolve } from 'node:path';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pMap from 'p-map';
import {
  type Cases,
  count,
  ensureBuilt,
  isMain,
  markdownTable,
  median,
  ns,
  printHeader,
  range,
  repoRoot,
  runIsolated,
  type Sluice,
} from './lib/index.js';
import { mainThreadCpuNs } from './lib/timing.js';

const CONCURRENCY = 16;
const double = async (x: number) => x * 2;

function* upTo(n: number): Generator<number> {
  for (let i = 0; i < n; i++) yield i;
}

type Contender = (sluice: Sluice, n: number) => Promise<number>;

/** A never-limiting rate: every start asks the gate, none waits. */
const NEVER_LIMITING = { limit: 1e9, interval: 1000 };

const runPoolWith =
  (extra: object): Contender =>
  async (sluice, n) => {
    let sum = 0;
    const opts = { concurrency: CONCURRENCY, ...extra };
    for await (const result of sluice.runPool(upTo(n), double, opts)) {
      if (!result.ok) throw result.error;
      sum += result.value;
    }
    return sum;
  };

/** The service idiom: await submit (the backpressure), take each result; resolves when all did. */
const poolWith =
  (extra: object): Contender =>
  async (sluice, n) => {
    const pool = new sluice.Pool(double, { concurrency: CONCURRENCY, ...extra });
    let sum = 0;
    let settled = 0;
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const add = (result: { ok: boolean; value?: number; error?: Error }) => {
      if (!result.ok) throw result.error;
      sum += result.value!;
      if (++settled === n) done();
    };
    for (let i = 0; i < n; i++) (await pool.submit(i)).result.then(add);
    pool.close();
    await pool.drain();
    await all;
    return sum;
  };

const pMapAll: Contender = async (_sluice, n) => {
  const values = await pMap(upTo(n), double, { concurrency: CONCURRENCY });
  let sum = 0;
  for (const value of values) sum += value;
  return sum;
};

/**
 * A reference, not a product: the least a `runPool`-shaped API costs (as in bench/core.ts): 16
 * slots fed from the source, results queued and handed out through `for await`.
 */
const refIterator: Contender = async (_sluice, n) => {
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
    while (!exhausted && running < CONCURRENCY && ready.length - head < CONCURRENCY) {
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
 * A reference, not a product: the least a `Pool`-shaped API costs, driven as the Pool row is.
 * `submit` resolves with `{ job, result }` once there is room (16 slots, a queue of 32), and
 * `result` is a promise of `{ ok, value }` per job. No stats, cancellation, timeouts or errors.
 */
const refPool: Contender = async (_sluice, n) => {
  type Entry = { job: number; resolve: (r: { ok: boolean; value: number }) => void };
  const queue: Entry[] = [];
  let qHead = 0;
  let running = 0;
  let room: (() => void) | undefined;
  const run = (entry: Entry) => {
    running++;
    double(entry.job).then((value) => {
      running--;
      entry.resolve({ ok: true, value });
      if (qHead < queue.length) {
        const next = queue[qHead]!;
        queue[qHead++] = undefined as never;
        if (qHead > 1024 && qHead * 2 > queue.length) {
          queue.splice(0, qHead);
          qHead = 0;
        }
        run(next);
      }
      const r = room;
      room = undefined;
      r?.();
    });
  };
  const accept = (job: number) => {
    let resolve!: Entry['resolve'];
    const result = new Promise<{ ok: boolean; value: number }>((r) => (resolve = r));
    const entry = { job, resolve };
    if (running < CONCURRENCY) run(entry);
    else queue.push(entry);
    return { job, result };
  };
  const submit = (
    job: number,
  ): Promise<{ job: number; result: Promise<{ ok: boolean; value: number }> }> => {
    if (running < CONCURRENCY || queue.length - qHead < 2 * CONCURRENCY) {
      return Promise.resolve(accept(job));
    }
    return new Promise((resolve) => {
      room = () => resolve(accept(job));
    });
  };
  let sum = 0;
  let settled = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const add = (result: { ok: boolean; value: number }) => {
    sum += result.value;
    if (++settled === n) done();
  };
  for (let i = 0; i < n; i++) (await submit(i)).result.then(add);
  await all;
  return sum;
};

/** Runs `contender` with a no-op subscriber on every sluice channel (events issue's cost). */
const withSubscribers =
  (contender: Contender): Contender =>
  async (sluice, n) => {
    const noop = () => {};
    const trace = { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop };
    const plain = ['sluice:job:accepted', 'sluice:job:retried', 'sluice:job:settled'];
    for (const name of plain) diagnostics.subscribe(name, noop);
    diagnostics.tracingChannel('sluice:job').subscribe(trace);
    try {
      return await contender(sluice, n);
    } finally {
      for (const name of plain) diagnostics.unsubscribe(name, noop);
      diagnostics.tracingChannel('sluice:job').unsubscribe(trace);
    }
  };

/**
 * Runs `contender` under sluice/otel with the SDK set up as an application would: the
 * AsyncLocalStorage context manager, a tracer provider that records every span (then drops
 * it: no exporter), and a meter provider whose reader aggregates every measurement.
 */
const withOtel =
  (contender: Contender): Contender =>
  async (sluice, n) => {
    const api = await import('@opentelemetry/api');
    const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
    const { BasicTracerProvider } = await import('@opentelemetry/sdk-trace-base');
    const { MeterProvider, MetricReader } = await import('@opentelemetry/sdk-metrics');
    class Reader extends MetricReader {
      protected override async onForceFlush(): Promise<void> {}
      protected override async onShutdown(): Promise<void> {}
    }
    api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    const otelEntry = pathToFileURL(join(repoRoot, 'dist/otel/index.js')).href;
    const { instrumentSluice } = (await import(
      otelEntry
    )) as typeof import('../dist/otel/index.js');
    const otel = instrumentSluice({
      tracerProvider: new BasicTracerProvider(),
      meterProvider: new MeterProvider({ readers: [new Reader()] }),
    });
    try {
      return await contender(sluice, n);
    } finally {
      otel.close();
    }
  };

const contenders: Record<string, Contender> = {
  runPool: runPoolWith({}),
  Pool: poolWith({}),
  'runPool + rate': runPoolWith({ rate: NEVER_LIMITING }),
  'Pool + rate': poolWith({ rate: NEVER_LIMITING }),
  /** The gated engine without a clock: retry with one attempt never retries. */
  'runPool, gated (retry: 1 attempt)': runPoolWith({ retry: { attempts: 1 } }),
  'runPool + event subscribers': withSubscribers(runPoolWith({})),
  'Pool + event subscribers': withSubscribers(poolWith({})),
  'runPool + sluice/otel': withOtel(runPoolWith({})),
  'Pool + sluice/otel': withOtel(poolWith({})),
  /** The watchdog on, no job ever stuck: what tracking every running job costs. */
  'runPool + watchdog': runPoolWith({ watchdog: { stuckAfter: 60_000 } }),
  'Pool + watchdog': poolWith({ watchdog: { stuckAfter: 60_000 } }),
  /** Self-deadlock detection on, nobody calling in: AsyncLocalStorage's cost. */
  'Pool + detectDeadlock': poolWith({ detectDeadlock: true }),
  'p-map': pMapAll,
  'ref: minimal for-await pool': refIterator,
  'ref: minimal Pool': refPool,
};

function loadDist(dist: string): Promise<Sluice> {
  return import(pathToFileURL(join(dist, 'index.js')).href) as Promise<Sluice>;
}

const cpuNs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) * 1000;
};

function check(sum: number, n: number) {
  if (sum !== n * (n - 1)) throw new Error(`wrong sum ${sum} for ${n} jobs`);
}

interface Timing {
  wallNs: number;
  cpuNs: number;
  /** The main thread's CPU time (Linux), without V8's background compile and GC threads. */
  mainNs?: number;
}

async function timeOne(contender: Contender, sluice: Sluice, n: number): Promise<Timing> {
  const main0 = mainThreadCpuNs();
  const cpu0 = cpuNs();
  const t0 = process.hrtime.bigint();
  const sum = await contender(sluice, n);
  const wallNs = Number(process.hrtime.bigint() - t0);
  const cpu = cpuNs() - cpu0;
  const main1 = mainThreadCpuNs();
  check(sum, n);
  const mainNs = main0 === undefined || main1 === undefined ? undefined : main1 - main0;
  return { wallNs, cpuNs: cpu, mainNs };
}

interface ChildParams {
  contender: string;
  dist: string;
  n: number;
  warmup?: number;
}

export const cases: Cases = {
  /** Steady state: three warm-up runs, then one timed run (wall and CPU). */
  async steady(p: ChildParams): Promise<Timing> {
    const sluice = await loadDist(p.dist);
    const contender = contenders[p.contender]!;
    for (let round = 0; round < 3; round++) await contender(sluice, p.warmup ?? 50_000);
    return timeOne(contender, sluice, p.n);
  },
  /** The process's first burst: modules loaded, nothing run yet. */
  async cold(p: ChildParams): Promise<Timing> {
    const sluice = await loadDist(p.dist);
    return timeOne(contenders[p.contender]!, sluice, p.n);
  },
  /**
   * Contenders interleaved in one process beside other work (see MIXES). Besides CPU ns/job,
   * each burst's main-thread GC pauses (`gc` performance entries whose start falls inside the
   * burst, ns/job) and its scavenges: who pays for the neighbours' garbage.
   */
  async busy(p: { dist: string; n: number; rounds: number; mix: string; names: string[] }) {
    const sluice = await loadDist(p.dist);
    const pauses: Array<{ at: number; ms: number; minor: boolean }> = [];
    const observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = (e as { detail?: { kind?: number } }).detail?.kind;
        pauses.push({
          at: e.startTime,
          ms: e.duration,
          minor: kind === perfConstants.NODE_PERFORMANCE_GC_MINOR,
        });
      }
    });
    observer.observe({ entryTypes: ['gc'] });
    const stop = await MIXES[p.mix]!();
    const bursts: Array<{ name: string; from: number; to: number }> = [];
    const out: Record<string, number[]> = Object.fromEntries(p.names.map((name) => [name, []]));
    try {
      for (let round = -2; round < p.rounds; round++) {
        // Rotate the order, so none always runs right after the same neighbour.
        for (let k = 0; k < p.names.length; k++) {
          const name = p.names[(k + round + 2) % p.names.length]!;
          // The other work gets the event loop between bursts, as between requests.
          await new Promise((r) => setTimeout(r, 5));
          const from = performance.now();
          const t = await timeOne(contenders[name]!, sluice, p.n);
          // CPU time: the bursts run on microtasks only, so the other work cannot run inside one
          // (its garbage still has to be collected there); wall time would add the machine's load.
          if (round >= 0) {
            out[name]!.push(t.cpuNs / p.n);
            bursts.push({ name, from, to: performance.now() });
          }
        }
      }
      // The observer's entries arrive on a later turn.
      await new Promise((r) => setTimeout(r, 20));
    } finally {
      observer.disconnect();
      await stop();
    }
    const gc: Record<string, number[]> = Object.fromEntries(p.names.map((name) => [name, []]));
    const scavenges: Record<string, number[]> = Object.fromEntries(
      p.names.map((name) => [name, []]),
    );
    for (const b of bursts) {
      let ms = 0;
      let minor = 0;
      for (const e of pauses) {
        if (e.at < b.from || e.at >= b.to) continue;
        ms += e.ms;
        if (e.minor) minor++;
      }
      gc[b.name]!.push((ms * 1e6) / p.n);
      scavenges[b.name]!.push(minor);
    }
    return { cpu: out, gc, scavenges };
  },
};

/**
 * What else runs in the busy process. Each returns its stop function.
 * - quiet: nothing (the contenders only share one process and its JIT feedback).
 * - json: every 1 ms a ~40 KB JSON document is parsed and re-stringified, the last 500 parses
 *   kept (≈ 30 MB of live, promoted data that major GCs must mark).
 * - timers: 200 timers a few ms apart, each allocating a map of 200 small records into a
 *   rotating cache of 2,000 entries (an in-process cache with churn).
 * - http: a loopback HTTP server answering JSON to 8 keep-alive clients that request in a loop.
 */
const MIXES: Record<string, () => Promise<() => Promise<void>>> = {
  async quiet() {
    return async () => {};
  },
  async json() {
    const doc = JSON.stringify(
      Array.from({ length: 400 }, (_, i) => ({
        id: i,
        name: `item-${i}`,
        tags: ['a', 'b', 'c'],
        score: i / 7,
        nested: { ok: true, at: Date.now() },
      })),
    );
    const kept: unknown[] = [];
    const timer = setInterval(() => {
      const value = JSON.parse(doc) as unknown[];
      kept.push(value);
      if (kept.length > 500) kept.shift();
      JSON.stringify(value);
    }, 1);
    return async () => clearInterval(timer);
  },
  async timers() {
    const cache = new Map<number, unknown>();
    let key = 0;
    const timers = Array.from({ length: 200 }, (_, i) =>
      setInterval(
        () => {
          const records = new Map<string, { at: number; payload: number[] }>();
          for (let j = 0; j < 200; j++) records.set(`k${j}`, { at: j, payload: [j, j + 1, j + 2] });
          cache.set(key++, records);
          if (cache.size > 2000) cache.delete(key - 2001);
        },
        2 + (i % 5),
      ),
    );
    return async () => {
      for (const t of timers) clearInterval(t);
    };
  },
  async http() {
    const body = JSON.stringify(
      Array.from({ length: 100 }, (_, i) => ({ id: i, v: `value-${i}` })),
    );
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(JSON.parse(body)));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    let running = true;
    const client = async () => {
      while (running) {
        await new Promise<void>((r, j) => {
          const req = request({ port, host: '127.0.0.1', path: '/', agent }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              JSON.parse(Buffer.concat(chunks).toString());
              r();
            });
          });
          req.on('error', j);
          req.end();
        });
      }
    };
    const clients = Array.from({ length: 8 }, client);
    return async () => {
      running = false;
      await Promise.allSettled(clients);
      agent.destroy();
      await new Promise((r) => server.close(r));
    };
  },
};

// ---------------------------------------------------------------- parent

interface Options {
  parts: string[];
  runs: number;
  coldRuns: number;
  dists: Array<[string, string]>;
  mixes: string[];
  busyN: number;
}

function parseArgs(argv: string[]): Options {
  const value = (flag: string) =>
    argv.find((arg) => arg.startsWith(`--${flag}=`))?.slice(flag.length + 3);
  const dists: Array<[string, string]> = argv
    .filter((arg) => arg.startsWith('--dist='))
    .map((arg) => {
      const [name, dir] = arg.slice('--dist='.length).split('=');
      return [name!, resolve(dir!)];
    });
  return {
    parts: (value('parts') ?? 'ab,cold,busy').split(','),
    runs: Number(value('runs') ?? 7),
    coldRuns: Number(value('cold-runs') ?? 15),
    // The first build is the one the rate rows run on; `--dist=current=/dir` replaces dist/.
    dists: dists.some(([name]) => name === 'current')
      ? dists
      : [['current', join(repoRoot, 'dist')], ...dists],
    mixes: (value('mixes') ?? 'quiet,json,timers,http').split(','),
    busyN: Number(value('busy-n') ?? 50_000),
  };
}

const self = fileURLToPath(import.meta.url);
const med = (xs: number[]) => (xs.length ? median(xs) : Number.NaN);
const spread = (xs: number[]) => {
  if (!xs.length) return '–';
  const { min, max } = range(xs);
  return `${ns(min)}–${ns(max)}`;
};

/**
 * The contenders named in `--extras=a,b`: split on the commas *between* names, since a name may
 * hold a comma itself ('runPool, gated (retry: 1 attempt)': a plain split(',') made it two
 * names, "runPool" and " gated (…)", and the second failed in every child). Takes the longest
 * known name at each step; an unknown name fails here, listing the known ones.
 */
export function extrasList(value: string, known: readonly string[] = Object.keys(contenders)) {
  const names: string[] = [];
  let rest = value.trimStart();
  while (rest !== '') {
    let name: string | undefined;
    for (const k of known) {
      if ((rest === k || rest.startsWith(`${k},`)) && k.length > (name?.length ?? -1)) name = k;
    }
    if (name === undefined) {
      const list = known.map((k) => `"${k}"`).join(', ');
      throw new Error(`--extras: no contender named at "${rest}"; known: ${list}`);
    }
    names.push(name);
    rest = rest.slice(name.length + 1).trimStart();
  }
  return names;
}

/** Goal 1 and 4: steady-state CPU ns/job per build, rate gate on the current build. */
async function partAb(opts: Options) {
  const n = 500_000;
  const entries: Array<{
    label: string;
    contender: string;
    dist: string;
    cpu: number[];
    wall: number[];
  }> = [];
  for (const [name, dist] of opts.dists) {
    for (const contender of ['runPool', 'Pool'])
      entries.push({ label: `${contender} @ ${name}`, contender, dist, cpu: [], wall: [] });
  }
  const current = opts.dists[0]![1];
  const chosen = process.argv.find((arg) => arg.startsWith('--extras='));
  const extras = process.argv.includes('--no-extras')
    ? []
    : chosen !== undefined
      ? extrasList(chosen.slice('--extras='.length))
      : [
          'runPool + rate',
          'Pool + rate',
          'runPool + event subscribers',
          'Pool + event subscribers',
          'runPool + sluice/otel',
          'Pool + sluice/otel',
          'runPool + watchdog',
          'Pool + watchdog',
          'Pool + detectDeadlock',
          'runPool, gated (retry: 1 attempt)',
          'ref: minimal for-await pool',
          'ref: minimal Pool',
        ];
  for (const contender of extras)
    entries.push({ label: `${contender} @ current`, contender, dist: current, cpu: [], wall: [] });
  for (let rep = 0; rep < opts.runs; rep++) {
    for (const e of entries) {
      const run = await runIsolated<Timing>(
        self,
        'steady',
        { contender: e.contender, dist: e.dist, n } satisfies ChildParams,
        { timeoutMs: 120_000 },
      );
      if (!run.value) console.error(`${e.label}: ${run.error}`);
      else {
        e.cpu.push(run.value.cpuNs / n);
        e.wall.push(run.value.wallNs / n);
      }
    }
  }
  console.log(
    `\n### Steady state, ${count(n)} jobs after 3 x 50,000 warm-up (${opts.runs} runs each)\n`,
  );
  console.log(
    markdownTable(
      [
        'contender @ build',
        'CPU ns/job median',
        'CPU min–max',
        'wall ns/job median',
        'wall min–max',
      ],
      entries.map((e) => [e.label, ns(med(e.cpu)), spread(e.cpu), ns(med(e.wall)), spread(e.wall)]),
    ),
  );
}

/** Goal 2: each contender's first burst in a fresh process. */
async function partCold(opts: Options) {
  const sizes = [1_000, 10_000, 100_000];
  const names = ['runPool', 'Pool', 'p-map', 'ref: minimal for-await pool'];
  const rows: Array<Array<string | number>> = [];
  for (const n of sizes) {
    for (const [distName, dist] of opts.dists) {
      const wall: Record<string, number[]> = Object.fromEntries(names.map((x) => [x, []]));
      const cpu: Record<string, number[]> = Object.fromEntries(names.map((x) => [x, []]));
      const main: Record<string, number[]> = Object.fromEntries(names.map((x) => [x, []]));
      for (let rep = 0; rep < opts.coldRuns; rep++) {
        for (const name of names) {
          const run = await runIsolated<Timing>(
            self,
            'cold',
            { contender: name, dist, n } satisfies ChildParams,
            { timeoutMs: 60_000 },
          );
          if (!run.value) console.error(`${name}: ${run.error}`);
          else {
            wall[name]!.push(run.value.wallNs / 1e6);
            cpu[name]!.push(run.value.cpuNs / 1e6);
            if (run.value.mainNs !== undefined) main[name]!.push(run.value.mainNs / 1e6);
          }
        }
      }
      const mainCell = (x: string) => (main[x]!.length > 0 ? ` / ${med(main[x]!).toFixed(1)}` : '');
      const cell = (x: string) =>
        `${med(wall[x]!).toFixed(1)} / ${med(cpu[x]!).toFixed(1)}${mainCell(x)} ms`;
      const ratio = (xs: Record<string, number[]>) =>
        xs.runPool!.length > 0 ? `${(med(xs['p-map']!) / med(xs.runPool!)).toFixed(2)}x` : '–';
      rows.push([
        `${count(n)} @ ${distName}`,
        ...names.map(cell),
        `${ratio(wall)} / ${ratio(cpu)} / ${ratio(main)}`,
      ]);
    }
  }
  console.log(
    `\n### Cold first burst in a fresh process: wall / CPU (all threads) / main-thread CPU ms, medians of ${opts.coldRuns} processes each\n`,
  );
  console.log(
    markdownTable(['jobs @ build', ...names, 'p-map / runPool (wall / CPU / main thread)'], rows),
  );
}

/** Goal 3: contenders interleaved in one process beside other work. */
async function partBusy(opts: Options) {
  const names = ['runPool', 'Pool', 'p-map', 'ref: minimal for-await pool', 'ref: minimal Pool'];
  type Busy = Record<'cpu' | 'gc' | 'scavenges', Record<string, number[]>>;
  const rows: Array<Array<string | number>> = [];
  const gcRows: Array<Array<string | number>> = [];
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const [distName, dist] of opts.dists) {
    for (const mix of opts.mixes) {
      const run = await runIsolated<Busy>(
        self,
        'busy',
        { dist, n: opts.busyN, rounds: opts.runs, mix, names },
        { timeoutMs: 300_000 },
      );
      if (!run.value) {
        console.error(`busy ${mix}: ${run.error}`);
        continue;
      }
      const { cpu, gc, scavenges } = run.value;
      const m = Object.fromEntries(names.map((x) => [x, med(cpu[x]!)]));
      rows.push([
        `${mix} @ ${distName}`,
        ...names.map((x) => `${ns(m[x]!)} (${spread(cpu[x]!)})`),
        `${(m['p-map']! / m.runPool!).toFixed(2)}x`,
        `${(m['p-map']! / m['ref: minimal for-await pool']!).toFixed(2)}x`,
        `${(m.Pool! / m.runPool!).toFixed(2)}x`,
        `${(m['ref: minimal Pool']! / m['ref: minimal for-await pool']!).toFixed(2)}x`,
      ]);
      gcRows.push([
        `${mix} @ ${distName}`,
        ...names.map((x) => `${ns(med(gc[x]!))} / ${mean(scavenges[x]!).toFixed(1)}`),
      ]);
    }
  }
  console.log(
    `\n### Busy process: ${count(opts.busyN)}-job bursts interleaved, CPU ns/job median (min–max) over ${opts.runs} rounds\n`,
  );
  console.log(
    markdownTable(
      [
        'mix @ build',
        ...names,
        'p-map / runPool',
        'p-map / ref for-await',
        'Pool / runPool',
        'ref Pool / ref for-await',
      ],
      rows,
    ),
  );
  console.log(
    '\nMain-thread GC pauses inside each burst: ns/job median / scavenges per burst (mean)\n',
  );
  console.log(markdownTable(['mix @ build', ...names], gcRows));
}

if (isMain(import.meta.url)) {
  const opts = parseArgs(process.argv.slice(2));
  ensureBuilt();
  printHeader('Scheduler', ['p-map']);
  console.log(`builds: ${opts.dists.map(([name, dir]) => `${name} = ${dir}`).join(', ')}`);
  if (opts.parts.includes('ab')) await partAb(opts);
  if (opts.parts.includes('cold')) await partCold(opts);
  if (opts.parts.includes('busy')) await partBusy(opts);
}
