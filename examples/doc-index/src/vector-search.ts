/**
 * The vector leg of search: the query embedded by the index's own embedder, scored against every
 * chunk by cosine similarity (a dot product: stored vectors are unit length). A linear scan is the
 * honest choice at this size (~7,000 chunks in ~10 ms of arithmetic; reading the BLOBs costs
 * more); an ANN index would be the next step.
 *
 * @module
 */
import type { Embedder } from './embedder.js';
import type { Store } from './store.js';

/** One chunk's similarity to the query. */
export interface Cosine {
  cosine: number;
  documentId: number;
}

/**
 * Chunk id -> cosine similarity to `query`, over every chunk of the index.
 *
 * @example
 * ```ts
 * const cosines = await vectorScores(store, embedder, 'rotate pages');
 * ```
 */
export async function vectorScores(
  store: Store,
  embedder: Embedder,
  query: string,
): Promise<Map<number, Cosine>> {
  const [q] = await embedder.embed([query]);
  const scores = new Map<number, Cosine>();
  const rows = store.db
    .prepare<[], { id: number; documentId: number; embedding: Buffer }>(
      `SELECT v.chunk_id AS id, c.document_id AS documentId, v.embedding AS embedding
         FROM vectors v JOIN chunks c ON c.id = v.chunk_id`,
    )
    .iterate();
  for (const row of rows)
    scores.set(row.id, { cosine: dot(q!, row.embedding), documentId: row.documentId });
  return scores;
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

/**
 * How far `cosine` lies above the mean cosine of all chunks, in standard deviations: a relative
 * measure, since raw cosines of a model are not comparable across queries (with USE lite a
 * nonsense word scores 0.65 against some chunk, a good paraphrase 0.45). Reported as evidence;
 * measured, it did not separate relevant from irrelevant either (see DEFAULT_THRESHOLDS).
 *
 * @example
 * ```ts
 * standout(0.62, cosines); // 2.4
 * ```
 */
export function standout(cosine: number, all: Map<number, Cosine>): number {
  let sum = 0;
  let sq = 0;
  for (const { cosine: c } of all.values()) {
    sum += c;
    sq += c * c;
  }
  const mean = sum / all.size;
  const sd = Math.sqrt(Math.max(sq / all.size - mean * mean, 1e-12));
  return (cosine - mean) / sd;
}
