/**
 * The index: one SQLite file (better-sqlite3, WAL). Each document goes in with one transaction,
 * so after any crash or signal a document is either fully indexed (row, chunks, vectors) or
 * absent. A document whose sha256 is unchanged is not indexed again.
 *
 * @module
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Chunk } from './chunk.js';
import { describeIdentity, type EmbedderIdentity } from './embedder.js';
import { EmbedderMismatchError, UsageError } from './errors.js';

/** A document ready to be written: its chunks and one vector per chunk. */
export interface IndexedDocument {
  path: string;
  sha256: string;
  bytes: number;
  pageCount: number;
  chunks: Chunk[];
  vectors: Float32Array[];
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
  id INTEGER PRIMARY KEY,
  path TEXT NOT NULL UNIQUE,
  sha256 TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  pages INTEGER NOT NULL,
  chunks INTEGER NOT NULL,
  indexed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
  id INTEGER PRIMARY KEY,
  document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  page INTEGER NOT NULL,
  ordinal INTEGER NOT NULL,
  text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id);
CREATE TABLE IF NOT EXISTS vectors (
  chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
  embedding BLOB NOT NULL
);
`;

/**
 * Full-text search over the chunks (FTS5, BM25). External content: the text lives once, in
 * `chunks`, and triggers keep the index in step with every insert and delete (a document's
 * cascade delete included). Tokenizer: porter stemming over unicode61 with diacritics folded,
 * so "hyperlinks" finds "hyperlink" and "Déjà" finds "deja"; see the README for why not trigram.
 */
const FTS_SCHEMA = `
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
  text, content='chunks', content_rowid='id',
  tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_fts_insert AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_fts_delete AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
`;

/**
 * The schema's version, in SQLite's user_version: 0 = before full-text search (chunks and
 * vectors only), 1 = with `chunks_fts`. Opening a version-0 index for writing migrates it.
 */
export const SCHEMA_VERSION = 1;

/** How long `open` keeps retrying a new index's set-up while other processes hold it, ms. */
const OPEN_DEADLINE_MS = 15_000;

/** The index's own tables; a database with other tables and none of these is someone else's. */
const INDEX_TABLES = ['documents', 'chunks', 'vectors', 'meta'];

/**
 * Refuses a database of something else, before anything is written to it (the journal mode
 * included), so that a wrong --db is never quietly turned into an index.
 */
function assertIndexOrEmpty(db: Database.Database): void {
  const tables = db
    .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
    .pluck()
    .all() as string[];
  if (tables.length && !tables.some((t) => INDEX_TABLES.includes(t))) {
    const shown = tables.length > 5 ? `${tables.slice(0, 5).join(', ')}, …` : tables.join(', ');
    throw new Error(`it has other tables (${shown}) and none of ${INDEX_TABLES.join(', ')}`);
  }
}

function hasFts(db: Database.Database): boolean {
  return db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'chunks_fts'`).get() !== undefined;
}

/** Thrown inside `open` only, and turned into its UsageError there. */
class EmptyIndexError extends Error {}

