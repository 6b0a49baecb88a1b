/**
 * How the search defaults were chosen: over the evaluation queries (eval/queries.json) and the
 * indexes `run.ts --work <dir>` left in <dir>, it prints, for each fusion weight of the vector leg,
 * hybrid MRR@5 per class, and the evidence (coverage, standout) of every query's best result, so
 * that the "no good match" thresholds can be read off.
 *
 *   npx tsx eval/calibrate.ts <dir>
 *
 * @module
 */
import { basename, join } from 'node:path';
import { search } from '../src/search.js';
import { Store } from '../src/store.js';
import { UseEmbedder } from '../src/use-embedder.js';
import { loadQueries } from './run.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: calibrate.ts <work dir of run.ts --work>');
const queries = loadQueries();
const store = Store.open(join(dir, 'semantic.db'), { readonly: true });
const embedder = new UseEmbedder({ threads: 0 });
for (const vector of [0, 0.25, 0.5, 0.75, 1]) {
  const rr: Record<string, number[]> = { keyword: [], paraphrase: [] };
  for (const q of queries.filter((x) => x.class !== 'none')) {
    const a = await search(store, q.query, { embedder, k: 5, weights: { lexical: 1, vector } });
    const rank = a.results.findIndex((r) => q.relevant.includes(basename(r.document)));
    rr[q.class]!.push(rank < 0 ? 0 : 1 / (rank + 1));
  }
  const mean = (xs: number[]) => (xs.reduce((s, x) => s + x, 0) / xs.length).toFixed(2);
  console.log(
    `vector weight ${vector}: keyword MRR@5 ${mean(rr.keyword!)}, paraphrase MRR@5 ${mean(rr.paraphrase!)}`,
  );
}
for (const q of queries) {
  const a = await search(store, q.query, { embedder, k: 5 });
  const { coverage, standout } = a.evidence;
  console.log(
    `${q.class.padEnd(10)} cov ${coverage.toFixed(2)} standout ${standout?.toFixed(2)}  ${q.query}`,
  );
}
store.close();
