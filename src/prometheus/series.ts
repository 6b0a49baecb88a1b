/**
 * What `sluice/prometheus` counts per pool name, in plain numbers: an event costs a few field
 * updates, and prom-client reads the totals only at a scrape. Why not prom-client's own
 * `inc`/`observe` per event: each hashes its label set, ~0.3–0.6 µs apiece, four per job
 * (measured, BENCHMARKS.md "Events"). Internal.
 *
 * @module
 */

import type { RateGateKind } from '../observability/gate-channels.js';
import type { MessageOutcome } from '../observability/message-channels.js';
import type { Outcome } from '../stats.js';

/** Observations of one histogram series: per-bucket counts (not cumulative), sum and count. */
export class BucketCounts {
  readonly #bounds: readonly number[];
  /** One per bound, then one for +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }
}

/** The counts of one pool name (several pools sharing a name add up here). */
export class PoolSeries {
  accepted = 0;
  retries = 0;
  readonly jobs: Record<Outcome, number> = {
    succeeded: 0,
    failed: 0,
    timedOut: 0,
    canceled: 0,
    crashed: 0,
  };
  readonly rateWaits: Record<RateGateKind, number> = { rate: 0, key: 0 };
  readonly rateSeconds: Record<RateGateKind, number> = { rate: 0, key: 0 };
  /** Set once a consumer of this name is seen: its message series exist from then on. */
  messages: Record<MessageOutcome, number> | undefined;
  readonly wait: BucketCounts;
  readonly run: BucketCounts;

  constructor(buckets: { wait: readonly number[]; run: readonly number[] }) {
    this.wait = new BucketCounts(buckets.wait);
    this.run = new BucketCounts(buckets.run);
  }

  consumer(): Record<MessageOutcome, number> {
    this.messages ??= {
      acked: 0,
      retried: 0,
      deadLettered: 0,
      released: 0,
      canceled: 0,
      leaseLost: 0,
      unsettled: 0,
    };
    return this.messages;
  }
}
