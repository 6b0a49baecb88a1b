#!/usr/bin/env node
/**
 * `sluice-doc-index`: index PDFs into SQLite, search them.
 *
 *   sluice-doc-index index <files or folders...> --db <path> [flags]
 *   sluice-doc-index search "<query>" --db <path> [-k 10]
 *   sluice-doc-index enqueue <files or folders...> --to <queue URL>
 *   sluice-doc-index serve --from <queue URL> --db <path> [flags]
 *   sluice-doc-index dead-letters list|replay|purge --from <queue URL> [flags]
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import { relative } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { BROKER_URL_HELP, type BrokerSpec, describeSpec, parseBrokerUrl } from './broker-url.js';
import { addDeadLetterCommands } from './dead-letter-commands.js';
import { describeIdentity, type Embedder } from './embedder.js';
import { EmbedderMismatchError, UsageError } from './errors.js';
import {
  EXIT,
  EXIT_CODES_HELP,
  interruptedCode,
  PROGRAM_EXIT_CODES_HELP,
  SEARCH_EXIT_CODES_HELP,
} from './exit-codes.js';
import { HttpEmbedder } from './http-embedder.js';
import { LexicalEmbedder, tokenize } from './lexical-embedder.js';
import { metricsFor, metricsPort } from './metrics-server.js';
import type { ProgressMode } from './progress.js';
import { parseQuery } from './query.js';
import { formatSummary, type Summary } from './report.js';
import { type SearchAnswer, type SearchMethod, search } from './search.js';
import { DEFAULT_DRAIN_TIMEOUT, onShutdownSignals } from './signals.js';
import { Store } from './store.js';
import { UseEmbedder } from './use-embedder.js';

/** How `search` reads its query, appended to its `--help`. */
const SEARCH_QUERY_HELP = `
Query: plain words (any may match; common words such as "how", "the", "or" are ignored unless
quoted), "a quoted phrase", prefix* (a word starting with it). Nothing is FTS5 syntax: AND, OR,
NEAR, -, :, ( are plain text. A query needs at least one word of 2+ letters or digits. A query
starting with "-" goes after --:  search --db index.db -- "-x"
`;

// Plain decimal digits only: Number() would also take "0x2", "1e1", " 2" and "".
const int =
  (min: number, max = Number.MAX_SAFE_INTEGER) =>
  (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(
        max === Number.MAX_SAFE_INTEGER
          ? `expected an integer >= ${min}`
          : `expected an integer from ${min} to ${max}`,
      );
    return n;
  };

/** The longest delay a Node timer keeps (setTimeout clamps a longer one to 1 ms): sluice refuses
 * every duration option above it with a RangeError, so a flag over it is a usage error here, up
 * front, before any file is created. */
const MAX_MS = 2_147_483_647;
/** A duration flag, ms: an integer from `min` to {@link MAX_MS}. */
const ms = (min: number) => int(min, MAX_MS);

/** Retries of one request, or deliveries of one message: past this, a failure that repeats only
 * keeps the run (or a drain) busy for hours. */
const MAX_RETRIES = 100;

/** Extraction threads: each is a V8 isolate with pdf.js (tens of MB, ms to start), and past the
 * cores PDF parsing only slows; a few per core is the most that can help. */
const MAX_THREADS = Math.max(64, 4 * availableParallelism());

/** `auto`, or an integer >= 1. */
const intOrAuto = (value: string): number | 'auto' => {
  if (value === 'auto') return 'auto';
  if (!/^\d+$/.test(value) || !(Number(value) >= 1) || !Number.isSafeInteger(Number(value)))
    throw new InvalidArgumentError('expected auto or an integer >= 1');
  return Number(value);
};

// Checked while parsing, so that a URL the embedder could never reach (ftp:, a typo) is a usage
// error up front instead of a failed request per document.
const httpUrl = (value: string) => {
  const protocol = URL.canParse(value) ? new URL(value).protocol : undefined;
  if (protocol !== 'http:' && protocol !== 'https:')
    throw new InvalidArgumentError('expected an http:// or https:// URL');
  return value;
};

interface EmbedFlags {
  embedder?: 'lexical' | 'semantic';
  embedThreads?: number;
  embedUrl?: string;
  embedModel?: string;
  // Undefined unless given: HttpEmbedder applies the defaults, and giving one without
  // --embed-url is a usage error rather than silently ignored.
  embedBatch?: number;
  embedRequests?: number | 'auto';
  embedTimeout?: number;
  embedRetries?: number;
}

