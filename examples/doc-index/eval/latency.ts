/**
 * Search latency on an existing index: every query of eval/queries.json through `search()` in one
 * process (after one warm-up query, which loads the semantic model if the index uses it), per
 * method; prints median, p90 and max in ms. The `search` command adds process start-up and,
 * for a semantic index, the model's load (measure it with `time`).
 *
 *   npx tsx eval/latency.ts <index.db>
 *
 * @module
 */
import type { Embedder } from '../src/embedder.js';
import { LexicalEmbedder } from '../src/lexical-embedder.js';
import { type SearchMethod, search } from '../src/search.js';
import { Store } from '../src/store.js';
import { UseEmbedder } from '../src/use-embedder.js';
import { loadQueries } from './run.js';

const db = process.argv[2];
if (!db) throw new Error('usage: latency.ts <index.db>');
const store = Store.open(db, { readonly: true });
const identity = store.embedder();
const embedder: Embedder =
  identity?.kind === 'local'
    ? new UseEmbedder({ threads: 0 })
    : new LexicalEmbedder({ dimension: identity?.dimension });
const chunks = (store.db.prepare('SELECT count(*) AS n FROM chunks').get() as { n: number }).n;
console.log(
  `${db}: ${store.documentCount()} documents, ${chunks} chunks, embedder ${identity?.model}`,
);
const queries = loadQueries();
for (const method of ['bm25', 'vector', 'hybrid'] as SearchMethod[]) {
  await search(store, 'warm up', { method, embedder });
  const times: number[] = [];
  for (const q of queries) {
    const started = performance.now();
    await search(store, q.query, { method, embedder, k: 10 });
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const at = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!;
  console.log(
    `${method.padEnd(6)} median ${at(0.5).toFixed(1)} ms · p90 ${at(0.9).toFixed(1)} ms · max ${times[times.length - 1]!.toFixed(1)} ms (${times.length} queries)`,
  );
}
store.close();
