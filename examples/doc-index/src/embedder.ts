/**
 * What every embedder provides. The index records `identity` (and the vector dimension) so that a
 * later run or a search can refuse to compare vectors that came from different embedders.
 *
 * @module
 */

/** Who produced a set of vectors. Stored as JSON in the index's `meta` table. */
export interface EmbedderIdentity {
  /**
   * 'lexical' (built-in feature hashing), 'local' (the built-in semantic model, run in worker
   * threads) or 'http' (an OpenAI-compatible endpoint).
   */
  kind: 'lexical' | 'local' | 'http';
  /**
   * Model name: 'lexical-v1' for feature hashing, 'universal-sentence-encoder-lite' for the
   * local model, the --embed-model value for HTTP.
   */
  model: string;
  /** Vector length; for HTTP, known only after the first response (undefined until then). */
  dimension?: number;
}

/** Turns texts into vectors. */
export interface Embedder {
  readonly identity: EmbedderIdentity;
  /**
   * Embeds `texts`, returning one vector per text, in order, each L2-normalized (so cosine
   * similarity is a dot product).
   *
   * @throws EmbedError for the HTTP embedder when the endpoint fails for good.
   */
  embed(texts: readonly string[], opts?: { signal?: AbortSignal }): Promise<Float32Array[]>;
  /** Releases what the embedder holds (worker threads); absent when it holds nothing. */
  close?(): Promise<void>;
}

/** Human-readable name of an identity, e.g. `http nomic-embed-text (768 dims)`. */
export function describeIdentity(id: EmbedderIdentity): string {
  const dims = id.dimension === undefined ? '' : ` (${id.dimension} dims)`;
  return `${id.kind} ${id.model}${dims}`;
}

/** Scales `v` in place to unit length (a zero vector stays zero). Returns `v`. */
export function l2normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!;
  if (sum === 0) return v;
  const inv = 1 / Math.sqrt(sum);
  for (let i = 0; i < v.length; i++) v[i]! *= inv;
  return v;
}
