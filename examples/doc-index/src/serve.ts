/**
 * `serve`: the indexer as a queue consumer. Each message names one PDF (`{"path": "/abs.pdf"}`);
 * sluice's `consume()` fetches at most `concurrency` of them, runs each through the same steps
 * as `index` (hash skip → extract in the ThreadPool → embed → insert in one transaction) and
 * acks it only once the document is committed. Any number of `serve` processes can share one
 * queue and one index: the broker splits the messages, SQLite (WAL, busy_timeout, BEGIN
 * IMMEDIATE) serializes the writes.
 *
 * What happens to a message:
 * - indexed, or already indexed with the same content (a redelivery is a cheap skip) → acked;
 * - not JSON, not an object, no absolute `path` → dead-lettered at once (malformed);
 * - the file is missing, empty or not a readable PDF (`ERR_EXTRACT`) → dead-lettered at once:
 *   the same bytes fail the same way on every try, so retrying only delays the dead letter;
 * - anything else (an extraction timeout, an embeddings server down) → retried with backoff,
 *   dead-lettered after `maxDeliveries`.
 *
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import { isAbsolute } from 'node:path';
import {
  type ConsumerStats,
  consume,
  type HandlerContext,
  jsonDecode,
  MalformedMessageError,
  type MessageDeadLetteredMessage,
  SLUICE_MESSAGE_DEAD_LETTERED,
} from 'sluice';
import { type BrokerSpec, describeSpec } from './broker-url.js';
import { describeIdentity, type Embedder, type EmbedderIdentity } from './embedder.js';
import { UsageError } from './errors.js';
import { documentIndexer } from './index-document.js';
import { startExtractPool } from './indexer.js';
import { LexicalEmbedder } from './lexical-embedder.js';
import { openSource } from './queue.js';
import { namingDocument } from './report.js';
import { DEFAULT_DRAIN_TIMEOUT } from './signals.js';
import { Store } from './store.js';

/** The consumer's `name`: its events' and metrics' pool label. */
const CONSUMER = 'documents';

/** The message `serve` consumes and `enqueue` sends. */
export interface DocumentMessage {
  /** Absolute path of the PDF, readable by every `serve` process. */
  path: string;
}

/** Options of {@link runServe}. */
export interface ServeOptions {
  spec: BrokerSpec;
  db: string;
  /** Documents in flight (messages held). Default `2 × threads`, so threads never wait for work. */
  concurrency?: number;
  /** Extraction threads. Default `os.availableParallelism()`. */
  threads?: number;
  /** Per-document extraction limit, ms. Default 60 000. */
  extractTimeout?: number;
  chunkSize?: number;
  /** Default: the lexical embedder. */
  embedder?: Embedder;
  /** Deliveries before a failing document is dead-lettered. Default 3. */
  maxDeliveries?: number;
  /** First retry delay, ms (doubles per delivery, up to 30 s — sluice's default cap — or this if longer). Default 1000. */
  retryDelay?: number;
  /**
   * How long, ms, the documents in flight get to finish after `stop` (0..2147483647); those
   * still running then are canceled and go back to the broker. Default 30 000.
   */
  drainTimeout?: number;
  /** Aborted = drain: stop fetching, finish, commit and ack the documents in flight. */
  stop?: AbortSignal;
  /** Aborted = cancel the documents in flight now (they go back to the broker). */
  signal?: AbortSignal;
  /** One line per event (ready, each document). Default: none. */
  log?: (line: string) => void;
}

/** A message this process dead-lettered, and why. */
export interface DeadLetter {
  /** The broker's message id. */
  id: string;
  /** The document, when the message named one. */
  path?: string;
  message: string;
}

/** What a `serve` run reports when it stops. Printed as JSON by `serve --json`. */
export interface ServeSummary {
  queue: string;
  db: string;
  embedder: EmbedderIdentity;
  indexed: number;
  /** Already indexed with the same content (redeliveries, re-enqueued files). */
  skipped: number;
  deadLettered: DeadLetter[];
  /** Failed deliveries handed back for a later retry. */
  retried: number;
  /** Fetched but never started at the drain: back on the queue for another consumer. */
  released: number;
  /** Canceled by a second signal: back on the queue. */
  canceled: number;
  elapsedMs: number;
  /** The consumer's counters (held, peakHeld, acked, …). */
  consumer: ConsumerStats;
  interruptedBy?: string;
}

