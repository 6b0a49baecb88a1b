/**
 * What an adaptive-limit algorithm sees and returns. Internal.
 */

/** One finished job, as an algorithm sees it. */
export interface LimitSample {
  /** The job's run time, ms (start to settlement). */
  rtt: number;
  /** Jobs running when it settled, itself included. */
  inflight: number;
  /** True when it failed from overload (see `isOverload`): the downstream refused or timed out. */
  dropped: boolean;
}

/** Why the limit moved (kept in the history). */
export type LimitReason = 'probe' | 'latency' | 'drop' | 'manual';

/** An algorithm's verdict: a real-valued limit (the caller rounds and clamps) and why. */
export interface LimitStep {
  limit: number;
  reason: LimitReason;
}

/** A limit algorithm: state plus a step per sample. `now` is the injected clock's reading, ms. */
export interface LimitAlgorithm {
  next(limit: number, sample: LimitSample, now: number): LimitStep;
}

/**
 * Rounds of one round trip, as TCP counts them: a round ends when a job started after the
 * previous round's end comes back. Deciding once per round matters: jobs already running when
 * the limit moved report the old state, and acting on each of them would overshoot (a cut per
 * sample crashes a limit of 500 to `min` on one burst of slow replies).
 */
export class Rounds {
  #endedAt = Number.NEGATIVE_INFINITY;

  /** True when `sample` closes the current round (its job started after the last one ended). */
  closes(sample: LimitSample, now: number): boolean {
    return now - sample.rtt >= this.#endedAt;
  }

  end(now: number): void {
    this.#endedAt = now;
  }
}
