import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { type PoolLimitMessage, SLUICE_POOL_LIMIT } from 'sluice';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchFailure, HttpEmbedder, type HttpEmbedderOptions } from '../src/http-embedder.js';
import { backoffDelay, parseRetryAfter } from '../src/retry.js';
import { type Behaviour, startOpenAiServer } from './openai-server.js';

let server: Awaited<ReturnType<typeof startOpenAiServer>> | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function embedderFor(behaviour: Behaviour, opts: Partial<HttpEmbedderOptions> = {}) {
  server = await startOpenAiServer(behaviour);
  return new HttpEmbedder({ baseUrl: server.url, model: 'test-model', backoffBase: 1, ...opts });
}

const texts = (n: number) =>
  Array.from({ length: n }, (_, i) => `chunk number ${i} about topic ${i % 3}`);

describe('HttpEmbedder', () => {
  it('batches inputs, keeps their order, limits requests in flight, learns the dimension', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    // The first two requests are held until both have arrived, so two in flight is certain
    // (not a race the test hopes to win); later requests are answered at once.
    const held: (() => void)[] = [];
    const e = await embedderFor(
      (_req, n, res, ok) => {
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        res.on('finish', () => inFlight--);
        if (n > 2) return ok();
        held.push(ok);
        if (held.length === 2) for (const release of held.splice(0)) release();
      },
      { batchSize: 4, concurrency: 2 },
    );
    const input = texts(10);
    const vectors = await e.embed(input);
    expect(server!.seen.map((r) => r.input.length).sort()).toEqual([2, 4, 4]);
    expect(server!.seen.flatMap((r) => r.input).sort()).toEqual([...input].sort());
    expect(server!.seen.every((r) => r.model === 'test-model')).toBe(true);
    expect(maxInFlight).toBe(2);
    expect(vectors).toHaveLength(10);
    // Same text → same vector, so order is checked by re-embedding one text alone.
    const [seventh] = await e.embed([input[7]!]);
    expect(vectors[7]).toEqual(seventh);
    expect(e.identity).toEqual({ kind: 'http', model: 'test-model', dimension: 16 });
  });

  it('waits for Retry-After on 429, then succeeds', async () => {
    const e = await embedderFor((_req, n, res, ok) => {
      if (n === 1) res.writeHead(429, { 'retry-after': '1' }).end('slow down');
      else ok();
    });
    const vectors = await e.embed(texts(2));
    expect(vectors).toHaveLength(2);
    const [first, second] = server!.seen;
    // backoffBase is 1 ms, so only the header can explain a ~1 s gap.
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
  });

  it('fails instead of retrying early when Retry-After exceeds backoffMax', async () => {
    const e = await embedderFor(
      (_req, _n, res) => res.writeHead(503, { 'retry-after': '60' }).end(),
      {
        backoffMax: 1000,
      },
    );
    await expect(e.embed(texts(1))).rejects.toThrow(
      /Retry-After asks for 60000 ms, over the 1000 ms limit/,
    );
    expect(server!.seen).toHaveLength(1);
  });

  it('gives up on 500s when the retry budget ends, with status and attempts', async () => {
    const e = await embedderFor((_req, _n, res) => res.writeHead(500).end('boom'), { retries: 2 });
    const err = await e.embed(texts(1)).catch((x: unknown) => x);
    expect(server!.seen).toHaveLength(3);
    expect(err).toMatchObject({
      code: 'ERR_EMBED_HTTP',
      status: 500,
      attempts: 3,
      message: expect.stringMatching(
        /answered 500 Internal Server Error: boom \(gave up after 3 attempts\)/,
      ),
    });
  });

  it('names the cause when no server listens (ECONNREFUSED), not only "fetch failed"', async () => {
    // A port that was just free and is closed again: the connection is refused.
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    const e = new HttpEmbedder({
      baseUrl: `http://127.0.0.1:${port}`,
      model: 'test-model',
      backoffBase: 1,
      retries: 1,
    });
    const err = await e.embed(texts(1)).catch((x: unknown) => x);
    expect(err).toMatchObject({
      code: 'ERR_EMBED_HTTP',
      attempts: 2,
      message: expect.stringMatching(
        new RegExp(
          `failed: fetch failed: connect ECONNREFUSED 127\\.0\\.0\\.1:${port} \\(gave up after 2 attempts\\)$`,
        ),
      ),
    });
  });

  it("reads a fetch failure's cause, also an AggregateError without a message", () => {
    const refused = (address: string) =>
      Object.assign(new Error(`connect ECONNREFUSED ${address}`), { code: 'ECONNREFUSED' });
    const both = Object.assign(
      new AggregateError([refused('::1:11434'), refused('127.0.0.1:11434')], ''),
      { code: 'ECONNREFUSED' },
    );
    expect(fetchFailure(new TypeError('fetch failed', { cause: both }))).toBe(
      'fetch failed: connect ECONNREFUSED ::1:11434; connect ECONNREFUSED 127.0.0.1:11434',
    );
    const bare = Object.assign(new AggregateError([], ''), { code: 'ECONNREFUSED' });
    expect(fetchFailure(new TypeError('fetch failed', { cause: bare }))).toBe(
      'fetch failed: ECONNREFUSED',
    );
    expect(fetchFailure(new Error('socket hang up'))).toBe('socket hang up');
  });

  it('times out a request that hangs, retries it, then fails with ERR_EMBED_TIMEOUT', async () => {
    const e = await embedderFor(() => {}, { timeout: 100, retries: 1 });
    const err = await e.embed(texts(1)).catch((x: unknown) => x);
    expect(server!.seen).toHaveLength(2);
    expect(err).toMatchObject({
      code: 'ERR_EMBED_TIMEOUT',
      attempts: 2,
      message: expect.stringMatching(/timed out after 100 ms \(gave up after 2 attempts\)/),
    });
  });

  it('fails malformed JSON at once, without retrying', async () => {
    const e = await embedderFor((_req, _n, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"data": [');
    });
    const err = await e.embed(texts(1)).catch((x: unknown) => x);
    expect(server!.seen).toHaveLength(1);
    expect(err).toMatchObject({
      code: 'ERR_EMBED_MALFORMED',
      message: expect.stringMatching(/not JSON/),
    });
  });

  it('fails a response with the wrong number of embeddings', async () => {
    const e = await embedderFor((_req, _n, res) => res.writeHead(200).end('{"data": []}'));
    await expect(e.embed(texts(2))).rejects.toMatchObject({ code: 'ERR_EMBED_MALFORMED' });
  });

  it('does not retry a 400', async () => {
    const e = await embedderFor((_req, _n, res) => res.writeHead(400).end('bad model'));
    await expect(e.embed(texts(1))).rejects.toMatchObject({ status: 400, attempts: 1 });
    expect(server!.seen).toHaveLength(1);
  });

  it("settles as sluice's AbortError on the caller's abort, without retrying", async () => {
    const controller = new AbortController();
    const e = await embedderFor(() => controller.abort(new Error('stop now')), { retries: 3 });
    await expect(e.embed(texts(1), { signal: controller.signal })).rejects.toMatchObject({
      code: 'ERR_ABORTED',
      cause: new Error('stop now'),
    });
    expect(server!.seen).toHaveLength(1);
  });

  it('rejects bad options naming the option', () => {
    expect(() => new HttpEmbedder({ baseUrl: 'nope', model: 'm' })).toThrow(/baseUrl/);
    expect(() => new HttpEmbedder({ baseUrl: 'ftp://x', model: 'm' })).toThrow(
      'http embedder option baseUrl must be an http: or https: URL, got "ftp://x"',
    );
    expect(() => new HttpEmbedder({ baseUrl: 'http://x', model: 'm', batchSize: 0 })).toThrow(
      /batchSize/,
    );
    expect(() => new HttpEmbedder({ baseUrl: 'http://x', model: 'm', concurrency: 0 })).toThrow(
      "http embedder option concurrency must be an integer >= 1 or 'auto', got 0",
    );
  });

  it('adapts by default: starts at 4 requests in flight and cuts the limit on 503s', async () => {
    const moves: PoolLimitMessage[] = [];
    const onLimit = (m: unknown) => moves.push(m as PoolLimitMessage);
    diagnostics.subscribe(SLUICE_POOL_LIMIT, onLimit);
    try {
      let inFlight = 0;
      let maxInFlight = 0;
      // The first four requests are held until all four arrived (4 in flight is certain), then
      // all answered 503; the retries and the rest succeed.
      const held: (() => void)[] = [];
      const e = await embedderFor(
        (_req, n, res, ok) => {
          maxInFlight = Math.max(maxInFlight, ++inFlight);
          res.on('finish', () => inFlight--);
          if (n > 4) return ok();
          held.push(() => res.writeHead(503).end('busy'));
          if (held.length === 4) for (const release of held.splice(0)) release();
        },
        { batchSize: 1 },
      );
      expect(e.requestLimit).toBe(4);
      const vectors = await e.embed(texts(12));
      expect(vectors).toHaveLength(12);
      expect(maxInFlight).toBe(4);
      const drop = moves.find((m) => m.name === 'http-embedder' && m.reason === 'drop');
      expect(drop).toMatchObject({ kind: 'pool', previous: 4, limit: 2, min: 1, max: 64 });
      expect(server!.seen).toHaveLength(16); // 12 batches + 4 retries
    } finally {
      diagnostics.unsubscribe(SLUICE_POOL_LIMIT, onLimit);
    }
  });

  it('a number pins the request limit: never moved, never exceeded', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const e = await embedderFor(
      (_req, n, res, ok) => {
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        res.on('finish', () => inFlight--);
        if (n <= 3) res.writeHead(503).end('busy');
        else ok();
      },
      { batchSize: 1, concurrency: 3 },
    );
    await e.embed(texts(9));
    expect(e.requestLimit).toBe(3);
    expect(maxInFlight).toBeLessThanOrEqual(3);
  });
});

describe('retry timing', () => {
  it('parses Retry-After seconds and HTTP dates', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });

  it('backs off exponentially with jitter, capped, Retry-After first', () => {
    const opts = { base: 100, max: 1000 };
    expect(backoffDelay(1, { ...opts, random: () => 0 })).toBe(50);
    expect(backoffDelay(3, { ...opts, random: () => 1 })).toBe(400);
    expect(backoffDelay(10, { ...opts, random: () => 1 })).toBe(1000);
    expect(backoffDelay(1, { ...opts, retryAfter: 5000 })).toBe(1000);
  });
});
