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
   * settles near tolerance x the downstream's knee). A noise band on top (5%, plus four times
   * the measured deviation of a round's mean) keeps growing through the wobble of real run
   * times (see NOISE and SPREAD).
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
 * baseline low in the noise, growth would otherwise wait for a quick round. SPREAD widens it
 * by the noise measured.
 */
const NOISE = 1.05;

/**
 * Deviations of a round's mean tolerated on top of NOISE (only the rise beyond them counts).
 * Timer jitter on ms-scale jobs (a 5 ms sleep settling at 4-7 ms) moves a round's mean by far
 * more than 5%, most at small limits, where a round holds few replies: with the band fixed,
 * nearly every round read as congestion and a downstream without a knee held the limit at
 * `min`. The deviation is the smaller of two estimates, each blind where the other is not:
 * - between rounds: the mean |difference| of consecutive round means. It sees the noise as it
 *   reaches the mean, correlated jitter included, but also the limit's own probing near a
 *   knee (a round 3% slower after each sqrt step): alone, that widened the band and the limit
 *   climbed 10-20% past the knee on the simulated downstream;
 * - within rounds: the run times' standard deviation / sqrt(min(replies, ROUND_FLOOR)). Near
 *   a knee the replies of one round are alike (all queued behind the same limit), so it stays
 *   near 0 there; it does not shrink with more replies beyond ROUND_FLOOR because jitter is
 *   shared (timers firing in the same tick), so a mean of 64 is not 8x steadier than one.
 * A noise-free downstream keeps both at 0: a fixed 5% band, as before. Gradient2 (Netflix)
 * instead tolerates a fixed 1.5x the long-term average, which lets the limit sit well past a
 * knee on a quiet downstream; this band is only as wide as the noise measured. 4 deviations,
 * measured on the simulated downstream with min 2, max 64 and no knee: at 2, jobs of
 * 2 ms ± 1 ms (uniform) held the limit at ~2; at 3, 1 ms ± 0.9 ms did; 4 holds 62-64 on both.
 * The cost is a knee found later under heavy jitter: with 5 ms ± 1.5 ms and a knee at 16,
 * the limit averages ~26 (with a 5% band it sat at `min`, the knee unseen in the noise); with
 * 100 ms ± 1 ms, 17.4 (16.6 before).
 */
const SPREAD = 4;

/** Replies beyond which a round's mean is not taken as steadier (see SPREAD). */
const ROUND_FLOOR = 4;

/** Weight of each round in the deviation estimates (~8 rounds). */
const DEV_GAIN = 1 / 8;

/**
 * Weight of a quicker round in the baseline. The single quickest round of many noisy ones lies
 * several deviations under a typical one (and comes at the smallest, noisiest limits), so with
 * the baseline there every round read as a rise. Following quicker rounds by 1/4 (degradations
 * only over `longWindow`) sets it at a low quantile instead; an improvement beyond the band is
 * followed at once. Measured on the simulated downstream with no knee, max 64: following at
 * once, 1 ms ± 0.9 ms jobs averaged 15-34; 1/4, 62-64; 1/16 as well, but 2 ms ± 1 ms jobs
 * with a knee at 16 averaged 26-27 rather than 25-26.5.
 */
const FOLLOW_GAIN = 1 / 4;

/** In slow start, rounds slower than this x tolerance x long end it (milder ones pause it). */
const SLOW_START_EXIT = 0.8;

/**
 * Mild rises in a row (measured rounds above the noise band) that end slow start. One or two
 * can be noise at small limits, where a round's replies share the same few timer ticks: on the
 * real server of bench/adaptive.ts, ending it on the second stopped it at 16 for a knee of 64.
 */
const PAUSE_ROUNDS = 3;

const ewma = (average: number, value: number, window: number): number =>
  Number.isNaN(average) ? value : average + (value - average) * (2 / (window + 1));

