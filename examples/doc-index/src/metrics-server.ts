/**
 * `--metrics-port N`: serves sluice's Prometheus metrics on `http://127.0.0.1:N/metrics` for as
 * long as `index` or `serve` runs (sluice/prometheus over prom-client; loopback only, no auth).
 * Started before the command creates its pools: the metrics come from their events, and a
 * pool's gauges from its announcement when it is created.
 *
 * @module
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError } from 'commander';
import { UsageError } from './errors.js';

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The port it listens on (the one asked for, or the one the system chose for 0). */
  readonly port: number;
  readonly url: string;
  /** Stops serving and collecting. */
  close(): Promise<void>;
}

/**
 * Collects into its own registry and serves it on 127.0.0.1:`port` (0: a free port).
 *
 * @throws UsageError (exit 2) when the port cannot be listened on (EADDRINUSE, EACCES …), naming it.
 * @example
 * ```ts
 * const metrics = await startMetricsServer(9464); // GET http://127.0.0.1:9464/metrics
 * try { await runServe(opts); } finally { await metrics.close(); }
 * ```
 */
export async function startMetricsServer(port: number): Promise<MetricsServer> {
  // Loaded here: the CLI imports this file for its flag parser, and other commands skip them.
  const { Registry } = await import('prom-client');
  const { collectMetrics } = await import('sluice/prometheus');
  const registry = new Registry();
  const collection = collectMetrics({ registry });
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  try {
    await listen(server, port);
  } catch (err) {
    collection.close();
    // The user's choice of port, not a failure of the run: a usage error (exit 2), one line.
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UsageError(`--metrics-port ${port}: cannot listen on 127.0.0.1:${port} (${reason})`);
  }
  const bound = (server.address() as AddressInfo).port;
  return {
    port: bound,
    url: `http://127.0.0.1:${bound}/metrics`,
    async close() {
      collection.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The CLI's: a server when `--metrics-port` was given (its URL on stderr), else undefined. */
export async function metricsFor(port: number | undefined): Promise<MetricsServer | undefined> {
  if (port === undefined) return undefined;
  const metrics = await startMetricsServer(port);
  process.stderr.write(`metrics on ${metrics.url}\n`);
  return metrics;
}

/** Commander's parser for `--metrics-port`: an integer 0..65535 (0: any free port). */
export function metricsPort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535) {
    throw new InvalidArgumentError('expected a port number 0..65535 (0: any free port)');
  }
  return port;
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}
