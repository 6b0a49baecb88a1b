/**
 * Gradient (after Netflix's Gradient2): compares the last round trip's average run time with a
 * long-term one. Internal.
 */
import type { LimitAlgorithm, LimitSample, LimitStep } from './algorithm.js';
import { Rounds } from './algorithm.js';

/** Options of the `'gradient'` algorithm. */
export interface GradientOptions {
  name: 'gradient';
  /**
   * Short-term/long-term run-time ratio tolerated before shrinking, >= 1. Default 1 (the limit
   * settles near tolerance x the downstream's knee). A fixed 5% noise band on top keeps
   * growing through the few percent real run times wobble by (see NOISE).
   */
  tolerance?: number;
  /** Weight of each round's estimate in the limit, in (0, 1]. Default 0.5. */
  smoothing?: number;
  /** Rounds the long-term average spans (exponential). Default 1000. */
  longWindow?: number;
}

/**
 * A round at most this much slower than tolerance x long still counts as uncongested for growth:
 * real run times wobble upwards (timers fire late, never early) by a few percent, and with the
 * baseline at the quickest rounds seen, growth would otherwise wait for a new record.
 */
const NOISE = 1.05;

/** In slow start, rounds slower than this x tolerance x long end it (milder ones pause it). */
const SLOW_START_EXIT = 0.8;

const ewma = (average: number, value: number, window: number): number =>
  Number.isNaN(average) ? value : average + (value - average) * (2 / (window + 1));

/**
 * Once per round: gradient = clamp(tolerance x long / short, 0.5, 1). The estimate is
 * limit x gradient when congested (gradient < 1); when not (and saturated), limit + sqrt(limit)
 * — or, until the first congestion or drop, 2 x limit (slow start, as TCP's: from `min` to a
 * knee of 64 in about ten rounds instead of thirty). The limit moves `smoothing` of the way to
 * the estimate (a round's mean also holds replies of jobs started before the last cut: moving
 * all the way would count that congestion twice). A drop halves the limit (once per round).
 */
export class Gradient implements LimitAlgorithm {
  readonly #tolerance: number;
  readonly #smoothing: number;
  readonly #longWindow: number;
  readonly #rounds = new Rounds();
  #long = Number.NaN;
  #sum = 0;
  #count = 0;
  /** Refusals in the current round. */
  #drops = 0;
  #saturated = false;
  #slowStart = true;

  constructor(opts: Required<Omit<GradientOptions, 'name'>>) {
    this.#tolerance = opts.tolerance;
    this.#smoothing = opts.smoothing;
    this.#longWindow = opts.longWindow;
  }

  next(limit: number, sample: LimitSample, now: number): LimitStep {
    if (sample.dropped) {
      // A refusal's run time says nothing about queueing: it does not enter the averages.
      this.#drops++;
      if (!this.#rounds.closes(sample, now)) return { limit, reason: 'probe' };
      const cut = this.#dropCut(limit);
      this.#endRound(now);
      this.#slowStart = false;
      return { limit: cut, reason: 'drop' };
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
    const ratio = (this.#tolerance * this.#long) / short;
    if (ratio * NOISE < 1) {
      // Slow start ends on a drop or a clear rise only: a few noisy rounds at a limit of 1-3
      // (a handful of replies each) would otherwise end it before it got anywhere.
      if (this.#slowStart && ratio >= SLOW_START_EXIT) return { limit, reason: 'probe' };
      const gradient = Math.max(0.5, ratio);
      this.#slowStart = false;
      return { limit: limit + (limit * gradient - limit) * this.#smoothing, reason: 'latency' };
    }
    if (!saturated) return { limit, reason: 'probe' };
    const estimate = this.#slowStart ? 2 * limit : limit + Math.sqrt(limit);
    return { limit: limit + (estimate - limit) * this.#smoothing, reason: 'probe' };
  }

  /**
   * A drop halves the limit — or cuts deeper when the round says where the knee is: of the
   * limit's jobs only the share that was not refused got in, and those ran `short`/`long` times
   * slower than the baseline, so the downstream takes about limit x share x long/short (a
   * knee that fell from 64 to 16 under a limit of 64: half refused, the rest twice as slow →
   * 16). Only as good as the round is fresh: replies of jobs started before the change show
   * neither (bench/adaptive.ts saw no gain). Never below a quarter of the limit in one round.
   */
  #dropCut(limit: number): number {
    if (this.#count === 0 || Number.isNaN(this.#long)) return limit / 2;
    const share = this.#count / (this.#count + this.#drops);
    const slowdown = Math.max(
      0.5,
      Math.min(1, (this.#tolerance * this.#long) / (this.#sum / this.#count)),
    );
    return Math.max(limit / 4, Math.min(limit / 2, limit * share * slowdown));
  }

  #endRound(now: number): void {
    this.#rounds.end(now);
    this.#sum = 0;
    this.#count = 0;
    this.#drops = 0;
    this.#saturated = false;
  }
}
