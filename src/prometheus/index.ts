/**
 * `sluice/prometheus`: Prometheus metrics for every sluice pool, stage and consumer in the
 * process, built on their `node:diagnostics_channel` events (prom-client is an optional peer).
 *
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import { type Registry, register } from 'prom-client';
import { argument, invalidOption, optionsObject } from '../internal/options.js';
import {
  type JobRateLimitedMessage,
  type PoolCreatedMessage,
  SLUICE_JOB_RATE_LIMITED,
  SLUICE_POOL_CREATED,
} from '../observability/gate-channels.js';
import { feedJobMetrics } from '../observability/job-metrics-feed.js';
import {
  type MessageSettledMessage,
  SLUICE_MESSAGE_SETTLED,
} from '../observability/message-channels.js';
import { AnnouncedPools } from './announced.js';
import { DEFAULT_BUCKETS, registerMetrics } from './metrics.js';
import { PoolSeries } from './series.js';

export { DEFAULT_BUCKETS };

/** Options of {@link collectMetrics}. */
export interface CollectMetricsOptions {
  /** Where the metrics are registered. Default: prom-client's global `register`. */
  registry?: Registry;
  /** Only the pools (stages, consumers) with these `name`s. Default: every one. */
  pools?: readonly string[];
  /**
   * Histogram bucket upper bounds in seconds, increasing. Default {@link DEFAULT_BUCKETS}
   * (0.5 ms to 120 s) for both.
   */
  buckets?: { wait?: readonly number[]; run?: readonly number[] };
}

/** What {@link collectMetrics} returns. */
export interface MetricsCollection {
  /** Unsubscribes from the events and unregisters the metrics. Idempotent. */
  close(): void;
}

/**
 * Registers sluice's metrics in `registry` and keeps them up to date from the events of every
 * Pool, ThreadPool, runPool, pipeline stage and consume() in the process (or those named in
 * `pools`). The metrics are listed in the README (Metrics).
 *
 * Counters and histograms count the jobs accepted from this call on. Gauges (running, queued,
 * waiting, concurrency, utilization, held messages) read `stats()` at each scrape from the pools
 * created after this call (they announce themselves on `sluice:pool:created`); runPool has no
 * snapshot and no gauges. So call it at start-up, before creating pools. Pools sharing a name
 * are summed into one series.
 *
 * @throws TypeError `ERR_INVALID_OPTION` naming the option for a bad option; prom-client's
 *   error when these metrics are already registered in `registry` (close the other collection).
 * @example
 * ```ts
 * import { register } from 'prom-client';
 * import { collectMetrics } from 'sluice/prometheus';
 * const metrics = collectMetrics();
 * const pool = new Pool(work, { concurrency: 8, name: 'thumbnails' });
 * // … serve `await register.metrics()` on /metrics; at exit: metrics.close()
 * ```
 */
export function collectMetrics(options?: CollectMetricsOptions): MetricsCollection {
  const opts = optionsObject<CollectMetricsOptions>(argument('options'), options) ?? {};
  const registry = opts.registry ?? register;
  if (typeof (registry as { registerMetric?: unknown })?.registerMetric !== 'function') {
    invalidOption('registry', registry, 'a prom-client Registry');
  }
  const only = poolNames(opts.pools);
  const buckets = optionsObject<NonNullable<CollectMetricsOptions['buckets']>>(
    'buckets',
    opts.buckets,
  );
  const announced = new AnnouncedPools();
  const bounds = {
    wait: bucketList('buckets.wait', buckets?.wait),
    run: bucketList('buckets.run', buckets?.run),
  };
  const series = new Map<string, PoolSeries>();
  // undefined: not collected (a name left out by `pools`).
  const seriesOf = (name: string): PoolSeries | undefined => {
    let s = series.get(name);
    if (s === undefined && (only === undefined || only.has(name))) {
      s = new PoolSeries(bounds);
      series.set(name, s);
    }
    return s;
  };
  const unregister = registerMetrics(registry, series, announced, bounds);
  const unsubscribe = subscribe(seriesOf, announced);
  let closed = false;
  return {
    close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      unregister();
    },
  };
}

/** Subscribes to every channel the metrics count from; returns the unsubscribe. */
function subscribe(
  seriesOf: (name: string) => PoolSeries | undefined,
  announced: AnnouncedPools,
): () => void {
  const plain: [string, (message: unknown) => void][] = [
    [
      SLUICE_POOL_CREATED,
      (m) => {
        const message = m as PoolCreatedMessage;
        const s = seriesOf(message.name);
        if (s === undefined) return;
        if (message.kind === 'consume') s.consumer();
        announced.add(message);
      },
    ],
    [
      SLUICE_JOB_RATE_LIMITED,
      (m) => {
        const { name, gate, waitMs } = m as JobRateLimitedMessage;
        const s = seriesOf(name);
        if (s === undefined) return;
        s.rateWaits[gate]++;
        if (waitMs !== undefined) s.rateSeconds[gate] += waitMs / 1000;
      },
    ],
    [
      SLUICE_MESSAGE_SETTLED,
      (m) => {
        const { name, outcome } = m as MessageSettledMessage;
        const s = seriesOf(name);
        if (s !== undefined) s.consumer()[outcome]++;
      },
    ],
  ];
  const unfeed = feedJobMetrics({
    accepted: (pool) => {
      const s = seriesOf(pool);
      if (s !== undefined) s.accepted++;
    },
    retried: (pool) => {
      const s = seriesOf(pool);
      if (s !== undefined) s.retries++;
    },
    settled: (pool, outcome) => {
      const s = seriesOf(pool);
      if (s !== undefined) s.jobs[outcome]++;
    },
    waited: (pool, seconds) => seriesOf(pool)?.wait.observe(seconds),
    ran: (pool, seconds) => seriesOf(pool)?.run.observe(seconds),
  });
  for (const [name, fn] of plain) diagnostics.subscribe(name, fn);
  return () => {
    for (const [name, fn] of plain) diagnostics.unsubscribe(name, fn);
    unfeed();
  };
}

function poolNames(pools: unknown): Set<string> | undefined {
  if (pools === undefined) return undefined;
  if (!Array.isArray(pools) || !pools.every((p) => typeof p === 'string' && p !== '')) {
    invalidOption('pools', pools, 'an array of pool names (non-empty strings)');
  }
  return new Set(pools as string[]);
}

function bucketList(name: string, value: unknown): readonly number[] {
  if (value === undefined) return DEFAULT_BUCKETS;
  const ok =
    Array.isArray(value) &&
    value.length > 0 &&
    value.every(
      (b, i) =>
        typeof b === 'number' && Number.isFinite(b) && b > 0 && (i === 0 || b > value[i - 1]),
    );
  if (!ok) invalidOption(name, value, 'a non-empty array of increasing positive seconds');
  return value as number[];
}
