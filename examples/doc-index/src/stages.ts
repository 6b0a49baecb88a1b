/**
 * The pipeline's async stages. 'extract' is the ThreadPool module `extract.ts`; these two run on
 * the main thread: 'embed' (network-bound with the HTTP embedder) and 'insert' (one SQLite
 * transaction per document).
 *
 * @module
 */
import { type ChunkOptions, chunkPages } from './chunk.js';
import type { Embedder } from './embedder.js';
import type { ExtractedDocument } from './extract.js';
import type { IndexedDocument, Store } from './store.js';

/** What the 'insert' stage reports for each document. */
export interface InsertedDocument {
  path: string;
  pages: number;
  chunks: number;
}

/**
 * Builds the 'embed' stage: chunk the pages, embed the chunks.
 * Errors are re-thrown with the document's path in front, keeping their class and `code`.
 *
 * @example
 * ```ts
 * const embed = embedStage(new LexicalEmbedder(), { maxChars: 1000 });
 * const doc = await embed(extracted, { signal });
 * ```
 */
export function embedStage(embedder: Embedder, chunking: ChunkOptions = {}) {
  return async (
    doc: ExtractedDocument,
    ctx?: { signal?: AbortSignal },
  ): Promise<IndexedDocument> => {
    const chunks = chunkPages(doc.pages, chunking);
    try {
      const vectors = chunks.length
        ? await embedder.embed(
            chunks.map((c) => c.text),
            { signal: ctx?.signal },
          )
        : [];
      return {
        path: doc.path,
        sha256: doc.sha256,
        bytes: doc.bytes,
        pageCount: doc.pages.length,
        chunks,
        vectors,
      };
    } catch (err) {
      throw prefixPath(doc.path, err);
    }
  };
}

/**
 * Builds the 'insert' stage: write the document in one transaction.
 *
 * @example
 * ```ts
 * const insert = insertStage(store, embedder);
 * await insert(indexedDoc);
 * ```
 */
export function insertStage(store: Store, embedder: Embedder) {
  // Store.insert is one IMMEDIATE transaction: a second process writing the same index (two
  // `serve`s) waits out busy_timeout instead of failing on a stale read snapshot.
  return async (doc: IndexedDocument): Promise<InsertedDocument> => {
    try {
      store.insert(doc, embedder.identity);
    } catch (err) {
      throw prefixPath(doc.path, err);
    }
    return { path: doc.path, pages: doc.pageCount, chunks: doc.chunks.length };
  };
}

// Mutating the message keeps the error's class, code and stack; aborts are left alone because
// they are not this document's fault.
function prefixPath(path: string, err: unknown): unknown {
  if (err instanceof Error && err.name !== 'AbortError' && !err.message.includes(path)) {
    err.message = `${path}: ${err.message}`;
  }
  return err;
}