/**
 * Consumes the queue until `stop` (drain) or `signal` (abort), then returns the summary.
 *
 * @throws UsageError when the broker cannot be reached or the index is unusable (before any
 *   message is taken); EmbedderMismatchError when the index was built by another embedder.
 * @example
 * ```ts
 * const stop = new AbortController();
 * process.once('SIGTERM', () => stop.abort('SIGTERM'));
 * const summary = await runServe({ spec: parseBrokerUrl(url), db: 'index.db', stop: stop.signal });
 * ```
 */
export async function runServe(opts: ServeOptions): Promise<ServeSummary> {
  const started = performance.now();
  const log = opts.log ?? (() => {});
  const embedder = opts.embedder ?? new LexicalEmbedder();
  const maxDeliveries = opts.maxDeliveries ?? 3;
  const store = Store.open(opts.db);
  try {
    // Only a check: the embedder is recorded with the first document written, so a run that
    // writes nothing does not bind the index to it.
    store.checkEmbedder(embedder.identity);
    const source = await openSource(opts.spec).catch((err: Error) => {
      throw new UsageError(`cannot open ${describeSpec(opts.spec)}: ${err.message}`);
    });
    const extractPool = startExtractPool(opts);
    const concurrency = opts.concurrency ?? extractPool.threads * 2;
    const indexDocument = documentIndexer({
      store,
      embedder,
      extractPool,
      chunkSize: opts.chunkSize,
    });
    const tally = { indexed: 0, skipped: 0, deadLettered: [] as DeadLetter[] };
    // Every dead letter is counted from the consumer's event, once the broker has it: those the
    // handler failed, and those the consumer dead-letters before any handler runs (a body that is
    // not a message, an entry without the payload field, one over maxBodySize, or one delivered
    // more than maxDeliveries times after a crash). The handler only names the document.
    // The channel is process-wide: two runServe at once in one process would count each other's.
    const documentOf = new Map<string, string>();
    // An entry whose dead letter then failed (lease lost, a drain) is never taken out: bounded,
    // oldest dropped first, so a long-running serve does not grow it.
    const remember = (id: string, path: string) => {
      documentOf.set(id, path);
      if (documentOf.size > 10_000) documentOf.delete(documentOf.keys().next().value as string);
    };
    const onDeadLettered = (event: unknown) => {
      const { name, id, error } = event as MessageDeadLetteredMessage;
      if (name !== CONSUMER) return;
      const path = documentOf.get(id);
      documentOf.delete(id);
      const message = path ? namingDocument(path, error.message) : error.message;
      tally.deadLettered.push({ id, ...(path ? { path } : {}), message });
      log(`dead-lettered ${path ?? `message ${id}`}: ${error.message}`);
    };

    const handle = async (doc: DocumentMessage, ctx: HandlerContext) => {
      try {
        const outcome = await indexDocument(doc.path, ctx.signal);
        if (outcome.status === 'indexed') {
          tally.indexed++;
          log(`indexed ${doc.path} (${outcome.pages} pages, ${outcome.chunks} chunks)`);
        } else {
          tally.skipped++;
          log(`skipped ${doc.path} (already indexed, unchanged)`);
        }
      } catch (err) {
        if (ctx.signal.aborted) throw err; // canceled: back to the broker, not this document's fault
        const error = err as Error & { code?: string };
        if (error.code === 'ERR_EXTRACT') {
          // Dead-lettered at once by retryIf below, under its own code (ERR_EXTRACT).
          remember(ctx.message.id, doc.path);
          throw error;
        }
        if (ctx.message.deliveryCount >= maxDeliveries) remember(ctx.message.id, doc.path);
        else
          log(
            `retrying ${doc.path} (delivery ${ctx.message.deliveryCount}/${maxDeliveries}): ${error.message}`,
          );
        throw error;
      }
    };

    const retryDelay = opts.retryDelay ?? 1000;
    const consumer = consume<DocumentMessage>(source, handle, {
      name: CONSUMER,
      concurrency,
      retry: {
        attempts: maxDeliveries,
        backoff: { initial: retryDelay }, // up to max(30 s, retryDelay): sluice's default cap
        // The same bytes fail the same way on every try: no redelivery.
        retryIf: (error) => (error as { code?: string }).code !== 'ERR_EXTRACT',
      },
      decode: (body) => decodeDocumentMessage(body),
    });
    // In the tick consume() started in: no message can have been settled yet.
    diagnostics.subscribe(SLUICE_MESSAGE_DEAD_LETTERED, onDeadLettered);
    const drainTimeout = opts.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT;
    const onStop = () => void consumer.drain({ timeout: drainTimeout });
    const onAbort = () => void consumer.abort(opts.signal?.reason);
    opts.stop?.addEventListener('abort', onStop, { once: true });
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.stop?.aborted) onStop();
    log(
      `serving ${describeSpec(opts.spec)} → ${opts.db} (${concurrency} documents at once, ` +
        `${extractPool.threads} extraction thread${extractPool.threads === 1 ? '' : 's'}, embedder ${describeIdentity(embedder.identity)})`,
    );
    let report: Awaited<typeof consumer.done>;
    try {
      report = await consumer.done;
    } finally {
      diagnostics.unsubscribe(SLUICE_MESSAGE_DEAD_LETTERED, onDeadLettered);
      opts.stop?.removeEventListener('abort', onStop);
      opts.signal?.removeEventListener('abort', onAbort);
      await (opts.signal?.aborted ? extractPool.abort(opts.signal.reason) : extractPool.drain());
    }
    const stats = report.stats;
    return {
      queue: describeSpec(opts.spec),
      db: opts.db,
      embedder: { ...embedder.identity },
      ...tally,
      retried: stats.retried,
      released: stats.released,
      canceled: stats.canceled,
      elapsedMs: performance.now() - started,
      consumer: stats,
      ...(opts.stop?.aborted ? { interruptedBy: String(opts.stop.reason) } : {}),
    };
  } finally {
    store.close();
  }
}