/** A read-only open: the file must already hold the index's tables. */
function assertIsIndex(db: Database.Database): void {
  const present = db
    .prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`)
    .pluck()
    .all() as string[];
  // An empty file: an index that `index` has just created and not yet set up, or any empty file.
  if (!present.length) throw new EmptyIndexError();
  const missing = INDEX_TABLES.filter((t) => !present.includes(t));
  if (missing.length) throw new Error(`it has no ${missing.join('/')} tables`);
}

/**
 * What SQLite would open but that cannot be an index, refused by name before SQLite sees it: a
 * read-only open of a FIFO blocks until a writer appears (a hang), and a directory or device
 * fails with "disk I/O error" or passes as an empty database. A read-only open of a missing file
 * is "no index" rather than SQLite's "unable to open database file".
 */
function assertOpenable(path: string, readonly: boolean): void {
  let info: ReturnType<typeof statSync>;
  try {
    info = statSync(path, { throwIfNoEntry: false });
  } catch (err) {
    throw new UsageError(`cannot open the index ${path}: ${(err as Error).message}`);
  }
  if (!info) {
    if (readonly) throw new UsageError(`no index at ${path}: no such file (run "index" first)`);
    return;
  }
  if (info.isFile()) return;
  const kind = info.isDirectory() ? 'a directory' : 'not a regular file';
  throw new UsageError(`cannot open the index ${path}: it is ${kind} (--db takes an index file)`);
}

const IDENTITY_KINDS = ['lexical', 'local', 'http'];

/** The `embedder` meta record, checked: a broken one is a usage error, not a stack trace. */
function parseIdentity(value: string, path: string): EmbedderIdentity {
  let id: Partial<EmbedderIdentity> | null = null;
  try {
    id = JSON.parse(value) as Partial<EmbedderIdentity> | null;
  } catch {
    // Reported below with the other malformed records.
  }
  const dimensionOk =
    id?.dimension === undefined || (Number.isInteger(id.dimension) && id.dimension > 0);
  if (
    typeof id !== 'object' ||
    id === null ||
    !IDENTITY_KINDS.includes(id.kind as string) ||
    typeof id.model !== 'string' ||
    !dimensionOk
  ) {
    const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
    throw new UsageError(
      `${path} is a damaged index: its recorded embedder is not readable (${JSON.stringify(shown)}); re-index into a new --db`,
    );
  }
  return id as EmbedderIdentity;
}

/** WAL mode and the schema, in one write transaction taken before anything is read. */
function initialize(db: Database.Database): void {
  assertIndexOrEmpty(db);
  db.pragma('journal_mode = WAL');
  // NORMAL is durable across process crashes in WAL mode; only a power loss can drop the last
  // commits, and then whole transactions vanish, never half documents.
  db.pragma('synchronous = NORMAL');
  // IMMEDIATE takes the write lock first, so the schema is never written from a stale snapshot
  // (SQLITE_BUSY_SNAPSHOT, which busy_timeout does not wait out).
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec(SCHEMA);
    const hadFts = hasFts(db);
    db.exec(FTS_SCHEMA);
    // An index written before full-text search: fill the new FTS table from its chunks, in this
    // same transaction (an index of ~10,000 chunks takes well under a second).
    if (!hadFts) db.exec(`INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')`);
    // Always written, even unchanged: a read-only file fails here, before any document is
    // extracted and embedded, rather than at every document's insert (SQLite opens a file it
    // cannot write read-only without a word, and the schema above exists already).
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    db.exec('COMMIT');
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

/**
 * Runs `fn` again while it fails with SQLITE_BUSY (any extended code) until `deadlineMs` has
 * passed (an attempt under way may add one busy_timeout to that). busy_timeout does not cover every case: SQLite returns BUSY at once where waiting could
 * deadlock (two connections both upgrading from a read lock, as when two processes switch a new
 * file to WAL together), and those only succeed when tried again.
 */
export function retryWhileBusy(fn: () => void, deadlineMs: number): void {
  const deadline = Date.now() + deadlineMs;
  for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
    try {
      fn();
      return;
    } catch (err) {
      const busy = String((err as { code?: unknown }).code).startsWith('SQLITE_BUSY');
      if (!busy || Date.now() + wait > deadline) throw err;
      // Opening is synchronous and happens once per process, so a blocking sleep is acceptable.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
    }
  }
}

function sameEmbedder(stored: EmbedderIdentity, requested: EmbedderIdentity): boolean {
  return (
    stored.kind === requested.kind &&
    stored.model === requested.model &&
    (stored.dimension === undefined ||
      requested.dimension === undefined ||
      stored.dimension === requested.dimension)
  );
}

/**
 * @example
 * ```ts
 * const store = Store.open('.tmp/index.db');
 * store.checkEmbedder({ kind: 'lexical', model: 'lexical-v1', dimension: 1024 });
 * if (!store.isIndexed(path, sha256)) store.insert(doc);
 * store.close();
 * ```
 */
