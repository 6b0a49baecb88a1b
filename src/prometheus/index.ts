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
  type JobAcceptedMessage,
  type JobRetriedMessage,
  type JobSettledMessage,
  type JobTraceContext,
  SLUICE_JOB,
  SLUICE_JOB_ACCEPTED,
  SLUICE_JOB_RETRIED,
  SLUICE_JOB_SETTLED,
} from '../observability/channels.js';
import {
  type JobRateLimitedMessage,
  type PoolCreatedMessage,
  SLUICE_JOB_RATE_LIMITED,
  SLUICE_POOL_CREATED,
} from '../observability/gate-channels.js';
import {
  type MessageSettledMessage,
  SLUICE_MESSAGE_SETTLED,
} from '../observability/message-channels.js';
import { AnnouncedPools } from './announced.js';
import { DEFAULT_BUCKETS, SluiceMetrics } from './metrics.js';

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
  const metrics = new SluiceMetrics(registry, announced, {
    wait: bucketList('buckets.wait', buckets?.wait),
    run: bucketList('buckets.run', buckets?.run),
  });
  const wanted = (name: string) => only === undefined || only.has(name);
  const subscriptions = subscribe(metrics, announced, wanted);
  let closed = false;
  return {
    close() {
      if (closed) return;
      closed = true;
      subscriptions();
      metrics.remove();
    },
  };
}

/** Subscribes the collection to every channel it counts from; returns the unsubscribe. */
function subscribe(
  metrics: SluiceMetrics,
  announced: AnnouncedPools,
  wanted: (name: string) => boolean,
): () => void {
  const plain: [string, (message: unknown) => void][] = [
    [
      SLUICE_POOL_CREATED,
      (m) => {
        const message = m as PoolCreatedMessage;
        if (!wanted(message.name)) return;
        metrics.seen(message.name, message.kind === 'consume');
        announced.add(message);
      },
    ],
    [
      SLUICE_JOB_ACCEPTED,
      (m) => {
        const { name, kind } = m as JobAcceptedMessage;
        if (!wanted(name)) return;
        metrics.seen(name, kind === 'consume');
        metrics.accepted.inc({ pool: name });
      },
    ],
    [
      SLUICE_JOB_RETRIED,
      (m) => {
        const { name } = m as JobRetriedMessage;
        if (wanted(name)) metrics.retries.inc({ pool: name });
      },
    ],
    [
      SLUICE_JOB_SETTLED,
      (m) => {
        const { name, kind, outcome } = m as JobSettledMessage;
        if (!wanted(name)) return;
        metrics.seen(name, kind === 'consume');
        metrics.jobSettled(name, outcome);
      },
    ],
    [
      SLUICE_JOB_RATE_LIMITED,
      (m) => {
        const { name, gate, waitMs } = m as JobRateLimitedMessage;
        if (!wanted(name)) return;
        metrics.rateLimited.inc({ pool: name, gate });
        if (waitMs !== undefined) metrics.rateLimitedWait.inc({ pool: name, gate }, waitMs / 1000);
      },
    ],
    [
      SLUICE_MESSAGE_SETTLED,
      (m) => {
        const { name, outcome } = m as MessageSettledMessage;
        if (!wanted(name)) return;
        metrics.seen(name, true);
        metrics.messageSettled(name, outcome);
      },
    ],
  ];
  const trace = diagnostics.tracingChannel<string, JobTraceContext>(SLUICE_JOB);
  const handlers = {
    start(ctx: JobTraceContext) {
      // Wait is from acceptance to the first start: a retry's wait includes its backoff.
      if (ctx.attempt === 1 && ctx.waitMs !== undefined && wanted(ctx.name)) {
        metrics.wait.observe({ pool: ctx.name }, ctx.waitMs / 1000);
      }
    },
    asyncStart(ctx: JobTraceContext) {
      if (ctx.durationMs !== undefined && wanted(ctx.name)) {
        metrics.run.observe({ pool: ctx.name }, ctx.durationMs / 1000);
      }
    },
  };
  for (const [name, fn] of plain) diagnostics.subscribe(name, fn);
  // Node 20's TracingChannel.subscribe wants all five handlers: subscribe to the two we use.
  trace.start.subscribe(handlers.start as (message: unknown) => void);
  trace.asyncStart.subscribe(handlers.asyncStart as (message: unknown) => void);
  return () => {
    for (const [name, fn] of plain) diagnostics.unsubscribe(name, fn);
    trace.start.unsubscribe(handlers.start as (message: unknown) => void);
    trace.asyncStart.unsubscribe(handlers.asyncStart as (message: unknown) => void);
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
