/**
 * The metrics of one `collectMetrics()` call as prom-client sees them: counters and gauges with
 * a `collect()` that copies the totals of {@link PoolSeries} at each scrape, and two histograms
 * exposed the same way. Internal; names, types and labels are listed in the README.
 *
 * @module
 */
import { Counter, Gauge, type Metric, type Registry } from 'prom-client';
import type { MessageOutcome } from '../observability/message-channels.js';
import type { Outcome } from '../stats.js';
import type { AnnouncedPools, PoolGauges } from './announced.js';
import type { BucketCounts, PoolSeries } from './series.js';

/** Bucket upper bounds (seconds) for both histograms: 0.5 ms to 2 minutes. */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
]);

/** The `outcome` label of `sluice_jobs_total` (snake_case, as Prometheus label values are). */
const JOB_OUTCOME: Record<Outcome, string> = {
  succeeded: 'succeeded',
  failed: 'failed',
  timedOut: 'timed_out',
  canceled: 'canceled',
  crashed: 'crashed',
};

/** The `outcome` label of `sluice_messages_total`. */
const MESSAGE_OUTCOME: Record<MessageOutcome, string> = {
  acked: 'acked',
  retried: 'retried',
  deadLettered: 'dead_lettered',
  released: 'released',
  canceled: 'canceled',
  leaseLost: 'lease_lost',
  unsettled: 'unsettled',
};

const GATES = ['retry', 'rate', 'key'] as const;

type Series = ReadonlyMap<string, PoolSeries>;

/** One sample as prom-client's Registry formats it. */
interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

/** Registers every metric in `registry`; returns the unregister. */
export function registerMetrics(
  registry: Registry,
  series: Series,
  pools: AnnouncedPools,
  bounds: { wait: readonly number[]; run: readonly number[] },
): () => void {
  const names: string[] = [];
  const registers = [registry];
  const counter = (
    name: string,
    help: string,
    labelNames: string[],
    fill: (c: Counter<string>, pool: string, s: PoolSeries) => void,
  ) => {
    names.push(name);
    const c: Counter<string> = new Counter({
      name,
      help,
      labelNames,
      registers,
      collect: () => {
        c.reset();
        for (const [pool, s] of series) fill(c, pool, s);
      },
    });
  };
  const histogram = (
    name: string,
    help: string,
    b: readonly number[],
    of: (s: PoolSeries) => BucketCounts,
  ) => {
    names.push(name);
    registry.registerMetric(new SeriesHistogram(name, help, b, series, of) as unknown as Metric);
  };
  counter('sluice_jobs_total', 'Jobs settled, by outcome.', ['pool', 'outcome'], (c, pool, s) => {
    for (const key of Object.keys(JOB_OUTCOME) as Outcome[]) {
      c.inc({ pool, outcome: JOB_OUTCOME[key] }, s.jobs[key]);
    }
  });
  counter('sluice_jobs_accepted_total', 'Jobs accepted.', ['pool'], (c, pool, s) =>
    c.inc({ pool }, s.accepted),
  );
  counter(
    'sluice_job_retries_total',
    'Failed attempts whose retry was scheduled (the retry option).',
    ['pool'],
    (c, pool, s) => c.inc({ pool }, s.retries),
  );
  counter(
    'sluice_rate_limited_total',
    'Waits begun on a rate gate (gate: rate for the pool rate, key for a perKey rate).',
    ['pool', 'gate'],
    (c, pool, s) => {
      if (s.rateWaits.rate > 0) c.inc({ pool, gate: 'rate' }, s.rateWaits.rate);
      if (s.rateWaits.key > 0) c.inc({ pool, gate: 'key' }, s.rateWaits.key);
    },
  );
  counter(
    'sluice_rate_limited_seconds_total',
    'Seconds of rate-gate waits begun (known lengths only).',
    ['pool', 'gate'],
    (c, pool, s) => {
      if (s.rateWaits.rate > 0) c.inc({ pool, gate: 'rate' }, s.rateSeconds.rate);
      if (s.rateWaits.key > 0) c.inc({ pool, gate: 'key' }, s.rateSeconds.key);
    },
  );
  counter(
    'sluice_messages_total',
    'Messages a consumer settled with its broker, by outcome.',
    ['pool', 'outcome'],
    (c, pool, s) => {
      const messages = s.messages;
      if (messages === undefined) return;
      for (const key of Object.keys(MESSAGE_OUTCOME) as MessageOutcome[]) {
        c.inc({ pool, outcome: MESSAGE_OUTCOME[key] }, messages[key]);
      }
    },
  );
  histogram(
    'sluice_job_wait_seconds',
    'Time from acceptance to the first start.',
    bounds.wait,
    (s) => s.wait,
  );
  histogram('sluice_job_run_seconds', 'Run time of each attempt.', bounds.run, (s) => s.run);
  registerGauges(registers, pools, names);
  return () => {
    for (const name of names) registry.removeSingleMetric(name);
  };
}

