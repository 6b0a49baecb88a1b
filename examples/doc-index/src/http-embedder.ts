/**
 * Embeddings from any OpenAI-compatible endpoint (`POST {base}/v1/embeddings` — OpenAI, Ollama,
 * vLLM, TEI, LocalAI…): inputs are sent in batches, at most `concurrency` requests at a time
 * (by default a sluice `adaptive()` limit that finds the server's own), each bounded by
 * `timeout`; 429, 5xx, timeouts and network errors are retried with backoff, honouring
 * `Retry-After`. Anything else fails fast with an {@link EmbedError}.
 *
 * @module
 */
import { type AdaptiveConcurrency, adaptive, Pool } from 'sluice';
import { type Embedder, type EmbedderIdentity, l2normalize } from './embedder.js';
import { EmbedError } from './errors.js';
import { backoffDelay, parseRetryAfter, sleep } from './retry.js';

/** Options of {@link HttpEmbedder}. */
export interface HttpEmbedderOptions {
  /** Base URL, e.g. `http://127.0.0.1:11434` (Ollama) or `https://api.openai.com`. A trailing
   * `/v1` is accepted too. */
  baseUrl: string;
  /** Model name sent with every request. */
  model: string;
  /** Sent as `Authorization: Bearer …` when set. */
  apiKey?: string;
  /** Inputs per request. Default 64. */
  batchSize?: number;
  /**
   * Requests in flight at once, across all documents: a fixed number, or `'auto'` (default) for
   * an adaptive limit in [1, 64] starting at 4 ({@link ADAPTIVE_REQUESTS}), which grows while
   * replies stay as fast as the fastest seen and shrinks when they slow down or the server
   * answers 429/503. Each attempt is one job of the limit (a retry's backoff holds no slot).
   */
  concurrency?: number | 'auto';
  /** Per-request timeout in ms. Default 30 000. */
  timeout?: number;
  /** Retries after the first attempt (so `retries + 1` requests at most). Default 4. */
  retries?: number;
  /** First backoff delay in ms (doubles per retry, with jitter). Default 500. */
  backoffBase?: number;
  /** Longest wait between attempts in ms. A `Retry-After` beyond it fails the request instead of
   * retrying early. Default 30 000. */
  backoffMax?: number;
}

const RETRYABLE = (status: number) => status === 429 || status === 408 || status >= 500;

/** The adaptive request limit of `concurrency: 'auto'`: its range and starting point. */
export const ADAPTIVE_REQUESTS = { min: 1, max: 64, initial: 4 } as const;

type AttemptOutcome =
  | { vectors: Float32Array[]; error?: undefined }
  | { vectors?: undefined; error: EmbedError; retryable: boolean; retryAfter?: number };

/**
 * One failed attempt, as the request pool sees it: its `status` tells the adaptive limit a
 * 429/503 (overload, a drop) from other failures. Internal: unwrapped by the retry loop.
 */
class AttemptFailed extends Error {
  readonly status: number | undefined;
  readonly outcome: Extract<AttemptOutcome, { error: EmbedError }>;
  constructor(outcome: Extract<AttemptOutcome, { error: EmbedError }>) {
    super(outcome.error.message);
    this.status = outcome.error.status;
    this.outcome = outcome;
  }
}

/**
 * @example
 * ```ts
 * const e = new HttpEmbedder({ baseUrl: 'http://127.0.0.1:11434', model: 'nomic-embed-text' });
 * const vectors = await e.embed(['first chunk', 'second chunk']);
 * ```
 */
export class HttpEmbedder implements Embedder {
  readonly identity: EmbedderIdentity;
  readonly #url: string;
  readonly #opts: Required<Omit<HttpEmbedderOptions, 'apiKey'>> & { apiKey?: string };
  // The request limit across all documents: a sluice Pool whose jobs are single attempts of a
  // batch. Its queue is unbounded on purpose: what it holds is already bounded by the embed
  // stage's concurrency times the batches per document, and a bounded one would only make
  // fan-out wait in submit.
  readonly #requests: Pool<{ input: string[]; attempt: number }, Float32Array[]>;
  /** The adaptive limit with `concurrency: 'auto'`. */
  readonly #limit: AdaptiveConcurrency | undefined;