/** The flags `index` and `serve` share for writing an index: where, and how to extract. */
function addIndexFlags(cmd: Command): Command {
  return cmd
    .requiredOption('--db <path>', 'SQLite index file (created if missing)')
    .option(
      '--threads <n>',
      `extraction threads (stage "extract"), 1..${MAX_THREADS}`,
      int(1, MAX_THREADS),
      availableParallelism(),
    )
    .option(
      '--extract-timeout <ms>',
      'per-document extraction limit, ms (the thread is replaced)',
      ms(1),
      60_000,
    )
    .option('--chunk-size <chars>', 'longest chunk, characters', int(100), 1000)
    .option(
      '--drain-timeout <ms>',
      'after the first SIGINT/SIGTERM, how long the documents in flight get to finish, ms; then they are canceled (0: at once)',
      ms(0),
      DEFAULT_DRAIN_TIMEOUT,
    )
    .option('--metrics-port <port>', 'serve Prometheus /metrics on 127.0.0.1', metricsPort);
}

function addEmbedderChoice(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--embedder <name>',
        'built-in embedder: lexical (feature hashing) or semantic (Universal Sentence Encoder lite, offline, in worker threads)',
      )
        .choices(['lexical', 'semantic'])
        .default('lexical'),
    )
    .option(
      '--embed-threads <n>',
      `threads of the semantic embedder, 1..${MAX_THREADS} (default: available parallelism)`,
      int(1, MAX_THREADS),
    );
}

function addEmbedFlags(cmd: Command): Command {
  return cmd
    .option(
      '--embed-url <url>',
      'OpenAI-compatible embeddings server base URL, http(s) (default: built-in lexical embedder)',
      httpUrl,
    )
    .option('--embed-model <name>', 'model name for --embed-url (needs --embed-url)')
    .option('--embed-batch <n>', 'chunks per embeddings request (default: 64)', int(1))
    .option(
      '--embed-requests <n|auto>',
      'embeddings requests in flight at once: auto = an adaptive limit in 1..64 from 4 that follows the server (429/503, slower replies); a number pins it (default: auto)',
      intOrAuto,
    )
    .option('--embed-timeout <ms>', 'timeout per embeddings request, ms (default: 30000)', ms(1))
    .option(
      '--embed-retries <n>',
      `retries on 429/5xx/timeouts, Retry-After honoured, 0..${MAX_RETRIES} (default: 4)`,
      int(0, MAX_RETRIES),
    );
}

// A model without a server would be silently ignored in favour of the lexical embedder.
function checkEmbedFlags(flags: EmbedFlags): void {
  if (flags.embedThreads !== undefined && flags.embedder !== 'semantic')
    throw new UsageError('--embed-threads needs --embedder semantic');
  if (flags.embedUrl) {
    if (flags.embedder === 'semantic')
      throw new UsageError('--embedder semantic and --embed-url exclude each other');
    return;
  }
  const given: [unknown, string][] = [
    [flags.embedModel, '--embed-model'],
    [flags.embedBatch, '--embed-batch'],
    [flags.embedRequests, '--embed-requests'],
    [flags.embedTimeout, '--embed-timeout'],
    [flags.embedRetries, '--embed-retries'],
  ];
  const stray = given.find(([value]) => value !== undefined);
  if (stray) throw new UsageError(`${stray[1]} needs --embed-url`);
}

/** The embedder `index` and `serve` write with: HTTP with --embed-url, else a built-in one. */
function chosenEmbedder(flags: EmbedFlags): Embedder {
  checkEmbedFlags(flags);
  if (flags.embedUrl) return httpEmbedder(flags, flags.embedModel);
  return flags.embedder === 'semantic'
    ? new UseEmbedder({ threads: flags.embedThreads })
    : new LexicalEmbedder();
}

