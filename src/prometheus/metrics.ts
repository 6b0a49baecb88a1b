/**
 * The metric objects of one `collectMetrics()` call, and how each event lands in them.
 * Internal to `sluice/prometheus`; the names, types and labels are listed in the README.
 *
 * @module
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { MessageOutcome } from '../observability/message-channels.js';
import type { Outcome } from '../stats.js';
import type { AnnouncedPools, PoolGauges } from './announced.js';

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
};

const GATES = ['retry', 'rate', 'key'] as const;

export class SluiceMetrics {
  readonly #registry: Registry;
  readonly #names: string[] = [];
  readonly #seen = new Set<string>();
  readonly #consumers = new Set<string>();
  readonly jobs: Counter<'pool' | 'outcome'>;
  readonly accepted: Counter<'pool'>;
  readonly retries: Counter<'pool'>;
  readonly rateLimited: Counter<'pool' | 'gate'>;
  readonly rateLimitedWait: Counter<'pool' | 'gate'>;
  readonly messages: Counter<'pool' | 'outcome'>;
  readonly wait: Histogram<'pool'>;
  readonly run: Histogram<'pool'>;

  constructor(
    registry: Registry,
    pools: AnnouncedPools,
    buckets: { wait: readonly number[]; run: readonly number[] },
  ) {
    this.#registry = registry;
    const registers = [registry];
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) => {
      this.#names.push(name);
      return new Counter<L>({ name, help, labelNames, registers });
    };
    const histogram = (name: string, help: string, bounds: readonly number[]) => {
      this.#names.push(name);
      return new Histogram<'pool'>({
        name,
        help,
        labelNames: ['pool'],
        buckets: [...bounds],
        registers,
      });
    };
    this.jobs = counter('sluice_jobs_total', 'Jobs settled, by outcome.', ['pool', 'outcome']);
    this.accepted = counter('sluice_jobs_accepted_total', 'Jobs accepted.', ['pool']);
    this.retries = counter(
      'sluice_job_retries_total',
      'Failed attempts that will run again (the retry option).',
      ['pool'],
    );
    this.rateLimited = counter(
      'sluice_rate_limited_total',
      'Waits begun on a rate gate (gate: rate for the pool rate, key for a perKey rate).',
      ['pool', 'gate'],
    );
    this.rateLimitedWait = counter(
      'sluice_rate_limited_seconds_total',
      'Seconds of rate-gate waits begun (known lengths only).',
      ['pool', 'gate'],
    );
    this.messages = counter(
      'sluice_messages_total',
      'Messages a consumer settled with its broker, by outcome.',
      ['pool', 'outcome'],
    );
    this.wait = histogram(
      'sluice_job_wait_seconds',
      'Time from acceptance to the first start.',
      buckets.wait,
    );
    this.run = histogram('sluice_job_run_seconds', 'Run time of each attempt.', buckets.run);
    this.#gauges(registers, pools);
  }

  /** First sight of a pool name: its outcome series start at 0 (so they exist before any job). */
  seen(name: string, consumer: boolean): void {
    if (!this.#seen.has(name)) {
      this.#seen.add(name);
      for (const outcome of Object.values(JOB_OUTCOME)) this.jobs.inc({ pool: name, outcome }, 0);
      this.accepted.inc({ pool: name }, 0);
      this.retries.inc({ pool: name }, 0);
    }
    if (consumer && !this.#consumers.has(name)) {
      this.#consumers.add(name);
      for (const outcome of Object.values(MESSAGE_OUTCOME)) {
        this.messages.inc({ pool: name, outcome }, 0);
      }
    }
  }

  jobSettled(name: string, outcome: Outcome): void {
    this.jobs.inc({ pool: name, outcome: JOB_OUTCOME[outcome] });
  }

  messageSettled(name: string, outcome: MessageOutcome): void {
    this.messages.inc({ pool: name, outcome: MESSAGE_OUTCOME[outcome] });
  }

  /** Unregisters every metric of this collection. */
  remove(): void {
    for (const name of this.#names) this.#registry.removeSingleMetric(name);
  }

  /** Gauges read from the announced pools' snapshots at each scrape. */
  #gauges(registers: Registry[], pools: AnnouncedPools): void {
    const gauge = (
      name: string,
      help: string,
      set: (g: Gauge<string>, pool: string, v: PoolGauges) => void,
      labelNames: string[] = ['pool'],
    ) => {
      this.#names.push(name);
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
    gauge(
      'sluice_utilization_ratio',
      'Running jobs over the concurrency limit, now.',
      (g, pool, v) => g.set({ pool }, v.concurrency > 0 ? v.running / v.concurrency : 0),
    );
    gauge(
      'sluice_messages_held',
      'Messages a consumer fetched and has not settled with its broker yet.',
      (g, pool, v) => {
        if (v.held !== undefined) g.set({ pool }, v.held);
      },
    );
  }
}
