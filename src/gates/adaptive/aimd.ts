/**
 * Loss/latency AIMD: TCP Reno's window, for jobs. Internal.
 */
import type { LimitAlgorithm, LimitSample, LimitStep } from './algorithm.js';
import { Rounds } from './algorithm.js';

/** Options of the `'aimd'` algorithm. */
export interface AimdOptions {
  name: 'aimd';
  /** Multiplier applied on a drop or a slow round, in (0, 1). Default 0.9. */
  backoff?: number;
  /**
   * A success slower than `tolerance` x the baseline run time counts as congestion, > 1.
   * Default 1.1. `Infinity` reacts to drops only.
   */
  tolerance?: number;
  /**
   * Samples over which the baseline run time (the fastest seen) drifts up to slower ones, so
   * a downstream that got slower for good is re-learnt. Default 10000.
   */
  window?: number;
}

/**
 * Grows +1 per saturated success until the first congestion (slow start: doubles per round
 * trip), then +1 per round trip; cuts x`backoff` at most once per round on a drop or a slow
 * success.
 */
export class Aimd implements LimitAlgorithm {
  readonly #backoff: number;
  readonly #tolerance: number;
  readonly #window: number;
  readonly #rounds = new Rounds();
  #slowStart = true;
  /** The no-queueing run time: follows faster samples at once, slower ones over `window`. */
  #baseline = Number.NaN;

  constructor(opts: Required<Omit<AimdOptions, 'name'>>) {
    this.#backoff = opts.backoff;
    this.#tolerance = opts.tolerance;
    this.#window = opts.window;
  }

  next(limit: number, sample: LimitSample, now: number): LimitStep {
    const slow = !sample.dropped && this.#isSlow(sample.rtt);
    if (sample.dropped || slow) {
      if (!this.#rounds.closes(sample, now)) return { limit, reason: 'probe' };
      this.#rounds.end(now);
      this.#slowStart = false;
      return { limit: limit * this.#backoff, reason: sample.dropped ? 'drop' : 'latency' };
    }
    // Grow only while the limit is what holds jobs back: an idle pool proves nothing.
    if (sample.inflight * 2 < limit) return { limit, reason: 'probe' };
    return { limit: limit + (this.#slowStart ? 1 : 1 / limit), reason: 'probe' };
  }

  #isSlow(rtt: number): boolean {
    const b = this.#baseline;
    this.#baseline = Number.isNaN(b)
      ? rtt
      : Math.min(rtt, b + (rtt - b) * (2 / (this.#window + 1)));
    return rtt > b * this.#tolerance;
  }
}
