/**
 * Job metrics through an OpenTelemetry Meter: the same series as sluice/prometheus, named so
 * that OpenTelemetry's Prometheus export gives the same names (`sluice.jobs` → `sluice_jobs_total`,
 * `sluice.job.wait` in `s` → `sluice_job_wait_seconds`) and the same `pool` / `outcome`
 * attributes. Internal to sluice/otel.
 *
 * @module
 */
import type { Counter, Histogram, Meter } from '@opentelemetry/api';
import type { JobMetricsSink } from '../observability/job-metrics-feed.js';
import type { Outcome } from '../stats.js';
import { OUTCOME } from './outcome.js';

/** Default histogram bucket bounds (seconds): 0.5 ms to 2 minutes, as sluice/prometheus. */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
]);

export class JobMetrics implements JobMetricsSink {
  readonly #jobs: Counter;
  readonly #accepted: Counter;
  readonly #retries: Counter;
  readonly #wait: Histogram;
  readonly #run: Histogram;

  constructor(meter: Meter) {
    this.#jobs = meter.createCounter('sluice.jobs', {
      description: 'Jobs settled, by outcome.',
      unit: '{job}',
    });
    this.#accepted = meter.createCounter('sluice.jobs.accepted', {
      description: 'Jobs accepted.',
      unit: '{job}',
    });
    this.#retries = meter.createCounter('sluice.job.retries', {
      description: 'Failed attempts that will run again (the retry option).',
      unit: '{attempt}',
    });
    const advice = { explicitBucketBoundaries: [...DEFAULT_BUCKETS] };
    this.#wait = meter.createHistogram('sluice.job.wait', {
      description: 'Time from acceptance to the first start.',
      unit: 's',
      advice,
    });
    this.#run = meter.createHistogram('sluice.job.run', {
      description: 'Run time of each attempt.',
      unit: 's',
      advice,
    });
  }

  accepted(pool: string): void {
    this.#accepted.add(1, { pool });
  }

  retried(pool: string): void {
    this.#retries.add(1, { pool });
  }

  settled(pool: string, outcome: Outcome): void {
    this.#jobs.add(1, { pool, outcome: OUTCOME[outcome] });
  }

  waited(pool: string, seconds: number): void {
    this.#wait.record(seconds, { pool });
  }

  ran(pool: string, seconds: number): void {
    this.#run.record(seconds, { pool });
  }
}