/**
 * A histogram read from {@link BucketCounts} at each scrape. prom-client's own Histogram has no
 * way to take counts kept elsewhere, so this implements what its Registry reads of a metric
 * (`name`, `help`, `type`, `aggregator`, `get()`, `reset()`), as its own Histogram does.
 */
class SeriesHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly #bounds: readonly number[];
  readonly #series: Series;
  readonly #of: (s: PoolSeries) => BucketCounts;

  constructor(
    name: string,
    help: string,
    bounds: readonly number[],
    series: Series,
    of: (s: PoolSeries) => BucketCounts,
  ) {
    this.name = name;
    this.help = help;
    this.#bounds = bounds;
    this.#series = series;
    this.#of = of;
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: Sample[];
  }> {
    const values: Sample[] = [];
    for (const [pool, s] of this.#series) {
      const counts = this.#of(s);
      let cumulative = 0;
      for (let i = 0; i <= this.#bounds.length; i++) {
        cumulative += counts.counts[i] as number;
        const le = i < this.#bounds.length ? (this.#bounds[i] as number) : '+Inf';
        values.push({ value: cumulative, labels: { le, pool }, metricName: `${this.name}_bucket` });
      }
      values.push({ value: counts.sum, labels: { pool }, metricName: `${this.name}_sum` });
      values.push({ value: counts.count, labels: { pool }, metricName: `${this.name}_count` });
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    };
  }

  /** Counts live in the pools' series and are never reset (a Prometheus counter's rule). */
  reset(): void {}
}

/** Gauges read from the announced pools' snapshots at each scrape. */
function registerGauges(registers: Registry[], pools: AnnouncedPools, names: string[]): void {
  const gauge = (
    name: string,
    help: string,
    set: (g: Gauge<string>, pool: string, v: PoolGauges) => void,
    labelNames: string[] = ['pool'],
  ) => {
    names.push(name);
    const g: Gauge<string> = new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect: () => {
        g.reset();
        for (const [pool, values] of pools.gauges()) set(g, pool, values);
      },
    });
  };
  gauge('sluice_jobs_running', 'Jobs running now.', (g, pool, v) => g.set({ pool }, v.running));
  gauge('sluice_jobs_queued', 'Jobs accepted and waiting for a slot.', (g, pool, v) =>
    g.set({ pool }, v.queued),
  );
  gauge(
    'sluice_jobs_waiting',
    'Accepted jobs held back by a gate (retry backoff, rate, key limit).',
    (g, pool, v) => {
      const by = { retry: v.waitingRetry, rate: v.waitingRate, key: v.waitingKey };
      for (const gate of GATES) g.set({ pool, gate }, by[gate]);
    },
    ['pool', 'gate'],
  );
  gauge('sluice_concurrency_limit', 'The current limit on jobs running at once.', (g, pool, v) =>
    g.set({ pool }, v.concurrency),
  );
  gauge('sluice_utilization_ratio', 'Running jobs over the concurrency limit, now.', (g, pool, v) =>
    g.set({ pool }, v.concurrency > 0 ? v.running / v.concurrency : 0),
  );
  gauge(
    'sluice_messages_held',
    'Messages a consumer fetched and has not settled with its broker yet.',
    (g, pool, v) => {
      if (v.held !== undefined) g.set({ pool }, v.held);
    },
  );
}
