/**
 * Errors of the document indexer. Like sluice's own errors, each has a stable `code`, so the CLI
 * and tests match on the code and never on message text. Messages always name the document.
 *
 * @module
 */

/** Stable codes of the indexer's errors. */
export type IndexerErrorCode =
  | 'ERR_EXTRACT'
  | 'ERR_EMBED_HTTP'
  | 'ERR_EMBED_TIMEOUT'
  | 'ERR_EMBED_MALFORMED'
  | 'ERR_EMBEDDER_MISMATCH'
  | 'ERR_DRAIN_TIMEOUT'
  | 'ERR_USAGE';

/**
 * Base class: an error with a stable `code`.
 *
 * @example
 * ```ts
 * if (err instanceof IndexerError && err.code === 'ERR_EXTRACT') console.error(err.message);
 * ```
 */
export class IndexerError extends Error {
  readonly code: IndexerErrorCode;

  constructor(code: IndexerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * A file that is not a readable PDF (empty, truncated, corrupted, not a PDF at all). Fails that
 * one document; the run goes on.
 *
 * @example
 * ```ts
 * throw new ExtractError('a.pdf', 'the file is empty (0 bytes)');
 * ```
 */
export class ExtractError extends IndexerError {
  /** The file that could not be read. */
  readonly path: string;

  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_EXTRACT', `cannot extract text from ${path}: ${reason}`, options);
    this.path = path;
  }
}

/**
 * The embeddings endpoint answered with an HTTP error, did not answer in time, or answered with
 * something that is not an OpenAI embeddings response. `attempts` counts every request made.
 *
 * @example
 * ```ts
 * if (err instanceof EmbedError) console.error(err.status, err.attempts);
 * ```
 */
export class EmbedError extends IndexerError {
  /** HTTP status of the last response, if there was one. */
  readonly status: number | undefined;
  /** Requests made, retries included. */
  readonly attempts: number;

  constructor(
    code: 'ERR_EMBED_HTTP' | 'ERR_EMBED_TIMEOUT' | 'ERR_EMBED_MALFORMED',
    message: string,
    details: { status?: number; attempts: number; cause?: unknown },
  ) {
    super(code, message, { cause: details.cause });
    this.status = details.status;
    this.attempts = details.attempts;
  }
}

/**
 * An index built by one embedder was opened with another. Vectors of different embedders are not
 * comparable, so the indexer refuses to mix them in one database.
 *
 * @example
 * ```ts
 * throw new EmbedderMismatchError('lexical-v1 (1024 dims)', 'http nomic-embed-text');
 * ```
 */
export class EmbedderMismatchError extends IndexerError {
  constructor(stored: string, requested: string) {
    super(
      'ERR_EMBEDDER_MISMATCH',
      `this index was built with embedder ${stored}; refusing to mix in vectors from ${requested} ` +
        '(use the same embedder, or a new --db)',
    );
  }
}

/**
 * Bad command-line input: a missing database, a path that does not exist, a bad number.
 *
 * @example
 * ```ts
 * throw new UsageError('--threads must be a positive integer, got "0"');
 * ```
 */
export class UsageError extends IndexerError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}

/**
 * Why the documents still in flight were canceled when a drain (the first SIGINT/SIGTERM) ran
 * past its deadline (`--drain-timeout`). It is the cancel's reason, never a document's failure.
 *
 * @example
 * ```ts
 * cancel.abort(new DrainTimeoutError(30_000));
 * ```
 */
export class DrainTimeoutError extends IndexerError {
  readonly timeout: number;
  constructor(timeout: number) {
    super(
      'ERR_DRAIN_TIMEOUT',
      `the documents in flight did not finish within the drain timeout (${timeout} ms)`,
    );
    this.timeout = timeout;
  }
}
