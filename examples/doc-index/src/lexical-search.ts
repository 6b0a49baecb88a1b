/**
 * The lexical leg of search: SQLite FTS5 over the chunks, ranked by BM25, with FTS5's own
 * `snippet()` to show the words that matched, and a measure of how much of the query a chunk
 * covers (what tells a real match from a chunk that shares one common word with the query).
 *
 * @module
 */
import type Database from 'better-sqlite3';
import { type ParsedQuery, pieces, toMatchExpression } from './query.js';

/** One chunk found by the full-text index. */
export interface LexicalHit {
  chunkId: number;
  documentId: number;
  /** BM25 as FTS5 reports it: negative, lower is better. */
  bm25: number;
}

// better-sqlite3 binds a JS number as a REAL, and FTS5 does not apply `rowid = 20.0` as a rowid
// constraint alongside MATCH (it returns every matching row): hence CAST(? AS INTEGER) below.

/** How much more a query word found in no chunk counts against coverage than its IDF. */
const UNKNOWN_WEIGHT = 2;

/** Chunks past this rank never reach a top-k of documents; reading them costs time only. */
const LEXICAL_DEPTH = 1000;

/**
 * The chunks matching `parsed`, best (lowest BM25) first, at most {@link LEXICAL_DEPTH}.
 * Empty when the query has nothing to match.
 *
 * @example
 * ```ts
 * const hits = lexicalSearch(store.db, parseQuery('landscape pages'));
 * ```
 */
export function lexicalSearch(db: Database.Database, parsed: ParsedQuery): LexicalHit[] {
  const match = toMatchExpression(parsed);
  if (!match) return [];
  return db
    .prepare<[string, number], LexicalHit>(
      `SELECT c.id AS chunkId, c.document_id AS documentId, chunks_fts.rank AS bm25
         FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid
        WHERE chunks_fts MATCH ? ORDER BY chunks_fts.rank LIMIT ?`,
    )
    .all(match, LEXICAL_DEPTH);
}

/**
 * FTS5's snippet of chunk `chunkId` for `parsed`: up to `tokens` words around the best match,
 * matched words between `**`, on one line. Undefined when the chunk does not match.
 */
export function lexicalSnippet(
  db: Database.Database,
  parsed: ParsedQuery,
  chunkId: number,
  tokens = 32,
): string | undefined {
  const match = toMatchExpression(parsed);
  if (!match) return undefined;
  const row = db
    .prepare<[number, string, number], { s: string }>(
      `SELECT snippet(chunks_fts, 0, '**', '**', '…', ?) AS s
         FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid = CAST(? AS INTEGER)`,
    )
    .get(tokens, match, chunkId);
  return row?.s.replace(/\s+/g, ' ').trim();
}

/**
 * How much of the query chunk `chunkId` holds, 0..1: the IDF-weighted share of the query's pieces
 * (words, phrases, prefixes) found in it. A rare word counts for more than a common one, and a
 * word found in no chunk at all counts fully against — so a query sharing only "package" or
 * "file" with the corpus scores near 0, and one whose rare words all match scores near 1.
 *
 * @example
 * ```ts
 * coverage(store.db, parseQuery('rotate landscape pages'), hit.chunkId); // 0.92
 * ```
 */
export function coverage(db: Database.Database, parsed: ParsedQuery, chunkId: number): number {
  const parts = pieces(parsed);
  if (!parts.length) return 0;
  const total = (db.prepare('SELECT count(*) AS n FROM chunks').get() as { n: number }).n;
  const df = db.prepare<[string], { n: number }>(
    'SELECT count(*) AS n FROM chunks_fts WHERE chunks_fts MATCH ?',
  );
  const inChunk = db.prepare<[string, number], { n: number }>(
    'SELECT 1 AS n FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid = CAST(? AS INTEGER)',
  );
  let all = 0;
  let found = 0;
  for (const part of parts) {
    const n = df.get(part)?.n ?? 0;
    // BM25's IDF (always > 0): a word in every chunk still weighs a little.
    const idf = Math.log((total - n + 0.5) / (n + 0.5) + 1);
    // A word the corpus never uses ("sourdough", "kubernetes") is the strongest sign the query
    // is about something else; a rare word matched once by chance ("baked") weighs nearly as
    // much as it by IDF alone, so the unknown word counts twice.
    all += n === 0 ? UNKNOWN_WEIGHT * idf : idf;
    if (n > 0 && inChunk.get(part, chunkId)) found += idf;
  }
  return all > 0 ? found / all : 0;
}