/**
 * Once per round: gradient = clamp(tolerance x long / (short - band), 0.5, 1) (see SPREAD).
 * The estimate is limit x gradient when congested (gradient < 1); when not (and saturated),
 * limit + sqrt(limit).
 * The limit moves `smoothing` of the way to the estimate (a round's mean also holds replies of
 * jobs started before the last move: moving all the way would count that congestion twice).
 * The round after a move measures the limit before it, mostly: it may shrink the limit, never
 * grow it, so growth waits for a round run at the current limit instead of stacking on stale
 * good news (at a knee of 16, growth a round late swung the limit 15-22 on the real server of
 * bench/adaptive.ts, and p99 with it). Until the first congestion or drop, slow start doubles
 * the limit per measured round (see {@link Gradient.#slowStartStep}). Drops have rounds of
 * their own: the first refusal of one halves the limit, and the refusals of the jobs that were
 * running at it cut further, to half of those that got in (see {@link Gradient.#cohortCut}).
 */
export class Gradient implements LimitAlgorithm {
  readonly #tolerance: number;
  readonly #smoothing: number;
  readonly #longWindow: number;
  readonly #rounds = new Rounds();
  /**
   * Drops count in rounds of their own, from one drop cut to the next: a refusal takes as long
   * as it takes (often longer than a reply), so the job refused was nearly always started before
   * the last latency round ended — counted against those rounds, the first refusals after the
   * downstream's capacity fell would be ignored while the latency cuts took half-steps.
   */
  readonly #dropRounds = new Rounds();
  #long = Number.NaN;
  /** Sum of this round's squared run times (for the deviation within rounds). */
  #sumSq = 0;
  /** Smoothed variance of the run times within a round. */
  #within = 0;
  /** Smoothed |difference| of consecutive round means, and the last round's mean. */
  #between = 0;
  #lastShort = Number.NaN;
  /** The deviation of a round's mean, SPREAD of which is tolerated (see SPREAD). */
  #dev = 0;
  #sum = 0;
  #count = 0;
  #saturated = false;
  #slowStart = true;
  /** The jobs running when the last drop cut came, and how many of them were refused. */
  #cohort: { size: number; refused: number } | undefined;
  /**
   * Set by every move: the next round is mostly replies of jobs started before it, so it
   * measures the old limit. It feeds the baseline and may shrink the limit; it never grows it.
   */
  #stale = false;
  /** Measured rounds of slow start in a row that were mild rises (see #slowStartStep). */
  #paused = 0;

  constructor(opts: Required<Omit<GradientOptions, 'name'>>) {
    this.#tolerance = opts.tolerance;
    this.#smoothing = opts.smoothing;
    this.#longWindow = opts.longWindow;
  }

