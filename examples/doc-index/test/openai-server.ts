import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LexicalEmbedder } from '../src/lexical-embedder.js';

/** One request the fake server received. */
export interface SeenRequest {
  at: number;
  model: string;
  input: string[];
}

/** Decides the answer to a request; `ok` sends a proper embeddings response. */
export type Behaviour = (req: SeenRequest, n: number, res: ServerResponse, ok: () => void) => void;

/**
 * A local server speaking the OpenAI embeddings format (`POST /v1/embeddings`), answering with
 * lexical vectors (16 dimensions unless `opts.dimension` says otherwise; search quality needs
 * more) unless `behaviour` does something else.
 */
export async function startOpenAiServer(
  behaviour: Behaviour = (_r, _n, _res, ok) => ok(),
  opts: { dimension?: number } = {},
) {
  const vectors = new LexicalEmbedder({ dimension: opts.dimension ?? 16 });
  const seen: SeenRequest[] = [];
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    if (req.method !== 'POST' || req.url !== '/v1/embeddings') {
      res.writeHead(404).end('not found');
      return;
    }
    const parsed = JSON.parse(body) as { model: string; input: string[] };
    const request = { at: performance.now(), model: parsed.model, input: parsed.input };
    seen.push(request);
    const ok = () => {
      const data = parsed.input.map((text, index) => ({
        object: 'embedding',
        index,
        embedding: Array.from(vectors.embedOne(text)),
      }));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ object: 'list', data, model: parsed.model, usage: { prompt_tokens: 0 } }),
      );
    };
    behaviour(request, seen.length, res, ok);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