  /** @throws TypeError for a bad or non-HTTP(S) URL or an empty model; RangeError for a bad number option. */
  constructor(opts: HttpEmbedderOptions) {
    this.#opts = {
      batchSize: 64,
      concurrency: 'auto',
      timeout: 30_000,
      retries: 4,
      backoffBase: 500,
      backoffMax: 30_000,
      ...opts,
    };
    this.#url = embeddingsUrl(opts.baseUrl);
    if (typeof opts.model !== 'string' || opts.model === '') {
      throw new TypeError(
        `http embedder option model must be a non-empty string, got ${opts.model}`,
      );
    }
    for (const key of ['batchSize', 'timeout'] as const) checkInt(key, this.#opts[key], 1);
    const { concurrency } = this.#opts;
    if (concurrency !== 'auto') checkInt('concurrency', concurrency, 1, "or 'auto'");
    for (const key of ['retries', 'backoffBase', 'backoffMax'] as const) {
      checkInt(key, this.#opts[key], 0);
    }
    this.#limit = concurrency === 'auto' ? adaptive(ADAPTIVE_REQUESTS) : undefined;
    this.#requests = new Pool(
      async (batch, ctx) => {
        const outcome = await this.#attempt(batch.input, batch.attempt, ctx.signal);
        if (outcome.vectors) return outcome.vectors;
        throw new AttemptFailed(outcome);
      },
      {
        concurrency: this.#limit ?? (concurrency as number),
        queueSize: Number.POSITIVE_INFINITY,
        name: 'http-embedder',
      },
    );
    this.identity = { kind: 'http', model: opts.model };
  }

  /**
   * Requests allowed in flight now: the fixed `concurrency`, or where the adaptive limit stands
   * (its moves are also published on `sluice:pool:limit` as pool `http-embedder`).
   */
  get requestLimit(): number {
    return this.#requests.stats().concurrency;
  }

