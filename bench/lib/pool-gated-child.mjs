// Child for callgrind counts of Pool's gated paths (BENCHMARKS.md, "Pool ≤ 1.4x runPool": the
// gated rows A/B). bench/lib/burst-child.mjs's Pool idiom (await submit, take each result) with
// one gate configured, never limiting: one process, `warm` bursts of 50,000 jobs, then one of `n`
// (n = 0: the baseline to subtract).
//   valgrind --tool=callgrind node --predictable pool-gated-child.mjs <gate> <dist> <warm> <n>
//   gate: rate | key | priority | retry
import { pathToFileURL } from 'node:url';

const [gate, dist, warmArg, nArg] = process.argv.slice(2);
const { Pool } = await import(pathToFileURL(`${dist}/index.js`).href);
const double = async (x) => x * 2;
const options = {
  rate: { rate: { limit: 1e9, interval: 1000 } },
  key: { key: (job) => String(job & 7), perKey: { concurrency: 16 } },
  priority: {},
  retry: { retry: { attempts: 2 } },
}[gate];
if (options === undefined) throw new Error(`unknown gate ${gate}`);

async function burst(count) {
  const pool = new Pool(double, { concurrency: 16, ...options });
  let settled = 0;
  let done;
  const all = new Promise((resolve) => {
    done = resolve;
  });
  const add = (result) => {
    if (!result.ok) throw result.error;
    if (++settled === count) done();
  };
  for (let i = 0; i < count; i++) {
    const task =
      gate === 'priority' ? await pool.submit(i, { priority: i % 3 }) : await pool.submit(i);
    task.result.then(add);
  }
  pool.close();
  await pool.drain();
  if (count > 0) await all;
  return settled;
}

for (let i = 0; i < Number(warmArg); i++) await burst(50_000);
await burst(Number(nArg));
