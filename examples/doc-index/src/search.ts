/**
 * Search: embed the query with the index's own embedder, score every chunk by cosine similarity
 * (a dot product, since stored vectors are unit length), keep the top k. A linear scan is the
 * honest choice at this size (thousands of chunks, a few ms); an ANN index would be the next step.
 *
 * @module
 */
import { normalize } from './chunk.js';
import type { Embedder } from './embedder.js';
import { tokenize } from './lexical-embedder.js';
import type { Store } from './store.js';

/** One search result. */
export interface Hit {
  /** Cosine similarity, -1..1. */
  score: number;
  path: string;
  /** 1-based page number. */
  page: number;
  /** Up to ~240 characters of the chunk, centred on the first query word it contains. */
  snippet: string;
}

interface Row {
  path: string;
  page: number;
  text: string;
  embedding: Buffer;
}

/**
 * Returns the `k` best chunks for `query`, best first.
 *
 * @throws RangeError when `k` is not a positive integer.
 * @example
 * ```ts
 * const hits = await search(store, new LexicalEmbedder(), 'hyperlink colours', 5);
 * ```
 */
export async function search(
  store: Store,
  embedder: Embedder,
  query: string,
  k = 10,
): Promise<Hit[]> {
  if (!Number.isInteger(k) || k < 1)
    throw new RangeError(`search option k must be a positive integer, got ${k}`);
  const [q] = await embedder.embed([query]);
  const top: Array<{ score: number; row: Row }> = [];
  const rows = store.db
    .prepare<[], Row>(
      `SELECT d.path AS path, c.page AS page, c.text AS text, v.embedding AS embedding
         FROM vectors v JOIN chunks c ON c.id = v.chunk_id JOIN documents d ON d.id = c.document_id`,
    )
    .iterate();
  for (const row of rows) {
    const score = dot(q!, row.embedding);
    if (top.length < k || score > top[top.length - 1]!.score) insertSorted(top, { score, row }, k);
  }
  return top.map(({ score, row }) => ({
    score,
    path: row.path,
    page: row.page,
    snippet: snippet(row.text, query),
  }));
}

function dot(q: Float32Array, blob: Buffer): number {
  // A Float32Array view needs 4-byte alignment; copy the rare blob that is not aligned.
  const bytes = blob.byteOffset % 4 === 0 ? blob : Buffer.from(blob);
  const v = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  // Vectors of another length cannot come from this index's embedder; score them out.
  if (v.length !== q.length) return -Infinity;
  let s = 0;
  for (let i = 0; i < q.length; i++) s += q[i]! * v[i]!;
  return s;
}

function insertSorted<T extends { score: number }>(top: T[], item: T, k: number): void {
  let i = top.length;
  while (i > 0 && top[i - 1]!.score < item.score) i--;
  top.splice(i, 0, item);
  if (top.length > k) top.pop();
}

/** Text around the first query word found in `text`, on one line. */
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