function httpEmbedder(flags: EmbedFlags, model: string | undefined): HttpEmbedder {
  if (!flags.embedUrl) throw new UsageError('this needs --embed-url');
  if (!model) throw new UsageError('--embed-url needs --embed-model');
  try {
    return new HttpEmbedder({
      baseUrl: flags.embedUrl,
      model,
      apiKey: process.env.SLUICE_EMBED_API_KEY ?? process.env.OPENAI_API_KEY,
      ...(flags.embedBatch === undefined ? {} : { batchSize: flags.embedBatch }),
      ...(flags.embedRequests === undefined ? {} : { concurrency: flags.embedRequests }),
      ...(flags.embedTimeout === undefined ? {} : { timeout: flags.embedTimeout }),
      ...(flags.embedRetries === undefined ? {} : { retries: flags.embedRetries }),
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

interface IndexFlags extends EmbedFlags {
  db: string;
  threads: number;
  extractTimeout: number;
  drainTimeout: number;
  embedConcurrency: number;
  insertConcurrency: number;
  chunkSize: number;
  progress: ProgressMode;
  json?: boolean;
  metricsPort?: number;
  report?: string;
}

async function indexCommand(inputs: string[], flags: IndexFlags): Promise<number> {
  // Loaded per command: `search` (and --help) should not pay for PDF parsing and the brokers.
  const { runIndex } = await import('./indexer.js');
  const { createProgress } = await import('./progress.js');
  // Before the embedder starts (threads, for the semantic one) and before any document is read.
  if (flags.report) (await import('./html-report.js')).checkReportPath(flags.report);
  const metrics = await metricsFor(flags.metricsPort); // before any pool exists
  const embedder = chosenEmbedder(flags);
  const progress = createProgress(
    flags.json && flags.progress === 'auto' ? 'none' : flags.progress,
  );
  const timeline = flags.report ? new (await import('./run-timeline.js')).RunTimeline() : undefined;
  // Through the progress display, which clears itself first: no stale copy of it is left above.
  const shutdown = onShutdownSignals((signal, step) => {
    progress.log(
      step === 'stop'
        ? `${signal}: not starting new documents; finishing the ones in flight for up to ${flags.drainTimeout} ms (send ${signal} again to abort them)`
        : `${signal} again: aborting the documents in flight`,
    );
  });
  let summary: Summary;
  try {
    summary = await runIndex({
      inputs,
      db: flags.db,
      threads: flags.threads,
      extractTimeout: flags.extractTimeout,
      drainTimeout: flags.drainTimeout,
      onDrainTimeout: () =>
        progress.log(
          `drain timeout (${flags.drainTimeout} ms) passed: canceling the documents still in flight`,
        ),
      embedConcurrency: flags.embedConcurrency,
      insertConcurrency: flags.insertConcurrency,
      chunkSize: flags.chunkSize,
      embedder,
      stop: shutdown.stop,
      signal: shutdown.abort,
      progress,
      timeline,
    });
  } finally {
    shutdown.uninstall();
    await embedder.close?.();
    await metrics?.close();
  }
  if (flags.report && timeline) {
    const { writeHtmlReport } = await import('./html-report.js');
    await writeHtmlReport(flags.report, { timeline: timeline.data(), summary });
  }
  process.stdout.write(flags.json ? `${JSON.stringify(summary)}\n` : `${formatSummary(summary)}\n`);
  const signal = shutdown.received();
  if (signal) return interruptedCode(signal);
  return summary.failed.length ? EXIT.SOME_FAILED : EXIT.OK;
}

interface ServeFlags extends EmbedFlags {
  from: BrokerSpec;
  db: string;
  concurrency?: number;
  threads: number;
  extractTimeout: number;
  drainTimeout: number;
  chunkSize: number;
  maxDeliveries: number;
  retryDelay: number;
  quiet?: boolean;
  json?: boolean;
  metricsPort?: number;
}

async function serveCommand(flags: ServeFlags): Promise<number> {
  const { formatServeSummary, runServe } = await import('./serve.js');
  const metrics = await metricsFor(flags.metricsPort); // before any pool exists
  const embedder = chosenEmbedder(flags);
  const shutdown = onShutdownSignals((signal, step) => {
    process.stderr.write(
      step === 'stop'
        ? `${signal}: draining — no new messages; finishing, committing and acking the ones in flight for up to ${flags.drainTimeout} ms (send ${signal} again to abort them)\n`
        : `${signal} again: aborting the documents in flight (they go back to the queue)\n`,
    );
  });
  try {
    const summary = await runServe({
      spec: flags.from,
      db: flags.db,
      concurrency: flags.concurrency,
      threads: flags.threads,
      extractTimeout: flags.extractTimeout,
      chunkSize: flags.chunkSize,
      embedder,
      maxDeliveries: flags.maxDeliveries,
      retryDelay: flags.retryDelay,
      drainTimeout: flags.drainTimeout,
      stop: shutdown.stop,
      signal: shutdown.abort,
      log: flags.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(
      flags.json ? `${JSON.stringify(summary)}\n` : `${formatServeSummary(summary)}\n`,
    );
  } finally {
    shutdown.uninstall();
    await embedder.close?.();
    await metrics?.close();
  }
  // A drained service stopped as asked: 0. Aborted by a second signal: 130/143.
  const signal = shutdown.received();
  return shutdown.abort.aborted && signal ? interruptedCode(signal) : EXIT.OK;
}

async function enqueueCommand(inputs: string[], flags: { to: BrokerSpec }): Promise<number> {
  const { runEnqueue } = await import('./enqueue.js');
  const sent = await runEnqueue(inputs, flags.to);
  process.stdout.write(
    `enqueued ${sent} document${sent === 1 ? '' : 's'} on ${describeSpec(flags.to)}\n`,
  );
  return EXIT.OK;
}

// Commander calls this while parsing: a bad URL is a usage error naming the problem.
const brokerUrl = (flag: string) => (value: string) => {
  try {
    return parseBrokerUrl(value, flag);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};

interface SearchFlags extends EmbedFlags {
  db: string;
  k: number;
  json?: boolean;
  method: SearchMethod | 'auto';
}

/**
 * `auto`: BM25 alone over an index of hashing vectors — measured (`npm run eval`), fusing them
 * in only lowered paraphrase MRR@5 (0.72 against 0.80) and cost the vector scan — and hybrid
 * over a model's vectors.
 */
function chooseMethod(store: Store, flags: SearchFlags): SearchMethod {
  const stored = store.embedder();
  if (!stored) throw new UsageError(`${flags.db} holds no index yet (run "index" first)`);
  if (flags.method !== 'auto') return flags.method;
  return stored.kind === 'lexical' ? 'bm25' : 'hybrid';
}

async function searchCommand(query: string, flags: SearchFlags): Promise<number> {
  checkEmbedFlags(flags);
  checkQuery(query);
  const store = openForSearch(flags.db);
  try {
    const method = chooseMethod(store, flags);
    // An --embed-url is checked against the index even when BM25 alone will not use it.
    const embedder =
      method === 'bm25' && !flags.embedUrl ? undefined : searchEmbedder(store, flags);
    const answer = await search(store, query, { k: flags.k, method, embedder });
    process.stdout.write(
      flags.json ? `${JSON.stringify(answer)}\n` : formatAnswer(answer, flags.k),
    );
    return answer.noGoodMatch ? EXIT.NO_GOOD_MATCH : EXIT.OK;
  } finally {
    store.close();
  }
}

/**
 * A query without a single word ("", "(", "*", an emoji) would search for nothing and answer "no
 * good match" as if the index had been asked: a usage error instead. A query of common words only
 * ("how do I", "or not") is searched (the vectors may still rank), but nothing of it reaches the
 * full text, so stderr says why its answer is weak and how to search for those words.
 */
function checkQuery(query: string): void {
  const words = tokenize(query);
  if (!words.length) {
    throw new UsageError(
      `the query ${quoteForDisplay(query)} has no word to search for (a word is 2+ letters or digits)`,
    );
  }
  const parsed = parseQuery(query);
  if (!parsed.terms.length && !parsed.phrases.length && !parsed.prefixes.length) {
    const shown = [...new Set(words)].slice(0, 5).join(', ');
    process.stderr.write(
      `sluice-doc-index: the query has only common words, which full-text search ignores (${shown}); put one in quotes to search for it, e.g. '"${words[0]}"'\n`,
    );
  }
}

/** Longest query echoed back in text output; the rest is cut with "…". */
const SHOWN_QUERY_CHARS = 100;

/**
 * A user's query as text output quotes it: JSON-quoted (an inner `"`, a newline or an escape
 * sequence stays visible and inert) and cut after {@link SHOWN_QUERY_CHARS} characters.
 */
function quoteForDisplay(query: string): string {
  const chars = [...query];
  return chars.length > SHOWN_QUERY_CHARS
    ? `${JSON.stringify(chars.slice(0, SHOWN_QUERY_CHARS).join(''))}…`
    : JSON.stringify(query);
}

/** Text from a PDF or a file name on one terminal line: control characters (ESC, CR, LF) replaced. */
function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '\ufffd');
}

/**
 * Read-only, unless the index predates full-text search: then it is migrated once (a writable
 * open adds and fills the FTS table in one transaction), or refused if it cannot be written.
 */
function openForSearch(db: string): Store {
  const store = Store.open(db, { readonly: true });
  if (store.hasFullText()) return store;
  store.close();
  try {
    const migrated = Store.open(db);
    process.stderr.write(`sluice-doc-index: ${db}: added the full-text index (one-time upgrade)\n`);
    return migrated;
  } catch (err) {
    throw new UsageError(
      `${db} was built by an older sluice-doc-index, without full-text search, and cannot be upgraded here (${(err as Error).message}); search a writable copy once, or re-index into a new --db`,
    );
  }
}

/** The answer as text; `k` is how many results were asked for. */
function formatAnswer(answer: SearchAnswer, k: number): string {
  const lines: string[] = [];
  if (answer.noGoodMatch) {
    lines.push(`No good match for ${quoteForDisplay(answer.query)}.`);
    if (answer.results.length) lines.push('Closest, all weak:');
  } else if (!answer.results.length) lines.push('No results.');
  answer.results.forEach((h, i) => {
    lines.push(
      `${i + 1}. ${printable(displayPath(h.document))}  page ${h.page}  (${h.score.toFixed(3)})`,
    );
    lines.push(`     ${printable(h.snippet)}`);
  });
  // Fewer hits than asked for reads like a truncated answer: say why there are not more.
  const shown = answer.results.length;
  if (shown > 0 && shown < k && !answer.noGoodMatch) {
    const documents = shown === 1 ? 'document matches' : 'documents match';
    lines.push(
      `(${shown} of ${k} asked for: results are one per document, and only ${shown} ${documents})`,
    );
  }
  return `${lines.join('\n')}\n`;
}

// Queries must be embedded by the embedder that built the index, or the scores mean nothing.
function searchEmbedder(store: Store, flags: EmbedFlags & { db: string }): Embedder {
  const stored = store.embedder();
  if (!stored) throw new UsageError(`${flags.db} holds no index yet (run "index" first)`);
  if (stored.kind === 'lexical') {
    if (flags.embedUrl)
      throw new EmbedderMismatchError(describeIdentity(stored), `--embed-url ${flags.embedUrl}`);
    return new LexicalEmbedder({ dimension: stored.dimension });
  }
  if (stored.kind === 'local') {
    if (flags.embedUrl)
      throw new EmbedderMismatchError(describeIdentity(stored), `--embed-url ${flags.embedUrl}`);
    // One short query: embedding it in-process beats starting a thread.
    return new UseEmbedder({ threads: 0 });
  }
  if (flags.embedModel && flags.embedModel !== stored.model) {
    throw new EmbedderMismatchError(describeIdentity(stored), `http ${flags.embedModel}`);
  }
  if (!flags.embedUrl) {
    throw new UsageError(
      `this index was built with ${describeIdentity(stored)}: pass --embed-url to search it`,
    );
  }
  return httpEmbedder(flags, stored.model);
}

function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') ? path : rel;
}

function buildProgram(setCode: (code: number) => void): Command {
  const program = new Command('sluice-doc-index')
    .description(
      'Index PDFs into SQLite (extract → embed → insert, one pool per stage) and search them.',
    )
    .addHelpText('after', PROGRAM_EXIT_CODES_HELP)
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  addEmbedFlags(
    addEmbedderChoice(
      addIndexFlags(
        program
          .command('index')
          .description('extract, chunk, embed and store PDFs; unchanged documents are skipped')
          .argument('<paths...>', 'PDF files and folders (searched recursively for *.pdf)'),
      ),
    )
      .option('--embed-concurrency <n>', 'documents embedding at once (stage "embed")', int(1), 4)
      .option('--insert-concurrency <n>', 'documents inserting at once (stage "insert")', int(1), 1)
      .addOption(
        new Option('--progress <mode>', 'progress display on stderr')
          .choices(['auto', 'bars', 'lines', 'none'])
          .default('auto'),
      )
      .option('--json', 'print the summary as JSON on stdout')
      .option(
        '--report <file.html>',
        'write a self-contained HTML report: per-stage timeline plots (running, queued, utilization) and the source pulls',
        reportPath,
      )
      .addHelpText(
        'after',
        '\nSignals: the first SIGINT/SIGTERM stops taking new documents, finishes and commits the ones\n' +
          'in flight (those still running after --drain-timeout are canceled), prints the summary and\n' +
          'exits 130/143; a second one aborts those in flight.\n' +
          EXIT_CODES_HELP,
      ),
  ).action(async (paths: string[], flags: IndexFlags) => setCode(await indexCommand(paths, flags)));
  addEmbedFlags(
    program
      .command('search')
      .description(
        'best documents for a query (full-text BM25 + vectors, fused), each with its best page and a snippet',
      )
      .argument(
        '<query>',
        'words (any may match; more and rarer ones rank higher), "a quoted phrase", prefix*',
      )
      .requiredOption('--db <path>', 'SQLite index file')
      .option('-k <n>', 'number of documents', int(1), 10)
      .addOption(
        new Option(
          '--method <method>',
          'ranking: hybrid (full text + vectors, fused), bm25 (full text), vector; auto = bm25 for a lexical index, else hybrid',
        )
          .choices(['auto', 'hybrid', 'bm25', 'vector'])
          .default('auto'),
      )
      .option('--json', 'print the answer as JSON on stdout')
      .addHelpText('after', `${SEARCH_QUERY_HELP}${SEARCH_EXIT_CODES_HELP}`)
      // A query that starts with "-" reads as an unknown option: say how to pass it.
      .showHelpAfterError(
        '(run with --help for usage; a query starting with "-" goes after --: search --db <path> -- "-query")',
      ),
  ).action(async (query: string, flags) => setCode(await searchCommand(query, flags)));
  program
    .command('enqueue')
    .description('put one message {"path": "<absolute path>"} per PDF on a queue, for "serve"')
    .argument('<paths...>', 'PDF files and folders (searched recursively for *.pdf)')
    .requiredOption('--to <url>', 'queue URL (see below)', brokerUrl('--to'))
    .addHelpText('after', BROKER_URL_HELP)
    .action(async (paths: string[], flags) => setCode(await enqueueCommand(paths, flags)));
  addEmbedFlags(
    addEmbedderChoice(
      addIndexFlags(
        program
          .command('serve')
          .description(
            'consume a queue of PDF paths and index each document (several serve processes may share one queue and one --db)',
          )
          .requiredOption('--from <url>', 'queue URL (see below)', brokerUrl('--from')),
      ),
    )
      .option(
        '--concurrency <n>',
        'documents in flight (messages held) (default: 2 x threads)',
        int(1),
      )
      .option(
        '--max-deliveries <n>',
        `deliveries before a failing document is dead-lettered, 1..${MAX_RETRIES}`,
        int(1, MAX_RETRIES),
        3,
      )
      .option('--retry-delay <ms>', 'first retry delay, ms (doubles per delivery)', ms(0), 1000)
      .option('--quiet', 'no per-document lines on stderr')
      .option('--json', 'print the final summary as JSON on stdout')
      .addHelpText(
        'after',
        `${BROKER_URL_HELP}
Messages: JSON {"path": "<absolute path>"}. A document is acked once committed; a redelivered,
already indexed document is skipped by its content hash. Malformed messages and files that are
not readable PDFs are dead-lettered at once with their error; other failures (timeouts, the
embeddings server) are retried with backoff, then dead-lettered after --max-deliveries.

Signals: the first SIGINT/SIGTERM drains (no new messages; documents in flight are finished,
committed and acked, those still running after --drain-timeout are canceled and go back to the
queue; unstarted ones go back to the queue too), prints the summary and exits 0;
a second one aborts those in flight (back to the queue) and exits 130 (SIGINT) / 143 (SIGTERM).
Exit code 2: usage error (bad flags or URL, unreachable broker, unusable index).
`,
      ),
  ).action(async (flags: ServeFlags) => setCode(await serveCommand(flags)));
  addDeadLetterCommands(program, brokerUrl('--from'));
  return program;
}

/** Runs the CLI with `argv` (as in `process.argv`); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.OK;
  try {
    await buildProgram((c) => {
      code = c;
    }).parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version are not errors; commander has already printed the usage error.
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (err instanceof UsageError || err instanceof EmbedderMismatchError) {
      process.stderr.write(`sluice-doc-index: ${err.message}\n`);
      return EXIT.USAGE;
    }
    throw err;
  }
}

/**
 * A reader that goes away (`search … | head -1`, `--help | head -2`) is not this program's
 * failure: without a listener, the EPIPE on the next write is an uncaught 'error' and a stack
 * trace with exit 1. Later writes to the closed stream are dropped and the command ends with its
 * own exit code. The run itself goes on: an `index` whose progress output is cut still finishes
 * and commits the documents it started.
 */
function ignoreClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
}

ignoreClosedPipes();
process.exitCode = await main(process.argv);

/** Commander's parser for `--report`: a file name (an empty one would silently write nothing). */
function reportPath(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('expected an .html file name');
  return value;
}