  async embed(texts: readonly string[], opts: { signal?: AbortSignal } = {}) {
    const batches: string[][] = [];
    for (let i = 0; i < texts.length; i += this.#opts.batchSize) {
      batches.push(texts.slice(i, i + this.#opts.batchSize));
    }
    const results = await Promise.all(batches.map((input) => this.#request(input, opts.signal)));
    return results.flat();
  }

  async #request(input: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const { retries } = this.#opts;
    for (let attempt = 1; ; attempt++) {
      let outcome: Extract<AttemptOutcome, { error: EmbedError }>;
      try {
        return await this.#requests.run({ input, attempt }, { signal });
      } catch (err) {
        if (!(err instanceof AttemptFailed)) throw err;
        outcome = err.outcome;
      }
      const error = outcome.error;
      if (!outcome.retryable || attempt > retries) {
        if (outcome.retryable && retries > 0) {
          error.message += ` (gave up after ${attempt} attempts)`;
        }
        throw error;
      }
      // Retrying before the server's Retry-After would not be honouring it; waiting longer than
      // backoffMax would stall the document. Neither: fail it, saying why.
      if (outcome.retryAfter !== undefined && outcome.retryAfter > this.#opts.backoffMax) {
        error.message += ` (Retry-After asks for ${outcome.retryAfter} ms, over the ${this.#opts.backoffMax} ms limit)`;
        throw error;
      }
      const delay = backoffDelay(attempt, {
        base: this.#opts.backoffBase,
        max: this.#opts.backoffMax,
        retryAfter: outcome.retryAfter,
      });
      await sleep(delay, signal);
    }
  }

  async #attempt(input: string[], attempt: number, signal?: AbortSignal): Promise<AttemptOutcome> {
    const timeout = AbortSignal.timeout(this.#opts.timeout);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let response: Response;
    let body: string;
    try {
      response = await fetch(this.#url, {
        method: 'POST',
        headers: this.#headers(),
        body: JSON.stringify({ model: this.identity.model, input }),
        signal: combined,
      });
      body = await response.text();
    } catch (err) {
      // The caller's abort is not the endpoint's fault: pass it through untouched.
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted) {
        const msg = `embeddings request to ${this.#url} timed out after ${this.#opts.timeout} ms`;
        return {
          error: new EmbedError('ERR_EMBED_TIMEOUT', msg, { attempts: attempt }),
          retryable: true,
        };
      }
      const msg = `embeddings request to ${this.#url} failed: ${fetchFailure(err)}`;
      return {
        error: new EmbedError('ERR_EMBED_HTTP', msg, { attempts: attempt, cause: err }),
        retryable: true,
      };
    }
    if (!response.ok) {
      const msg =
        `embeddings endpoint ${this.#url} answered ${response.status} ${response.statusText}` +
        (body ? `: ${body.slice(0, 200)}` : '');
      const error = new EmbedError('ERR_EMBED_HTTP', msg, {
        status: response.status,
        attempts: attempt,
      });
      const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
      return { error, retryable: RETRYABLE(response.status), retryAfter };
    }
    return { vectors: this.#parse(body, input.length, attempt) };
  }

  #headers(): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.#opts.apiKey) headers.authorization = `Bearer ${this.#opts.apiKey}`;
    return headers;
  }

  // A 200 with a body we cannot use is a server bug, not a transient failure: no retry.
  #parse(body: string, expected: number, attempts: number): Float32Array[] {
    const fail = (why: string) =>
      new EmbedError('ERR_EMBED_MALFORMED', `embeddings endpoint ${this.#url} sent ${why}`, {
        attempts,
        status: 200,
      });
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw fail(`a body that is not JSON: ${JSON.stringify(body.slice(0, 80))}`);
    }
    const data = (json as { data?: unknown })?.data;
    if (!Array.isArray(data) || data.length !== expected) {
      throw fail(`no "data" array of ${expected} embeddings`);
    }
    const out = new Array<Float32Array>(expected);
    data.forEach((item: { embedding?: unknown; index?: unknown }, i) => {
      const at = typeof item?.index === 'number' ? item.index : i;
      const emb = item?.embedding;
      if (!Array.isArray(emb) || emb.length === 0 || !emb.every((x) => typeof x === 'number')) {
        throw fail(`an embedding that is not an array of numbers (data[${i}])`);
      }
      if (at < 0 || at >= expected || out[at]) throw fail(`a bad or repeated index ${at}`);
      out[at] = l2normalize(Float32Array.from(emb));
    });
    this.#checkDimension(out[0]!.length, fail);
    if (out.some((v) => v.length !== out[0]!.length)) throw fail('embeddings of different lengths');
    return out;
  }

  #checkDimension(dimension: number, fail: (why: string) => EmbedError): void {
    if (this.identity.dimension === undefined) this.identity.dimension = dimension;
    else if (this.identity.dimension !== dimension) {
      throw fail(
        `${dimension}-dimensional embeddings after ${this.identity.dimension}-dimensional ones`,
      );
    }
  }
}

/**
 * Why a `fetch` failed, with its cause: undici says only "fetch failed" and keeps the reason —
 * `connect ECONNREFUSED 127.0.0.1:11434` (no server there), `getaddrinfo ENOTFOUND host` — in
 * `cause` (an AggregateError with an empty message when every address of a host refused).
 */
export function fetchFailure(err: unknown): string {
  const text = (e: unknown): string => {
    if (!(e instanceof Error)) return String(e);
    const code = (e as { code?: unknown }).code;
    if (e.message) return e.message;
    const inner = e instanceof AggregateError ? e.errors.map(text).filter(Boolean) : [];
    if (inner.length > 0) return [...new Set(inner)].join('; ');
    return typeof code === 'string' ? code : e.name;
  };
  const message = text(err);
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause === undefined || cause === null) return message;
  const why = text(cause);
  return why && !message.includes(why) ? `${message}: ${why}` : message;
}

function embeddingsUrl(base: string): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new TypeError(
      `http embedder option baseUrl must be an absolute URL, got ${JSON.stringify(base)}`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(
      `http embedder option baseUrl must be an http: or https: URL, got ${JSON.stringify(base)}`,
    );
  }
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = path.endsWith('/v1') ? `${path}/embeddings` : `${path}/v1/embeddings`;
  return url.toString();
}

function checkInt(name: string, value: number, min: number, or = ''): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(
      `http embedder option ${name} must be an integer >= ${min}${or ? ` ${or}` : ''}, got ${value}`,
    );
  }
}
