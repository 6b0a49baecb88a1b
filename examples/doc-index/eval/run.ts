/**
 * The search evaluation: indexes the committed test corpus (test/corpus/pdf) with the lexical and
 * the semantic embedder, runs every query of eval/queries.json through each search method, and
 * scores them: hit@5 and MRR@5 for queries with a relevant document, the share answered "no good
 * match" for queries without one (and, for the others, how often a relevant answer was wrongly
 * called "no good match").
 *
 *   npm run eval -w sluice-doc-index [-- --json] [-- --work <dir>]
 *
 * `--work <dir>` keeps the indexes there between runs (a re-run skips unchanged documents).
 *
 * @module
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Embedder } from '../src/embedder.js';
import { runIndex } from '../src/indexer.js';
import { LexicalEmbedder } from '../src/lexical-embedder.js';
import { type SearchMethod, search } from '../src/search.js';
import { Store } from '../src/store.js';
import { UseEmbedder } from '../src/use-embedder.js';

/** One labelled query. */
export interface LabelledQuery {
  class: 'keyword' | 'paraphrase' | 'none';
  query: string;
  /** File names (in test/corpus/pdf) of the relevant documents; empty for class `none`. */
  relevant: string[];
}

/** Scores of one method on one class of queries. */
export interface ClassScore {
  queries: number;
  /** Share of queries with a relevant document in the top 5. */
  hitAt5: number;
  /** Mean of 1/rank of the first relevant document in the top 5 (0 when none). */
  mrrAt5: number;
  /** Share of the queries answered "no good match". */
  noGoodMatch: number;
}

/** One row of the evaluation: a method on its index. */
export interface MethodScore {
  method: string;
  byClass: Record<LabelledQuery['class'], ClassScore>;
  /** Mean time of one `search()` call (the query's embedding included), ms. */
  meanMs: number;
}

const HERE = dirname(fileURLToPath(import.meta.url));
const CORPUS = resolve(HERE, '..', 'test', 'corpus', 'pdf');

interface Setup {
  name: string;
  db: string;
  method: SearchMethod;
  embedder?: Embedder;
  weights?: { lexical: number; vector: number };
}

/** Reads the labelled queries (default: eval/queries.json). */
export function loadQueries(path = join(HERE, 'queries.json')): LabelledQuery[] {
  return (JSON.parse(readFileSync(path, 'utf8')) as { queries: LabelledQuery[] }).queries;
}

/**
 * Builds the indexes in `work` (reusing what is there) and scores every method.
 *
 * @example
 * ```ts
 * const rows = await evaluate(loadQueries(), '.tmp/eval');
 * ```
 */
export async function evaluate(
  queries: LabelledQuery[],
  work: string,
  opts: { semantic?: boolean } = {},
): Promise<MethodScore[]> {
  mkdirSync(work, { recursive: true });
  const lexicalDb = join(work, 'lexical.db');
  await runIndex({ inputs: [CORPUS], db: lexicalDb, embedder: new LexicalEmbedder() });
  const trigramDb = join(work, 'trigram.db');
  buildTrigramCopy(lexicalDb, trigramDb);
  const lexical = new LexicalEmbedder();
  const setups: Setup[] = [
    { name: 'hashing vectors (old default)', db: lexicalDb, method: 'vector', embedder: lexical },
    { name: 'BM25 (porter)', db: lexicalDb, method: 'bm25' },
    { name: 'BM25 (trigram)', db: trigramDb, method: 'bm25' },
    {
      name: 'hybrid BM25 + hashing (1 : 0.25)',
      db: lexicalDb,
      method: 'hybrid',
      embedder: lexical,
    },
  ];
  if (opts.semantic !== false) {
    const semanticDb = join(work, 'semantic.db');
    const indexing = new UseEmbedder();
    try {
      await runIndex({ inputs: [CORPUS], db: semanticDb, embedder: indexing });
    } finally {
      await indexing.close();
    }
    const query = new UseEmbedder({ threads: 0 });
    setups.push(
      { name: 'semantic vectors (USE lite)', db: semanticDb, method: 'vector', embedder: query },
      {
        name: 'hybrid BM25 + semantic, plain RRF (1 : 1)',
        db: semanticDb,
        method: 'hybrid',
        embedder: query,
        weights: { lexical: 1, vector: 1 },
      },
      {
        name: 'hybrid BM25 + semantic (1 : 0.25, default)',
        db: semanticDb,
        method: 'hybrid',
        embedder: query,
      },
    );
  }
  const rows: MethodScore[] = [];
  for (const setup of setups) rows.push(await score(setup, queries));
  return rows;
}

