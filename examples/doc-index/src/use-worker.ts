/**
 * ThreadPool worker module of the semantic embedder: embeds one batch of texts with the model,
 * loaded once per thread. Embedding is CPU-bound (tens of ms per chunk), which is why it runs
 * in worker threads and not on the main thread beside SQLite and the pipeline.
 *
 * @module
 */
import { embedWithUse } from './use-model.js';

/** One batch: texts in, one vector each out (crossing back by structured clone). */
export default async function embedBatch(texts: string[]): Promise<Float32Array[]> {
  return embedWithUse(texts);
}
