/**
 * The indexing run: file paths → 'extract' (ThreadPool, CPU) → 'embed' (async, network) →
 * 'insert' (async, SQLite), as one sluice pipeline with a pool per stage and bounded buffers
 * between them, so a slow stage backs up to the source instead of piling work up in memory.
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import { pipeline, type Result, type StageStats, ThreadPool } from 'sluice';
import type { Embedder } from './embedder.js';
import { DrainTimeoutError } from './errors.js';
import type { ExtractedDocument, ExtractJob } from './extract.js';
import { LexicalEmbedder } from './lexical-embedder.js';
import type { ProgressReporter, ProgressSnapshot } from './progress.js';
import {
  bottleneckOf,
  type Failure,
  namingDocument,
  type StageSummary,
  type Summary,
} from './report.js';
import type { RunTimeline } from './run-timeline.js';
import { DEFAULT_DRAIN_TIMEOUT } from './signals.js';
import { pendingDocuments, requirePdfs } from './sources.js';
import { embedStage, insertStage } from './stages.js';
import { Store } from './store.js';

/** Options of {@link runIndex}. */
export interface IndexOptions {
  /** Files and folders (folders are searched for *.pdf recursively). */
  inputs: string[];
  /** SQLite file; created if missing. */
  db: string;
  /** Extraction threads. Default `os.availableParallelism()`. */
  threads?: number;
  /** Documents being embedded at once. Default 4. */
  embedConcurrency?: number;
  /** Documents being inserted at once (SQLite writes are serial; >1 only overlaps bookkeeping). Default 1. */
  insertConcurrency?: number;
  /** Default: the lexical embedder. */
  embedder?: Embedder;
  /** Longest chunk, characters. Default 1000. */
  chunkSize?: number;
  /** Per-document extraction limit, ms. Default 60 000. */
  extractTimeout?: number;
  /** Aborted = stop taking new documents, finish and commit those in flight. */
  stop?: AbortSignal;
  /**
   * How long, ms, the documents in flight get to finish after `stop` (0..2147483647); those
   * still running then are canceled, as by `signal`, and counted as canceled. Default 30 000.
   */
  drainTimeout?: number;
  /** Called once when the drain deadline passes, before what is left is canceled. */
  onDrainTimeout?: () => void;
  /** Aborted = cancel everything in flight now (nothing half-written is committed). */
  signal?: AbortSignal;
  /** Receives a snapshot every `progressInterval` ms. */
  progress?: ProgressReporter;
  /** Default 200 ms. */
  progressInterval?: number;
  /** Records the run's per-stage series and the source's pulls (for `--report`). */
  timeline?: RunTimeline;
  /** The extract stage's ThreadPool module. Default: `extract.js` beside this file. */
  extractModule?: URL;
  /**
   * A running extraction pool to use instead of starting one (a long-lived service, or tests
   * that index many times). It stays the caller's: `runIndex` neither drains nor closes it, and
   * `threads`, `extractModule` and `extractTimeout` are ignored.
   */
  extractPool?: ThreadPool<ExtractJob, ExtractedDocument>;
}

// Run from source (vitest, tsx) this file is indexer.ts and its sibling is extract.ts, which
// ThreadPool loads through tsx; built, both are .js.
const DEFAULT_EXTRACT_MODULE = new URL(
  import.meta.url.endsWith('.ts') ? './extract.ts' : './extract.js',
  import.meta.url,
);

/**
 * Indexes `opts.inputs` into `opts.db` and returns the summary. Document failures are reported
 * in the summary, never thrown.
 *
 * @throws UsageError when an input does not exist, the inputs hold no PDF, or the database is
 * unusable (not an index, read-only); EmbedderMismatchError when the database's documents were
 * embedded by another embedder — all before any document is touched.
 * @example
 * ```ts
 * const summary = await runIndex({ inputs: ['docs/'], db: 'index.db' });
 * console.log(formatSummary(summary));
 * ```
 */
export async function runIndex(opts: IndexOptions): Promise<Summary> {
  const started = performance.now();
  const embedder = opts.embedder ?? new LexicalEmbedder();
  const paths = await requirePdfs(opts.inputs);
  const store = Store.open(opts.db);
  try {
    // Only a check: the embedder is recorded with the first document written, so a run that
    // writes nothing does not bind the index to it.
    store.checkEmbedder(embedder.identity);
    const tally = await runPipeline(paths, store, embedder, opts);
    const elapsedMs = performance.now() - started;
    return {
      ...tally,
      total: paths.length,
      notStarted:
        paths.length - tally.skipped - tally.indexed - tally.failed.length - tally.canceled,
      elapsedMs,
      docsPerSecond: ((tally.indexed + tally.failed.length) * 1000) / elapsedMs,
      bottleneck: bottleneckOf(tally.stages),
      embedder: { ...embedder.identity },
      db: opts.db,
      ...(opts.stop?.aborted ? { interruptedBy: String(opts.stop.reason) } : {}),
    };
  } finally {
    store.close();
  }
}

type Tally = Pick<
  Summary,
  'indexed' | 'skipped' | 'failed' | 'canceled' | 'stages' | 'drainTimedOut'
>;

