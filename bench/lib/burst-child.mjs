// Child of bench/instructions.ts, run under callgrind on bare node (no TypeScript loader, whose
// own instructions would swamp a burst's). One process: load the contender, then optionally
// `warm` bursts of 50,000 jobs, then one burst of `n` jobs (n = 0: load only, the baseline the
// parent subtracts).
//   node --predictable burst-child.mjs <runPool|p-map> <sluice dist dir> <warm> <n>
import { pathToFileURL } from 'node:url';

const [contender, dist, warmArg, nArg] = process.argv.slice(2);
const warm = Number(warmArg);
const n = Number(nArg);
const CONCURRENCY = 16; // as bench/scheduler.ts
const double = async (x) => x * 2;
function* upTo(count) {
  for (let i = 0; i < count; i++) yield i;
}

let burst;
if (contender === 'p-map') {
  const { default: pMap } = await import('p-map');
  burst = async (count) => (await pMap(upTo(count), double, { concurrency: CONCURRENCY })).length;
} else if (contender === 'runPool') {
  const { runPool } = await import(pathToFileURL(`${dist}/index.js`).href);
  burst = async (count) => {
    let done = 0;
    for await (const result of runPool(upTo(count), double, { concurrency: CONCURRENCY })) {
      if (!result.ok) throw result.error;
      done++;
    }
    return done;
  };
} else {
  throw new Error(`unknown contender ${contender}`);
}
for (let i = 0; i < warm; i++) await burst(50_000);
if (n > 0 && (await burst(n)) !== n) throw new Error('a burst lost jobs');