export class Store {
  readonly db: Database.Database;
  readonly #stmts;
  readonly #claimTx: Database.Transaction<(identity: EmbedderIdentity) => void>;
  readonly #insertTx: Database.Transaction<
    (doc: IndexedDocument, embedder: EmbedderIdentity) => void
  >;

  private constructor(db: Database.Database) {
    this.db = db;
    this.#stmts = {
      lookup: db.prepare<[string], { sha256: string }>(
        'SELECT sha256 FROM documents WHERE path = ?',
      ),
      deleteDoc: db.prepare<[string]>('DELETE FROM documents WHERE path = ?'),
      insertDoc: db.prepare<[string, string, number, number, number, string]>(
        'INSERT INTO documents (path, sha256, bytes, pages, chunks, indexed_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      insertChunk: db.prepare<[number | bigint, number, number, string]>(
        'INSERT INTO chunks (document_id, page, ordinal, text) VALUES (?, ?, ?, ?)',
      ),
      insertVector: db.prepare<[number | bigint, Buffer]>(
        'INSERT INTO vectors (chunk_id, embedding) VALUES (?, ?)',
      ),
      anyDocument: db.prepare<[], { found: number }>(
        'SELECT EXISTS (SELECT 1 FROM documents) AS found',
      ),
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare<[string, string]>(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      ),
    };
    this.#claimTx = db.transaction((identity: EmbedderIdentity) => this.#claim(identity));
    this.#insertTx = db.transaction((doc: IndexedDocument, embedder: EmbedderIdentity) =>
      this.#write(doc, embedder),
    );
  }

  /**
   * Opens (creating if needed) the index at `path`, in WAL mode with foreign keys on.
   * @param opts.readonly open for search only; the file must exist.
   * @throws UsageError when the file cannot be opened, created or (unless `readonly`) written,
   *   or is a database of something else (other tables, none of the index's).
   */
  static open(path: string, opts: { readonly?: boolean } = {}): Store {
    assertOpenable(path, opts.readonly ?? false);
    let db: Database.Database;
    try {
      if (!opts.readonly) mkdirSync(dirname(path), { recursive: true });
      db = new Database(path, {
        readonly: opts.readonly ?? false,
        fileMustExist: opts.readonly ?? false,
      });
    } catch (err) {
      throw new UsageError(`cannot open the index ${path}: ${(err as Error).message}`);
    }
    try {
      // First: two processes opening a new index at once must wait for each other instead of
      // failing with SQLITE_BUSY.
      db.pragma('busy_timeout = 5000');
      if (!opts.readonly) retryWhileBusy(() => initialize(db), OPEN_DEADLINE_MS);
      db.pragma('foreign_keys = ON');
      // A writable open has just created the schema; a read-only one must find it.
      if (opts.readonly) assertIsIndex(db);
      return new Store(db);
    } catch (err) {
      // A file that is not SQLite, or a SQLite file that is not an index: a usage error, not a crash.
      db.close();
      if (err instanceof EmptyIndexError)
        throw new UsageError(`${path} holds no index yet: it is empty (run "index" first)`);
      const reason = (err as Error).message;
      const code = String((err as { code?: unknown }).code);
      if (code.startsWith('SQLITE_READONLY')) {
        throw new UsageError(`cannot write the index ${path}: ${reason}`);
      }
      throw new UsageError(
        code.startsWith('SQLITE_BUSY')
          ? `cannot open the index ${path}: ${reason}`
          : `${path} is not a sluice-doc-index database: ${reason}`,
      );
    }
  }

  /**
   * The embedder recorded for this index, or undefined for a new one.
   * @throws UsageError when the record is not an embedder's (a damaged or hand-edited index).
   */
  embedder(): EmbedderIdentity | undefined {
    const row = this.#stmts.getMeta.get('embedder');
    return row ? parseIdentity(row.value, this.db.name) : undefined;
  }

  /**
   * Checks `identity` against the embedder of the documents already indexed, writing nothing:
   * the embedder is recorded with the first document (see {@link Store.insert}). An index without
   * documents takes any embedder, even if a run that wrote nothing recorded one.
   *
   * @throws EmbedderMismatchError when the index was built by a different embedder.
   */
  checkEmbedder(identity: EmbedderIdentity): void {
    const stored = this.#binding();
    if (stored && !sameEmbedder(stored, identity)) {
      throw new EmbedderMismatchError(describeIdentity(stored), describeIdentity(identity));
    }
  }

  /**
   * Records `identity` as this index's embedder, or checks it against the recorded one when the
   * index holds documents. A missing dimension (HTTP before its first answer) matches any
   * recorded dimension.
   *
   * @throws EmbedderMismatchError when the index was built by a different embedder.
   */
  claimEmbedder(identity: EmbedderIdentity): void {
    // Read-then-write: IMMEDIATE so that two processes claiming a new index never write from a
    // stale snapshot (inside insert's transaction this is a savepoint).
    this.#claimTx.immediate(identity);
  }

  // Vectors are what must not be mixed: a record without any document behind it binds nothing.
  #binding(): EmbedderIdentity | undefined {
    return this.#stmts.anyDocument.get()?.found ? this.embedder() : undefined;
  }

  #claim(identity: EmbedderIdentity): void {
    const stored = this.#binding();
    if (!stored) {
      this.#stmts.setMeta.run('embedder', JSON.stringify(identity));
      return;
    }
    if (!sameEmbedder(stored, identity))
      throw new EmbedderMismatchError(describeIdentity(stored), describeIdentity(identity));
    if (stored.dimension === undefined && identity.dimension !== undefined) {
      this.#stmts.setMeta.run('embedder', JSON.stringify(identity));
    }
  }

  /** True when `path` is indexed with content hash `sha256`. */
  isIndexed(path: string, sha256: string): boolean {
    return this.#stmts.lookup.get(path)?.sha256 === sha256;
  }

  /**
   * Writes `doc` (replacing an older version of the same path) in one transaction.
   * @throws EmbedderMismatchError when the vectors' length differs from the recorded dimension.
   */
  insert(doc: IndexedDocument, embedder: EmbedderIdentity): void {
    if (doc.vectors.length !== doc.chunks.length) {
      throw new Error(`${doc.path}: ${doc.chunks.length} chunks but ${doc.vectors.length} vectors`);
    }
    // IMMEDIATE: the write lock before the first read, so busy_timeout covers a second writer.
    this.#insertTx.immediate(doc, embedder);
  }

  #write(doc: IndexedDocument, embedder: EmbedderIdentity): void {
    // Every write claims, so an index never holds a document without its embedder recorded
    // (a document without chunks records it too, with the dimension the embedder knows).
    const dimension = doc.vectors[0]?.length;
    // Already inside insert's IMMEDIATE transaction: no savepoint of its own needed.
    this.#claim(dimension === undefined ? embedder : { ...embedder, dimension });
    this.#stmts.deleteDoc.run(doc.path);
    const { lastInsertRowid: docId } = this.#stmts.insertDoc.run(
      doc.path,
      doc.sha256,
      doc.bytes,
      doc.pageCount,
      doc.chunks.length,
      new Date().toISOString(),
    );
    doc.chunks.forEach((chunk, i) => {
      const { lastInsertRowid: chunkId } = this.#stmts.insertChunk.run(
        docId,
        chunk.page,
        chunk.ordinal,
        chunk.text,
      );
      const v = doc.vectors[i]!;
      this.#stmts.insertVector.run(chunkId, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
    });
  }

  /**
   * True when the index has its full-text table (schema version 1). A read-only open of an
   * index written by an older version has none; a writable open adds it (see `open`).
   */
  hasFullText(): boolean {
    return hasFts(this.db);
  }

  /** Number of indexed documents. */
  documentCount(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM documents').get() as { n: number }).n;
  }

  close(): void {
    this.db.close();
  }
}