/**
 * The message decoder: JSON `{"path": "<absolute path>"}` (other fields are ignored).
 *
 * @throws MalformedMessageError (dead-lettered at once) naming what is wrong.
 * @example
 * ```ts
 * decodeDocumentMessage(Buffer.from('{"path":"/data/a.pdf"}')); // { path: '/data/a.pdf' }
 * ```
 */
export function decodeDocumentMessage(body: Uint8Array): DocumentMessage {
  const value = jsonDecode(body);
  const expected = 'expected {"path": "/absolute/file.pdf"}';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MalformedMessageError(`message is not a JSON object; ${expected}`);
  }
  const path = (value as { path?: unknown }).path;
  if (typeof path !== 'string' || path === '') {
    throw new MalformedMessageError(`message has no "path" string; ${expected}`);
  }
  if (!isAbsolute(path)) {
    throw new MalformedMessageError(`"path" must be absolute, got ${JSON.stringify(path)}`);
  }
  return { path };
}

/** The summary as text, for the end of `serve`. */
export function formatServeSummary(s: ServeSummary): string {
  const secs = s.elapsedMs / 1000;
  const lines = [
    s.interruptedBy ? `Drained (${s.interruptedBy}).` : 'Stopped.',
    `  indexed ${s.indexed} · skipped ${s.skipped} (unchanged) · dead-lettered ${s.deadLettered.length} · retried ${s.retried}`,
    `  released ${s.released} (not started, back on the queue) · canceled ${s.canceled} · peak held ${s.consumer.peakHeld}`,
    `  ${secs.toFixed(1)} s · ${s.queue} · db ${s.db} · embedder ${describeIdentity(s.embedder)}`,
  ];
  if (s.deadLettered.length) {
    lines.push('  dead letters:');
    for (const d of s.deadLettered) lines.push(`    [${d.id}] ${d.message}`);
  }
  return lines.join('\n');
}
