/**
 * Search: a lexical leg (FTS5, BM25: lexical-search.ts) and a vector leg (the index's embedder,
 * cosine similarity over every chunk: vector-search.ts), fused by reciprocal rank
 * fusion, grouped per document (its best chunk, page and snippet), with a verdict on whether
 * anything is a good match at all.
 *
 * @module
 */
import { normalize } from './chunk.js';
import type { Embedder } from './embedder.js';
import { tokenize } from './lexical-embedder.js';
import { coverage, type LexicalHit, lexicalSearch, lexicalSnippet } from './lexical-search.js';
import { parseQuery } from './query.js';
import type { Store } from './store.js';
import { type Cosine, standout, vectorScores } from './vector-search.js';

/** Which legs rank the results. */
export type SearchMethod = 'hybrid' | 'bm25' | 'vector';

/** One document in the results: its best chunk. */
export interface Hit {
  /** Path of the document. */
  document: string;
  /** 1-based page of the best chunk. */
  page: number;
  /**
   * Ranking score, higher is better: the RRF score for `hybrid`, -BM25 for `bm25`, cosine
   * similarity for `vector`. Comparable within one answer only.
   */
  score: number;
  /** ~30 words of the best chunk; words that matched the query are between `**`. */
  snippet: string;
  /** Cosine similarity of the best chunk to the query (-1..1), when the vector leg ran. */
  cosine?: number;
}

/** What `search` answers. */
export interface SearchAnswer {
  query: string;
  method: SearchMethod;
  /** True when no result is a good match (see {@link isGoodMatch}); `results` are then guesses. */
  noGoodMatch: boolean;
  /**
   * What the verdict was based on, for the best result: the share of the query its chunk covers
   * (0..1, IDF-weighted) and, with a semantic embedder, its cosine similarity.
   */
  evidence: { coverage: number; cosine?: number; standout?: number };
  /** Documents, best first, at most k. */
  results: Hit[];
}

/** Options of {@link search}. */
export interface SearchOptions {
  /** Documents to return. Default 10. */
  k?: number;
  /** Default `hybrid` when an embedder is given, else `bm25`. */
  method?: SearchMethod;
  /** The embedder that built the index; needed for `hybrid` and `vector`. */
  embedder?: Embedder;
  /** Thresholds of the "no good match" verdict. Default {@link DEFAULT_THRESHOLDS}. */
  thresholds?: Thresholds;
  /** Weights of the two legs in the fusion. Default {@link DEFAULT_WEIGHTS}. */
  weights?: { lexical: number; vector: number };
}

/**
 * A result is a good match when its chunk covers at least `coverage` of the query (IDF-weighted,
 * see lexical-search.ts) or, with a semantic embedder, its cosine similarity stands at least
 * `standout` standard deviations above the mean over all chunks. Calibrated on the evaluation
 * set (eval/queries.json).
 */
export interface Thresholds {
  coverage: number;
  standout: number;
}

/**
 * Calibrated with `npm run eval` and eval/calibrate.ts (see BENCHMARKS.md): every query without
 * a relevant document covered at most 0.12 of itself on the test corpus (0.27 on the 170-PDF
 * corpus), every keyword query 1.0. `standout` is off
 * (Infinity): with Universal Sentence Encoder lite it did not separate the two (a nonsense word
 * stood out by 3.9 standard deviations, most relevant paraphrases by 1–2.5).
 */
export const DEFAULT_THRESHOLDS: Thresholds = { coverage: 0.3, standout: Number.POSITIVE_INFINITY };

/**
 * Measured with eval/calibrate.ts: plain RRF (1:1) lost to BM25 alone on this corpus (paraphrase
 * MRR@5 0.69 vs 0.80); a vector leg at a quarter of BM25's weight keeps BM25's order where it is
 * sure and lets the vectors decide among the rest.
 */
export const DEFAULT_WEIGHTS = { lexical: 1, vector: 0.25 };

/** RRF's k: the standard 60 (Cormack et al.); ranks matter, not raw scores of either leg. */
const RRF_K = 60;

interface ChunkRow {
  id: number;
  documentId: number;
  path: string;
  page: number;
  text: string;
}

/**
 * Searches `store` for `query`.
 *
 * @throws RangeError when `k` is not a positive integer; Error when `method` needs an embedder
 *   and none is given.
 * @example
 * ```ts
 * const answer = await search(store, 'rotate pages to landscape', { embedder, k: 5 });
 * if (answer.noGoodMatch) console.log('no good match');
 * ```
 */
