/**
 * One document through the same steps as the `index` pipeline — the content-hash skip of
 * `sources.ts`, the 'extract' ThreadPool, and the 'embed' and 'insert' stage functions of
 * `stages.ts` — for callers that receive documents one at a time (`serve` gets them from a
 * queue). Concurrency is the caller's: each call is one document, and the ThreadPool bounds the
 * CPU work whatever the number of calls in flight.
 *
 * @module
 */
import type { ThreadPool } from 'sluice';
import type { Embedder } from './embedder.js';
import type { ExtractedDocument, ExtractJob } from './extract.js';
import { pendingDocuments } from './sources.js';
import { embedStage, type InsertedDocument, insertStage } from './stages.js';
import type { Store } from './store.js';

/** What happened to one document. */
export type DocumentOutcome =
  | ({ status: 'indexed' } & InsertedDocument)
  | { status: 'skipped'; path: string };

/** Options of {@link documentIndexer}. */
export interface DocumentIndexerOptions {
  store: Store;
  embedder: Embedder;
  /** The running 'extract' pool (see `startExtractPool`); it stays the caller's. */
  extractPool: ThreadPool<ExtractJob, ExtractedDocument>;
  /** Longest chunk, characters. Default 1000. */
  chunkSize?: number;
}

/**
 * Builds `indexDocument(path, signal)`: skips the document when the index holds `path` with the
 * same sha256, else extracts, embeds and inserts it in one transaction.
 *
 * @returns a function that rejects with the step's error: `ExtractError` (code `ERR_EXTRACT`) for
 *   a missing, empty or unreadable file; the embedder's errors; `AbortError` when `signal` aborts.
 * @example
 * ```ts
 * const indexDocument = documentIndexer({ store, embedder, extractPool });
 * const outcome = await indexDocument('/abs/a.pdf', signal); // { status: 'indexed', pages, chunks }
 * ```
 */
export function documentIndexer(opts: DocumentIndexerOptions) {
  const embed = embedStage(opts.embedder, { maxChars: opts.chunkSize });
  const insert = insertStage(opts.store, opts.embedder);
  return async (path: string, signal?: AbortSignal): Promise<DocumentOutcome> => {
    // The `index` source, over one path: it yields the path unless it is indexed and unchanged.
    for await (const _ of pendingDocuments([path], opts.store)) {
      const extracted = await opts.extractPool.run({ path }, { signal });
      const embedded = await embed(extracted, { signal });
      signal?.throwIfAborted();
      return { status: 'indexed', ...(await insert(embedded)) };
    }
    return { status: 'skipped', path };
  };
}
