/**
 * The semantic embedder: {@link embedWithUse} on a sluice ThreadPool. A document's chunks are cut
 * into batches spread over the pool's threads, so one large document uses every core and several
 * documents queue fairly. Queries (`search`) embed in-process instead: one short text does not
 * pay for starting a thread.
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import { ThreadPool } from 'sluice';
import type { Embedder, EmbedderIdentity } from './embedder.js';
import { embedWithUse, USE_DIMENSION, USE_MODEL } from './use-model.js';

/** Options of {@link UseEmbedder}. */
export interface UseEmbedderOptions {
  /**
   * Worker threads embedding (each loads its own copy of the model, ~100 MB). 0 = embed on the
   * calling thread (what `search` does). Default `os.availableParallelism()`: the work is CPU-bound.
   */
  threads?: number;
  /** Chunks per job sent to a thread. Default 8. */
  batch?: number;
}

// Run from source (vitest, tsx) the worker is use-worker.ts, loaded through tsx; built, .js.
const WORKER = new URL(
  import.meta.url.endsWith('.ts') ? './use-worker.ts' : './use-worker.js',
  import.meta.url,
);

/**
 * @example
 * ```ts
 * const embedder = new UseEmbedder({ threads: 2 });
 * const vectors = await embedder.embed(chunks.map((c) => c.text));
 * await embedder.close();
 * ```
 */
export class UseEmbedder implements Embedder {
  readonly identity: EmbedderIdentity = {
    kind: 'local',
    model: USE_MODEL,
    dimension: USE_DIMENSION,
  };
  readonly #pool: ThreadPool<string[], Float32Array[]> | undefined;
  readonly #batch: number;

  /** @throws RangeError when `threads` or `batch` is not a non-negative / positive integer. */
  constructor(opts: UseEmbedderOptions = {}) {
    const threads = opts.threads ?? availableParallelism();
    const batch = opts.batch ?? 8;
    if (!Number.isInteger(threads) || threads < 0)
      throw new RangeError(
        `semantic embedder option threads must be an integer >= 0, got ${threads}`,
      );
    if (!Number.isInteger(batch) || batch < 1)
      throw new RangeError(`semantic embedder option batch must be an integer >= 1, got ${batch}`);
    this.#batch = batch;
    this.#pool = threads > 0 ? new ThreadPool(WORKER, { threads }) : undefined;
  }

  /** Worker threads, 0 when embedding in-process. */
  get threads(): number {
    return this.#pool?.threads ?? 0;
  }

  async embed(texts: readonly string[], opts?: { signal?: AbortSignal }): Promise<Float32Array[]> {
    const pool = this.#pool;
    if (!pool) return embedWithUse(texts);
    const batches: string[][] = [];
    for (let i = 0; i < texts.length; i += this.#batch)
      batches.push(texts.slice(i, i + this.#batch));
    const done = await Promise.all(batches.map((b) => pool.run(b, { signal: opts?.signal })));
    return done.flat();
  }

  /** Lets the threads finish their jobs and exit. */
  async close(): Promise<void> {
    await this.#pool?.drain();
  }
}