/** A copy of the index whose FTS table uses the trigram tokenizer instead of porter. */
function buildTrigramCopy(from: string, to: string): void {
  rmSync(to, { force: true });
  copyFileSync(from, to);
  const store = Store.open(to);
  try {
    store.db.exec(`
      DROP TABLE chunks_fts;
      CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks', content_rowid='id',
        tokenize='trigram remove_diacritics 1');
      INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');`);
  } finally {
    store.close();
  }
}

async function score(setup: Setup, queries: LabelledQuery[]): Promise<MethodScore> {
  const store = Store.open(setup.db, { readonly: true });
  const perClass = new Map<string, { n: number; hits: number; rr: number; none: number }>();
  let elapsed = 0;
  try {
    // Warm-up: the first semantic query loads the model.
    await search(store, 'warm up', { method: setup.method, embedder: setup.embedder, k: 5 });
    for (const q of queries) {
      const started = performance.now();
      const answer = await search(store, q.query, {
        method: setup.method,
        embedder: setup.embedder,
        weights: setup.weights,
        k: 5,
      });
      elapsed += performance.now() - started;
      const rank = answer.results.findIndex((r) => q.relevant.includes(basename(r.document)));
      const c = perClass.get(q.class) ?? { n: 0, hits: 0, rr: 0, none: 0 };
      c.n++;
      if (rank >= 0) {
        c.hits++;
        c.rr += 1 / (rank + 1);
      }
      if (answer.noGoodMatch) c.none++;
      perClass.set(q.class, c);
      if (process.env.EVAL_TRACE)
        console.error(
          `${setup.name} | ${q.class} | ${q.query} | rank ${rank + 1} | ${JSON.stringify(answer.evidence)} | ${answer.noGoodMatch}`,
        );
    }
  } finally {
    store.close();
  }
  const byClass = {} as MethodScore['byClass'];
  for (const cls of ['keyword', 'paraphrase', 'none'] as const) {
    const c = perClass.get(cls) ?? { n: 0, hits: 0, rr: 0, none: 0 };
    byClass[cls] = {
      queries: c.n,
      hitAt5: c.n ? c.hits / c.n : 0,
      mrrAt5: c.n ? c.rr / c.n : 0,
      noGoodMatch: c.n ? c.none / c.n : 0,
    };
  }
  return { method: setup.name, byClass, meanMs: elapsed / queries.length };
}

/** The scores as a Markdown table (the one in BENCHMARKS.md). */
export function formatTable(rows: MethodScore[]): string {
  const f = (x: number) => x.toFixed(2);
  const lines = [
    '| method | keyword hit@5 | keyword MRR@5 | paraphrase hit@5 | paraphrase MRR@5 | no-relevant → "no good match" | relevant → wrongly "no good match" | mean search ms |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const { method, byClass: c, meanMs } of rows) {
    const { keyword: k, paraphrase: p, none: n } = c;
    const wrong = (k.noGoodMatch * k.queries + p.noGoodMatch * p.queries) / (k.queries + p.queries);
    lines.push(
      `| ${method} | ${f(k.hitAt5)} | ${f(k.mrrAt5)} | ${f(p.hitAt5)} | ${f(p.mrrAt5)} | ${Math.round(n.noGoodMatch * n.queries)}/${n.queries} | ${f(wrong)} | ${meanMs.toFixed(1)} |`,
    );
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<void> {
  const at = argv.indexOf('--work');
  const keep = at >= 0 ? argv[at + 1] : undefined;
  const work = keep ? resolve(keep) : mkdtempSync(join(tmpdir(), 'doc-index-eval-'));
  const queries = loadQueries();
  try {
    const rows = await evaluate(queries, work, { semantic: !argv.includes('--no-semantic') });
    process.stdout.write(
      argv.includes('--json') ? `${JSON.stringify(rows)}\n` : `${formatTable(rows)}\n`,
    );
  } finally {
    if (!keep && existsSync(work)) rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main(process.argv.slice(2));
}