  next(limit: number, sample: LimitSample, now: number): LimitStep {
    if (sample.dropped) {
      // A refusal's run time says nothing about queueing: it does not enter the averages.
      if (this.#dropRounds.closes(sample, now)) return this.#dropCut(limit, sample, now);
      return { limit: this.#cohortCut(limit), reason: 'drop' };
    }
    this.#sum += sample.rtt;
    this.#sumSq += sample.rtt * sample.rtt;
    this.#count++;
    if (sample.inflight * 2 >= limit) this.#saturated = true;
    if (!this.#rounds.closes(sample, now)) return { limit, reason: 'probe' };
    const short = this.#sum / this.#count;
    const variance = Math.max(0, this.#sumSq / this.#count - short * short);
    const count = this.#count;
    const saturated = this.#saturated;
    const stale = this.#stale;
    this.#endRound(now);
    this.#updateBaseline(short);
    // The rise within the spread of recent rounds is noise: only the excess counts. The spread
    // is the one measured before this round, so a sudden rise is not hidden by itself.
    const band = SPREAD * this.#dev;
    const expected = this.#tolerance * this.#long;
    const ratio = expected / Math.max(expected, short - band);
    this.#measureSpread(short, variance, count);
    if (this.#slowStart) return this.#slowStartStep(limit, ratio, saturated, stale);
    if (ratio * NOISE < 1) {
      const gradient = Math.max(0.5, ratio);
      this.#stale = true;
      return { limit: limit + (limit * gradient - limit) * this.#smoothing, reason: 'latency' };
    }
    if (!saturated || stale) return { limit, reason: 'probe' };
    this.#stale = true;
    return { limit: limit + Math.sqrt(limit) * this.#smoothing, reason: 'probe' };
  }

  #measureSpread(short: number, variance: number, count: number): void {
    this.#within += (variance - this.#within) * DEV_GAIN;
    if (!Number.isNaN(this.#lastShort)) {
      this.#between += (Math.abs(short - this.#lastShort) - this.#between) * DEV_GAIN;
    }
    this.#lastShort = short;
    this.#dev = Math.min(this.#between, Math.sqrt(this.#within / Math.min(count, ROUND_FLOOR)));
  }

  /**
   * The baseline follows degradations slowly, so a load that stays high does not become the
   * new normal, and improvements by FOLLOW_GAIN, but never stays more than the band above a
   * round: a clear improvement (any, on a noise-free downstream) is followed at once.
   */
  #updateBaseline(short: number): void {
    const long = this.#long;
    if (Number.isNaN(long) || short >= long) {
      this.#long = ewma(long, short, this.#longWindow);
      return;
    }
    this.#long = Math.min(long + (short - long) * FOLLOW_GAIN, short + SPREAD * this.#dev);
  }

  /**
   * Slow start, as TCP's: the limit doubles per measured round (a stale one decides nothing,
   * so ~x2 per two round trips: from 1 to a knee of 64 in about 12 rounds), until a drop or a
   * clearly slow round; then it goes to limit x gradient in one step (not `smoothing` of the
   * way): that round ran at this limit alone, so the gradient says how far above the knee it is.
   * A milder rise (above the noise band, under the exit threshold) only pauses it: a noisy
   * round at a small limit would otherwise end it before it got anywhere; PAUSE_ROUNDS mild
   * rises in a row end it.
   */
  #slowStartStep(limit: number, ratio: number, saturated: boolean, stale: boolean): LimitStep {
    if (stale) return { limit, reason: 'probe' };
    const slow = ratio * NOISE < 1;
    // A mild rise pauses growth; PAUSE_ROUNDS in a row end slow start as a clear one does
    // (else a limit up to 1/SLOW_START_EXIT above the knee could stay paused for good).
    this.#paused = slow ? this.#paused + 1 : 0;
    if (ratio < SLOW_START_EXIT || this.#paused >= PAUSE_ROUNDS) {
      this.#slowStart = false;
      this.#stale = true;
      return { limit: limit * Math.max(0.5, ratio), reason: 'latency' };
    }
    if (slow || !saturated) return { limit, reason: 'probe' };
    this.#stale = true;
    return { limit: 2 * limit, reason: 'probe' };
  }

  /**
   * A refusal of a job started after the last drop cut: halves the limit (or the jobs running,
   * when fewer: TCP halves its flight, not its window), once per drop round, and opens a
   * cohort: the jobs running at that moment (`sample.inflight`, all started before the cut),
   * whose refusals come back over the next run time of a refusal (see {@link #cohortCut}).
   */
  #dropCut(limit: number, sample: LimitSample, now: number): LimitStep {
    this.#dropRounds.end(now);
    this.#endRound(now);
    this.#slowStart = false;
    this.#stale = true;
    this.#cohort = { size: Math.max(1, sample.inflight), refused: 1 };
    return { limit: Math.min(limit / 2, this.#cohort.size / 2), reason: 'drop' };
  }

  /**
   * A refusal of a job started before the last drop cut: the cut answered it already, but the
   * count says where the knee is. Of the `size` jobs running at the cut, `refused` were turned
   * away, so the downstream held at most size - refused of them: the limit goes to half that
   * (the cut's halving, applied to what got in rather than to what was sent). A downstream
   * refusing everything thus takes the limit to `min` in one round trip, from where it grows
   * back by sqrt steps. The cohort closes with the first latency round after the cut (the
   * jobs started after it are back); a refusal of an older job is then not counted.
   * Without this, when capacity halves (a 503 taking as long as a reply), the second halving
   * waits for a job started after the first cut to come back: a round in which the limit
   * still sends twice what the downstream takes, each reply of it queued (bench/adaptive.ts:
   * 64 → 32 → 16 in ~250 ms instead of ~1 s). On the simulated downstream from a `max` start
   * it also lands on the knee at once, before a baseline is learnt above it.
   */
  #cohortCut(limit: number): number {
    const c = this.#cohort;
    if (c === undefined) return limit;
    c.refused++;
    return Math.min(limit, (c.size - c.refused) / 2);
  }

  #endRound(now: number): void {
    this.#rounds.end(now);
    this.#sum = 0;
    this.#sumSq = 0;
    this.#count = 0;
    this.#saturated = false;
    this.#cohort = undefined;
    this.#stale = false;
  }
}