export async function search(
  store: Store,
  query: string,
  opts: SearchOptions = {},
): Promise<SearchAnswer> {
  const k = opts.k ?? 10;
  if (!Number.isInteger(k) || k < 1)
    throw new RangeError(`search option k must be a positive integer, got ${k}`);
  const method = opts.method ?? (opts.embedder ? 'hybrid' : 'bm25');
  if (method !== 'bm25' && !opts.embedder)
    throw new Error(`search method ${method} needs the index's embedder`);
  const thresholds = opts.thresholds ?? DEFAULT_THRESHOLDS;
  const parsed = parseQuery(query);
  const lexical = method === 'vector' ? [] : lexicalSearch(store.db, parsed);
  const cosines = method === 'bm25' ? undefined : await vectorScores(store, opts.embedder!, query);
  const docOf = new Map(lexical.map((h) => [h.chunkId, h.documentId]));
  for (const [id, v] of cosines ?? []) docOf.set(id, v.documentId);
  const scores = fuse(method, lexical, cosines, opts.weights ?? DEFAULT_WEIGHTS);
  const best = bestPerDocument(scores, docOf, store).slice(0, k);
  const lexicalIds = new Set(lexical.map((h) => h.chunkId));
  const results = best.map(({ chunk, score }): Hit => {
    const cosine = cosines?.get(chunk.id)?.cosine;
    return {
      document: chunk.path,
      page: chunk.page,
      score,
      snippet:
        (lexicalIds.has(chunk.id) && lexicalSnippet(store.db, parsed, chunk.id)) ||
        snippet(chunk.text, query),
      ...(cosine === undefined ? {} : { cosine }),
    };
  });
  const top = best[0];
  const topCosine = top && cosines?.get(top.chunk.id)?.cosine;
  const evidence = {
    coverage: top ? coverage(store.db, parsed, top.chunk.id) : 0,
    ...(topCosine !== undefined && semantic(opts.embedder)
      ? { cosine: topCosine, standout: standout(topCosine, cosines!) }
      : {}),
  };
  const good = top !== undefined && isGoodMatch(evidence.coverage, evidence.standout, thresholds);
  return { query, method, noGoodMatch: !good, evidence, results };
}

/**
 * The verdict: enough of the query in the best chunk, or (semantic embedders) a best chunk that
 * stands out from the rest of the index by at least `t.standout` standard deviations.
 */
export function isGoodMatch(cover: number, standout: number | undefined, t: Thresholds): boolean {
  return cover >= t.coverage || (standout !== undefined && standout >= t.standout);
}

/** Cosine similarity means something only for a model trained on meaning. */
function semantic(embedder: Embedder | undefined): boolean {
  return embedder !== undefined && embedder.identity.kind !== 'lexical';
}

/** Chunk id -> fused score, higher is better. */
function fuse(
  method: SearchMethod,
  lexical: LexicalHit[],
  cosines: Map<number, Cosine> | undefined,
  weights: { lexical: number; vector: number },
): Map<number, number> {
  if (method === 'bm25') return new Map(lexical.map((h) => [h.chunkId, -h.bm25]));
  const byCosine = [...cosines!].map(([id, v]): [number, number] => [id, v.cosine]);
  if (method === 'vector') return new Map(byCosine);
  const fused = new Map<number, number>();
  const add = (id: number, rank: number, weight: number) => {
    fused.set(id, (fused.get(id) ?? 0) + weight / (RRF_K + rank + 1));
  };
  for (const [rank, h] of lexical.entries()) add(h.chunkId, rank, weights.lexical);
  byCosine.sort((a, b) => b[1] - a[1]);
  for (const [rank, [id]] of byCosine.entries()) add(id, rank, weights.vector);
  return fused;
}

/** One entry per document, its best-scoring chunk, best document first. */
function bestPerDocument(
  scores: Map<number, number>,
  docOf: Map<number, number>,
  store: Store,
): Array<{ chunk: ChunkRow; score: number }> {
  const byDoc = new Map<number, { id: number; score: number }>();
  for (const [id, score] of scores) {
    const documentId = docOf.get(id)!;
    const seen = byDoc.get(documentId);
    if (!seen || score > seen.score) byDoc.set(documentId, { id, score });
  }
  const row = store.db.prepare<[number], ChunkRow>(
    `SELECT c.id AS id, c.document_id AS documentId, d.path AS path, c.page AS page, c.text AS text
       FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id = ?`,
  );
  return [...byDoc.values()]
    .sort((a, b) => b.score - a.score)
    .map(({ id, score }) => ({ chunk: row.get(id)!, score }));
}

/** Text around the first query word found in `text`, on one line (for chunks FTS did not match). */
export function snippet(text: string, query: string, width = 240): string {
  const flat = normalize(text).replace(/\s+/g, ' ');
  if (flat.length <= width) return flat;
  const lower = flat.toLowerCase();
  const hits = tokenize(query)
    .map((t) => lower.indexOf(t))
    .filter((i) => i >= 0);
  const at = hits.length ? Math.min(...hits) : 0;
  let start = Math.max(0, Math.min(at - Math.floor(width / 3), flat.length - width));
  let end = Math.min(flat.length, start + width);
  // Start and end on word boundaries, so the snippet does not open or close mid-word.
  if (start > 0) start = flat.indexOf(' ', start) + 1 || start;
  if (end < flat.length)
    end = flat.lastIndexOf(' ', end) > start ? flat.lastIndexOf(' ', end) : end;
  const body = flat.slice(start, end);
  return `${start > 0 ? '…' : ''}${body}${end < flat.length ? '…' : ''}`;
}
