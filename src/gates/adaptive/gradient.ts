/**
 * Gradient (after Netflix's Gradient2): compares the last round trip's average run time with a
 * long-term one. Internal.
 */
import type { LimitAlgorithm, LimitSample, LimitStep } from './algorithm.js';
import { Rounds } from './algorithm.js';

/** Options of the `'gradient'` algorithm. */
export interface GradientOptions {
  name: 'gradient';
  /** Short-term/long-term run-time ratio tolerated before shrinking, >= 1. Default 1
   * (the limit settles near tolerance x the downstream's knee). */
  tolerance?: number;
  /** Weight of each round's estimate in the limit, in (0, 1]. Default 0.5. */
  smoothing?: number;
  /** Rounds the long-term average spans (exponential). Default 1000. */
  longWindow?: number;
}

const ewma = (average: number, value: number, window: number): number =>
  Number.isNaN(average) ? value : average + (value - average) * (2 / (window + 1));

/**
 * Once per round: gradient = clamp(tolerance x long / short, 0.5, 1); the estimate is
 * limit x gradient, plus a headroom of sqrt(limit) when not congested (gradient 1); the limit
 * moves `smoothing` of the way to it. A drop halves the limit (once per round).
 */
export class Gradient implements LimitAlgorithm {
  readonly #tolerance: number;
  readonly #smoothing: number;
  readonly #longWindow: number;
  readonly #rounds = new Rounds();
  #long = Number.NaN;
  #sum = 0;
  #count = 0;
  #saturated = false;

  constructor(opts: Required<Omit<GradientOptions, 'name'>>) {
    this.#tolerance = opts.tolerance;
    this.#smoothing = opts.smoothing;
    this.#longWindow = opts.longWindow;
  }

  next(limit: number, sample: LimitSample, now: number): LimitStep {
    if (sample.dropped) {
      // A refusal's run time says nothing about queueing: it does not enter the averages.
      if (!this.#rounds.closes(sample, now)) return { limit, reason: 'probe' };
      this.#endRound(now);
      return { limit: limit / 2, reason: 'drop' };
    }
    this.#sum += sample.rtt;
    this.#count++;
    if (sample.inflight * 2 >= limit) this.#saturated = true;
    if (!this.#rounds.closes(sample, now)) return { limit, reason: 'probe' };
    const short = this.#sum / this.#count;
    const saturated = this.#saturated;
    this.#endRound(now);
    // The baseline follows improvements at once and degradations slowly, so a load that stays
    // high does not become the new normal.
    this.#long = Math.min(ewma(this.#long, short, this.#longWindow), short);
    const gradient = Math.max(0.5, Math.min(1, (this.#tolerance * this.#long) / short));
    if (gradient === 1 && !saturated) return { limit, reason: 'probe' };
    const estimate = gradient < 1 ? limit * gradient : limit + Math.sqrt(limit);
    return { limit: limit + (estimate - limit) * this.#smoothing, reason: 'latency' };
  }

  #endRound(now: number): void {
    this.#rounds.end(now);
    this.#sum = 0;
    this.#count = 0;
    this.#saturated = false;
  }
}
