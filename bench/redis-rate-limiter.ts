// redisRateLimiter: the cost of one reserve() on loopback Redis, next to a PING on the same
// client (the floor of a round trip). Limits are set so high that every wait is 0: what is timed
// is the round trip and the script, not the rate.
//   npx tsx bench/redis-rate-limiter.ts [--quick] [--runs=3] [--n=20000]
// `one at a time`: each call awaited before the next (a pool asks for one permit at a time, so
// this is the latency a start pays). `64 in flight`: calls pipelined on one connection (many
// pools sharing a client), i.e. what Redis spends per permit.
import { fileURLToPath } from 'node:url';
import {
  type CaseContext,
  type Cases,
  count,
  ensureBuilt,
  type IsolatedRun,
  isMain,
  markdownTable,
  median,
  printHeader,
  range,
  runIsolated,
} from './lib/index.js';

const REDIS_URL = 'redis://127.0.0.1:6379';

interface Params {
  n: number;
  inFlight: number;
}

interface Value {
  elapsedNs: number;
}

/** Runs `call` n times with at most `inFlight` outstanding, after an untimed warm-up. */
async function drive(call: () => Promise<unknown>, p: Params, ctx: CaseContext): Promise<Value> {
  const run = async (n: number) => {
    let left = n;
    const lane = async () => {
      while (left-- > 0) await call();
    };
    await Promise.all(Array.from({ length: p.inFlight }, lane));
  };
  await run(2000);
  await ctx.mark('start');
  const start = process.hrtime.bigint();
  await run(p.n);
  return { elapsedNs: Number(process.hrtime.bigint() - start) };
}

async function connect() {
  const { createClient } = await import('redis');
  return createClient({ url: REDIS_URL }).connect();
}

export const cases = {
  async reserve(p: Params, ctx: CaseContext): Promise<Value> {
    const { redisRateLimiter } = await import('../dist/brokers/redis/index.js');
    const client = await connect();
    const name = `bench:${process.pid}:${Date.now().toString(36)}`;
    try {
      // The most the limiter takes (one permit per µs), and a bucket as large: every wait is 0.
      const limiter = redisRateLimiter(client, name, { limit: 1e6, interval: 1000, burst: 1e6 });
      return await drive(async () => limiter.reserve(), p, ctx);
    } finally {
      await client.del(`sluice:rate:${name}`);
      await client.quit();
    }
  },
  async ping(p: Params, ctx: CaseContext): Promise<Value> {
    const client = await connect();
    try {
      return await drive(() => client.sendCommand(['PING']), p, ctx);
    } finally {
      await client.quit();
    }
  },
} satisfies Cases;

function parseArgs(argv: string[]) {
  const value = (flag: string) => argv.find((arg) => arg.startsWith(`--${flag}=`))?.split('=')[1];
  const quick = argv.includes('--quick');
  return {
    runs: Number(value('runs') ?? (quick ? 1 : 3)),
    n: Number(value('n') ?? (quick ? 5000 : 20_000)),
  };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  ensureBuilt();
  printHeader('redisRateLimiter: µs per reserve() on loopback Redis, PING as the floor', ['redis']);
  const rows: (string | number)[][] = [];
  for (const inFlight of [1, 64]) {
    const measured = { reserve: [] as IsolatedRun<Value>[], ping: [] as IsolatedRun<Value>[] };
    for (let rep = 0; rep < opts.runs; rep++) {
      // Contenders take turns within each repetition, so a noisy minute hits both alike.
      for (const name of ['reserve', 'ping'] as const) {
        const run = await runIsolated<Value>(fileURLToPath(import.meta.url), name, {
          n: opts.n,
          inFlight,
        } satisfies Params);
        if (run.error) console.error(`${name} @ ${inFlight}: ${run.error}`);
        measured[name].push(run);
      }
    }
    for (const [name, runs] of Object.entries(measured)) {
      const us = runs.filter((r) => r.value).map((r) => r.value!.elapsedNs / 1000 / opts.n);
      const spread = range(us);
      rows.push([
        name === 'reserve' ? 'reserve()' : 'PING',
        inFlight === 1 ? 'one at a time' : `${inFlight} in flight`,
        median(us).toFixed(1),
        `${spread.min.toFixed(1)}–${spread.max.toFixed(1)}`,
        count(Math.round(1e6 / median(us))),
      ]);
    }
  }
  console.log(`\n### ${count(opts.n)} calls per run after 2,000 untimed, ${opts.runs} runs\n`);
  console.log(
    markdownTable(['call', 'concurrency', 'µs per call (median)', 'range', 'calls/s'], rows),
  );
}

if (isMain(import.meta.url)) await main();