async function runPipeline(
  paths: string[],
  store: Store,
  embedder: Embedder,
  opts: IndexOptions,
): Promise<Tally> {
  const tally: Tally = { indexed: 0, skipped: 0, failed: [], canceled: 0, stages: [] };
  // One cancel for both ways in: a second signal, or the drain deadline after the first. A
  // retry's backoff in the embedder waits on the job's signal, so the deadline cuts it short too.
  const cancel = new AbortController();
  const onAbort = () => cancel.abort(opts.signal?.reason);
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const extractPool = opts.extractPool ?? startExtractPool(opts);
  const threads = extractPool.threads;
  const pending = pendingDocuments(paths, store, {
    stop: opts.stop,
    onSkip: () => tally.skipped++,
  });
  const source = opts.timeline ? opts.timeline.countPulls(pending) : pending;
  const run = pipeline(source, { signal: cancel.signal })
    .stage('extract', extractPool, { concurrency: threads })
    .stage('embed', embedStage(embedder, { maxChars: opts.chunkSize }), {
      concurrency: opts.embedConcurrency ?? 4,
    })
    .stage('insert', insertStage(store, embedder), { concurrency: opts.insertConcurrency ?? 1 });
  const drainTimeout = opts.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT;
  let deadline: ReturnType<typeof setTimeout> | undefined;
  // First signal: stop pulling; every stage finishes (and 'insert' commits) what it holds, until
  // the drain deadline.
  const onStop = () => {
    void run.drain();
    deadline = setTimeout(() => {
      if (cancel.signal.aborted) return;
      tally.drainTimedOut = drainTimeout;
      opts.onDrainTimeout?.();
      cancel.abort(new DrainTimeoutError(drainTimeout));
    }, drainTimeout);
  };
  if (opts.stop?.aborted) onStop();
  else opts.stop?.addEventListener('abort', onStop, { once: true });
  const snapshot = (): ProgressSnapshot => ({
    total: paths.length - tally.skipped,
    skipped: tally.skipped,
    failed: tally.failed.length,
    stages: run.stats(),
    stopping: opts.stop?.aborted === true,
  });
  opts.timeline?.start(() => run.stats());
  const ticker = setInterval(() => opts.progress?.update(snapshot()), opts.progressInterval ?? 200);
  try {
    for await (const result of run) record(tally, result, cancel.signal);
  } finally {
    clearInterval(ticker);
    clearTimeout(deadline);
    opts.timeline?.stop();
    opts.stop?.removeEventListener('abort', onStop);
    opts.signal?.removeEventListener('abort', onAbort);
    opts.progress?.update(snapshot());
    opts.progress?.stop();
    // The pipeline does not own the ThreadPool: close ours here, or its threads keep the process alive.
    if (!opts.extractPool) {
      await (cancel.signal.aborted ? extractPool.abort(cancel.signal.reason) : extractPool.drain());
    }
  }
  tally.stages = stageSummaries(run.stats());
  return tally;
}

/**
 * Starts the 'extract' stage's ThreadPool (shared by `index` and `serve`). The caller drains it.
 *
 * The timeout lives on the ThreadPool, not the stage: the pool can terminate a thread stuck in
 * synchronous pdfjs code, which an abort signal alone cannot interrupt.
 *
 * @example
 * ```ts
 * const pool = startExtractPool({ threads: 2, extractTimeout: 60_000 });
 * ```
 */
export function startExtractPool(
  opts: Pick<IndexOptions, 'threads' | 'extractTimeout' | 'extractModule'>,
): ThreadPool<ExtractJob, ExtractedDocument> {
  return new ThreadPool<ExtractJob, ExtractedDocument>(
    opts.extractModule ?? DEFAULT_EXTRACT_MODULE,
    {
      threads: opts.threads ?? availableParallelism(),
      timeout: opts.extractTimeout ?? 60_000,
      name: 'extract-threads', // its events' and metrics' pool label (the stage is 'extract')
    },
  );
}

function record(tally: Tally, result: Result<unknown, unknown>, abort?: AbortSignal): void {
  if (result.ok) {
    tally.indexed++;
    return;
  }
  // After a second signal or the drain deadline, in-flight documents come back canceled: not
  // their fault, not failed.
  if (abort?.aborted && (result.error as { code?: string }).code === 'ERR_ABORTED') {
    tally.canceled++;
    return;
  }
  tally.failed.push(failureOf(result));
}

/** One failed Result as the summary lists it: its message always names the document. */
function failureOf(result: Extract<Result<unknown, unknown>, { ok: false }>): Failure {
  const error = result.error as Error & { code?: unknown };
  const path = (result.job as { path?: string }).path ?? String(result.job);
  return {
    path,
    stage: result.stage ?? 'unknown',
    ...(typeof error.code === 'string' ? { code: error.code } : {}),
    message: namingDocument(path, error.message),
  };
}

function stageSummaries(stats: StageStats[]): StageSummary[] {
  return stats.map((s) => ({
    name: s.name,
    concurrency: s.concurrency,
    done: s.done,
    failed: s.failed,
    canceled: s.canceled,
    utilization: s.utilization,
    p50: s.runTime.p50,
    p99: s.runTime.p99,
  }));
}
