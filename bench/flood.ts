// Flood: a producer that can deliver 1,000,000 messages faster than a 1 ms handler can take them.
// Naive promise-per-message against a sluice Pool whose `await submit` pauses the producer.
//   npx tsx bench/flood.ts [--quick] [--messages=1000000] [--concurrency=256] [--step=0.5]
//                          [--only=naive,'sluice Pool']
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  type CaseContext,
  type Cases,
  count,
  ensureBuilt,
  type IsolatedRun,
  isMain,
  loadSluice,
  markdownTable,
  mib,
  printHeader,
  rssGrowthSince,
  runIsolated,
  seconds,
} from './lib/index.js';

interface Message {
  id: number;
  body: string;
}

/** The source: every message is a fresh object with a ~128-byte body, as if parsed off a socket. */
function* messages(n: number): Generator<Message> {
  for (let id = 0; id < n; id++) yield { id, body: String(id).padStart(128, '.') };
}

interface FloodParams {
  n: number;
  /** The sluice Pool's concurrency, and the downstream's connection count. */
  concurrency: number;
  /** Messages the producer hands over per macrotask. */
  batch: number;
  /** Model the 1 ms call's downstream as `concurrency` connections (true) or unlimited (false). */
  limited: boolean;
}

interface FloodValue {
  elapsedMs: number;
  handled: number;
  maxInFlight: number;
}

/**
 * A downstream with a fixed number of connections (a database pool, an HTTP agent's sockets):
 * a call waits for a free connection, then holds it for 1 ms. A FIFO of waiters, compacted as
 * it drains so it costs O(waiting), as a real client's queue would.
 */
class Downstream {
  #free: number;
  #waiters: Array<() => void> = [];
  #head = 0;

  constructor(connections: number) {
    this.#free = connections;
  }

  async call(): Promise<void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiters.push(resolve));
    await sleep(1);
    const next = this.#waiters[this.#head];
    if (next === undefined) {
      this.#free++;
      return;
    }
    this.#waiters[this.#head++] = undefined as never;
    if (this.#head > 4096 && this.#head * 2 > this.#waiters.length) {
      this.#waiters = this.#waiters.slice(this.#head);
      this.#head = 0;
    }
    next();
  }
}

/** The handler: one 1 ms downstream call per message; counts what is in flight and handled. */
function makeHandler(limited: boolean, connections: number) {
  const state = { inFlight: 0, maxInFlight: 0, handled: 0 };
  const downstream = limited ? new Downstream(connections) : { call: () => sleep(1) };
  const handle = async (message: Message) => {
    state.inFlight++;
    if (state.inFlight > state.maxInFlight) state.maxInFlight = state.inFlight;
    await downstream.call();
    if (message.body.length > 0) state.handled++;
    state.inFlight--;
  };
  return { state, handle };
}

/**
 * Promise-per-message: the producer hands over `batch` messages per macrotask (as a socket's
 * 'data' events would) and each one starts its handler at once; nothing waits for room.
 */
async function naive(params: FloodParams, ctx: CaseContext): Promise<FloodValue> {
  const { n, batch, limited, concurrency } = params;
  const { state, handle } = makeHandler(limited, concurrency);
  await ctx.mark('start');
  const started = performance.now();
  const source = messages(n);
  let exhausted = false;
  while (!exhausted) {
    for (let i = 0; i < batch; i++) {
      const next = source.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      void handle(next.value);
    }
    await new Promise(setImmediate);
  }
  while (state.handled < n) await sleep(5);
  return { elapsedMs: performance.now() - started, ...state };
}

/** The same producer behind a sluice Pool: `await pool.submit` is where it is paused. */
async function sluicePool(params: FloodParams, ctx: CaseContext): Promise<FloodValue> {
  const { n, limited, concurrency } = params;
  const { Pool } = await loadSluice();
  const { state, handle } = makeHandler(limited, concurrency);
  await ctx.mark('start');
  const started = performance.now();
  const pool = new Pool(handle, { concurrency });
  for (const message of messages(n)) await pool.submit(message);
  pool.close();
  await pool.drain();
  if (state.handled !== n) throw new Error(`handled ${state.handled} of ${n}`);
  return { elapsedMs: performance.now() - started, ...state };
}

export const cases: Cases = { naive, 'sluice Pool': sluicePool };

/** What main runs: a label, the case, and whether the downstream is limited. */
const variants = [
  { label: 'naive, unlimited downstream', name: 'naive', limited: false },
  { label: 'naive', name: 'naive', limited: true },
  { label: 'sluice Pool', name: 'sluice Pool', limited: true },
];

function parseArgs(argv: string[]) {
  const value = (flag: string) => argv.find((arg) => arg.startsWith(`--${flag}=`))?.split('=')[1];
  const quick = argv.includes('--quick');
  return {
    n: Number(value('messages') ?? (quick ? 100_000 : 1_000_000)),
    concurrency: Number(value('concurrency') ?? 256),
    stepMs: Number(value('step') ?? 0.5) * 1000,
    only: value('only')?.split(',') ?? [],
  };
}

/** RSS at every `stepMs` after the start mark, read from the samples nearest to each step. */
function series(run: IsolatedRun<FloodValue>, stepMs: number): number[] {
  const start = run.marks[0]?.tMs ?? 0;
  const out: number[] = [];
  let i = 0;
  for (let t = 0; ; t += stepMs) {
    while (i < run.samples.length && run.samples[i]!.tMs - start < t) i++;
    const sample = run.samples[i];
    if (!sample) break;
    out.push(sample.rssBytes);
  }
  return out;
}

async function main() {
  const { n, concurrency, stepMs, only } = parseArgs(process.argv.slice(2));
  const chosen = variants.filter((v) => !only.length || only.some((part) => v.label === part));
  ensureBuilt();
  printHeader('Flood');
  const batch = 1000;
  const runs: Array<IsolatedRun<FloodValue>> = [];
  for (const variant of chosen) {
    const params: FloodParams = { n, concurrency, batch, limited: variant.limited };
    const run = await runIsolated<FloodValue>(
      fileURLToPath(import.meta.url),
      variant.name,
      params,
      {
        sampleEveryMs: 20,
        timeoutMs: 150_000,
        // Let the naive run grow as far as it needs, so its footprint is measured, not clipped.
        nodeArgs: ['--max-old-space-size=16384'],
      },
    );
    if (run.error) console.error(`${variant.label}: ${run.error}`);
    runs.push(run);
  }
  console.log(
    `\n## ${count(n)} messages, 1 ms downstream call, ${concurrency} connections, producer batches of ${batch}\n`,
  );
  console.log(
    markdownTable(
      ['variant', 'total time', 'peak RSS', 'RSS added', 'max in flight'],
      runs.map((run, i) => [
        chosen[i]!.label,
        run.value ? seconds(run.value.elapsedMs) : (run.error ?? '?'),
        mib(run.peakRssBytes),
        mib(rssGrowthSince(run)),
        run.value ? count(run.value.maxInFlight) : '-',
      ]),
    ),
  );
  const lines = runs.map((run) => series(run, stepMs));
  const rows = Math.max(...lines.map((line) => line.length));
  console.log(`\nRSS every ${stepMs / 1000} s from the start of the run (blank: finished)\n`);
  console.log(
    markdownTable(
      ['t', ...chosen.map((variant) => variant.label)],
      Array.from({ length: rows }, (_, row) => [
        `${((row * stepMs) / 1000).toFixed(1)} s`,
        ...lines.map((line) => (line[row] === undefined ? '' : mib(line[row]!))),
      ]),
    ),
  );
}

if (isMain(import.meta.url)) await main();
