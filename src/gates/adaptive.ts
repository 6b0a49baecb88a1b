/**
 * `adaptive()`: a concurrency limit that moves with the downstream's run times and refusals,
 * as TCP's congestion window does (ideas from Netflix's concurrency-limits: AIMD, Gradient2).
 */
import { argument, invalidOption, optionsObject, positiveInt } from '../internal/options.js';
import {
  type PoolKind,
  type PoolLimitMessage,
  poolLimitChannel,
} from '../observability/channels.js';
import { Aimd, type AimdOptions } from './adaptive/aimd.js';
import type { LimitAlgorithm, LimitReason, LimitSample } from './adaptive/algorithm.js';
import { Gradient, type GradientOptions } from './adaptive/gradient.js';
import { isOverload } from './adaptive/overload.js';

export type { AimdOptions } from './adaptive/aimd.js';
export type { LimitReason, LimitSample } from './adaptive/algorithm.js';
export type { GradientOptions } from './adaptive/gradient.js';
export { isOverload } from './adaptive/overload.js';

/** Options of {@link adaptive}. */
export interface AdaptiveOptions {
  /** Lowest limit, a positive integer. Required. */
  min: number;
  /** Highest limit, an integer >= `min`. Required. */
  max: number;
  /** Limit to start from, in [min, max]. Default `min`. */
  initial?: number;
  /**
   * `'gradient'` (default) or `'aimd'`, by name (defaults) or as an options object:
   * - `gradient` — { tolerance 1, smoothing 0.5, longWindow 1000 rounds }: once per round
   *   trip, compares the round's mean run time (short) with a long-term baseline (long, which
   *   follows falls a quarter of the way, clear ones at once, and rises slowly); gradient =
   *   clamp(tolerance x long / (short - band), 0.5, 1), the band being 4x the measured
   *   deviation of a round's mean (0 on a steady downstream, wide under timer jitter). At 1
   *   (within a further 5% noise band, and saturated) the limit grows by smoothing x
   *   sqrt(limit), but not on a round that mostly measured the limit before the last move;
   *   below it, it moves smoothing of the way to limit x gradient. Slow start (until the first
   *   congestion or drop) doubles it per measured round. A drop halves it, once per drop round;
   *   refusals of the jobs that were running at that drop take it on down to half of those not
   *   refused (a downstream refusing everything: to `min`).
   * - `aimd` — { backoff 0.9, tolerance 1.1, window 10000 samples }: +1 per saturated success
   *   until the first congestion (slow start), then +1 per round trip; x backoff on a drop or a
   *   success slower than tolerance x the baseline (the fastest run time, drifting up to slower
   *   ones over `window` samples).
   *
   * A round trip ends when a job started after the previous one's end settles: both decide at
   * most once per round, since jobs already running report the state before the last move.
   */
  algorithm?: 'gradient' | 'aimd' | GradientOptions | AimdOptions;
  /** Limit changes kept in {@link AdaptiveConcurrency.history}. Default 50. */
  history?: number;
  /** Clock in ms; default `performance.now`. Tests inject a virtual one. */
  now?: () => number;
}

/**
 * Feeds one finished attempt that started at `startedAt` (ms, the limit's clock) to `limit`:
 * a success, or an overload failure as a drop; other failures are left out, so fast
 * non-overload failures neither shrink the limit nor drag the run-time baseline down.
 * `running`: attempts still running. Returns the new limit when it moved. Internal.
 */
export function feedLimit(
  limit: AdaptiveConcurrency,
  startedAt: number,
  error: Error | undefined,
  now: number,
  running: number,
): number | undefined {
  const dropped = error !== undefined && isOverload(error);
  if (error !== undefined && !dropped) return undefined;
  const before = limit.limit;
  const after = limit.onSample({ rtt: now - startedAt, inflight: running + 1, dropped });
  return after === before ? undefined : after;
}

/**
 * The adaptive limit in a `concurrency` option, claimed for its user (its state is one pool's),
 * or undefined for anything else (checked as a number by the caller). Internal.
 */
export function adaptiveOf(value: unknown): AdaptiveConcurrency | undefined {
  if (!(value instanceof AdaptiveConcurrency)) return undefined;
  if (value.claimed) {
    invalidOption('concurrency', value, 'an adaptive() limit not used by another pool');
  }
  value.claimed = true;
  return value;
}

/** One move of the limit. */
export interface LimitChange {
  /** Clock reading (ms) when it moved. */
  at: number;
  from: number;
  to: number;
  /** `probe` (growing), `latency` (run times rose), `drop` (overload failure), `manual` (resize). */
  reason: LimitReason;
}

/** The limit as `stats()` reports it. */
export interface LimitStats {
  current: number;
  min: number;
  max: number;
  /** The last changes, oldest first. */
  history: LimitChange[];
}

/**
 * An adaptive limit: feed it samples, read `limit`. Pass it as `concurrency` to one {@link Pool}
 * (a value holds one pool's state: use one per pool). Always an integer within [min, max].
 * Usable alone too: feed `onSample()` from your own loop and read `limit`.
 * @example
 * const limit = adaptive({ min: 1, max: 64, now: () => clock.now });
 * limit.onSample({ rtt: 12, inflight: limit.limit, dropped: false }); // -> the new limit
 */
export class AdaptiveConcurrency {
  readonly min: number;
  readonly max: number;
  readonly #algorithm: LimitAlgorithm;
  readonly #now: () => number;
  readonly #keep: number;
  readonly #history: LimitChange[] = [];
  /** The real-valued limit: growth below 1 per sample accumulates here. */
  #exact: number;
  #limit: number;
  /** @internal Set by the pool that uses it. */
  claimed = false;
  /** The pool it sizes, as its `sluice:pool:limit` events name it (unset: used alone). */
  #owner: { name: string; kind: PoolKind } | undefined;

  /** @internal Use {@link adaptive}. */
  constructor(
    min: number,
    max: number,
    initial: number,
    algorithm: LimitAlgorithm,
    keep: number,
    now: () => number,
  ) {
    this.min = min;
    this.max = max;
    this.#algorithm = algorithm;
    this.#keep = keep;
    this.#now = now;
    this.#exact = initial;
    this.#limit = initial;
  }

  /** The current limit: an integer in [min, max]. */
  get limit(): number {
    return this.#limit;
  }

  /** Feeds one finished job; returns the (possibly new) limit. */
  onSample(sample: LimitSample): number {
    const now = this.#now();
    const step = this.#algorithm.next(this.#exact, sample, now);
    const exact = Number.isFinite(step.limit) ? step.limit : this.#exact;
    this.#exact = Math.min(this.max, Math.max(this.min, exact));
    const next = Math.floor(this.#exact);
    if (next !== this.#limit) this.#record(now, next, next > this.#limit ? 'probe' : step.reason);
    return this.#limit;
  }

  /** Sets the limit by hand (the pool's `resize()`); the algorithm goes on from there. */
  set(limit: number): void {
    if (!Number.isSafeInteger(limit) || limit < this.min || limit > this.max) {
      // resize()'s argument: a misused argument, as resize(0) is (ERR_INVALID_ARGUMENT).
      invalidOption(
        argument('concurrency'),
        limit,
        `an integer in [${this.min}, ${this.max}]`,
        true,
      );
    }
    this.#exact = limit;
    if (limit !== this.#limit) this.#record(this.#now(), limit, 'manual');
  }

  /**
   * @internal Names the pool it sizes, so its moves are published on `sluice:pool:limit`
   * (a limit used alone publishes nothing).
   */
  attach(name: string, kind: PoolKind): void {
    this.#owner = { name, kind };
  }

  /** What `stats().limit` shows. */
  stats(): LimitStats {
    return { current: this.#limit, min: this.min, max: this.max, history: [...this.#history] };
  }

  /** Changes kept, oldest first. */
  get history(): readonly LimitChange[] {
    return this.#history;
  }

  /** True when `error` means overload (counted as a drop); see {@link isOverload}. */
  isOverload(error: unknown): boolean {
    return isOverload(error);
  }

  #record(at: number, to: number, reason: LimitReason): void {
    const previous = this.#limit;
    this.#history.push({ at, from: previous, to, reason });
    if (this.#history.length > this.#keep) this.#history.shift();
    this.#limit = to;
    const owner = this.#owner;
    if (owner === undefined || !poolLimitChannel.hasSubscribers) return;
    const { min, max } = this;
    poolLimitChannel.publish({
      ...owner,
      previous,
      limit: to,
      reason,
      min,
      max,
      at,
    } satisfies PoolLimitMessage);
  }
}

/**
 * A concurrency limit that finds its own size. Pass it as a {@link Pool}'s `concurrency`: the
 * pool feeds it each job's run time and outcome and resizes when it moves. Overload failures
 * (see {@link isOverload}) are drops; other failures are ignored, so jobs failing fast for their
 * own reasons neither shrink the limit nor skew the run-time baseline.
 * @throws RangeError/TypeError naming the option when an option is invalid.
 * @example
 * const pool = new Pool(fetchPage, { concurrency: adaptive({ min: 2, max: 200 }) });
 */
export function adaptive(opts: AdaptiveOptions): AdaptiveConcurrency {
  const o =
    optionsObject<AdaptiveOptions>('adaptive', opts) ??
    invalidOption('adaptive', opts, 'an options object');
  const min = positiveInt('adaptive.min', o.min);
  const max = positiveInt('adaptive.max', o.max);
  if (max < min) invalidOption('adaptive.max', max, `an integer >= adaptive.min (${min})`, true);
  const initial = o.initial == null ? min : positiveInt('adaptive.initial', o.initial);
  if (initial < min || initial > max) {
    invalidOption('adaptive.initial', initial, `an integer in [${min}, ${max}]`, true);
  }
  const keep = o.history == null ? 50 : positiveInt('adaptive.history', o.history);
  const now = o.now ?? (() => performance.now());
  if (typeof now !== 'function') invalidOption('adaptive.now', now, 'a function');
  return new AdaptiveConcurrency(min, max, initial, algorithmOf(o.algorithm), keep, now);
}

function ratio(
  name: string,
  value: unknown,
  fallback: number,
  lo: number,
  hi: number,
  open: boolean,
): number {
  if (value == null) return fallback;
  const ok =
    typeof value === 'number' && (open ? value > lo && value < hi : value >= lo && value <= hi);
  if (!ok)
    invalidOption(
      name,
      value,
      `a number in ${open ? '(' : '['}${lo}, ${hi}${open ? ')' : ']'}`,
      true,
    );
  return value as number;
}

function smoothingOf(value: unknown): number {
  if (value == null) return 0.5;
  if (typeof value !== 'number' || !(value > 0 && value <= 1)) {
    invalidOption('adaptive.algorithm.smoothing', value, 'a number in (0, 1]', true);
  }
  return value;
}

function algorithmOf(value: AdaptiveOptions['algorithm']): LimitAlgorithm {
  const spec =
    typeof value === 'string' ? { name: value } : (value ?? { name: 'gradient' as const });
  if (typeof spec !== 'object' || spec === null) {
    invalidOption('adaptive.algorithm', value, `'gradient', 'aimd' or an options object`);
  }
  const s = spec as Partial<GradientOptions> & Partial<AimdOptions> & { name?: unknown };
  if (s.name === 'aimd') {
    return new Aimd({
      backoff: ratio('adaptive.algorithm.backoff', s.backoff, 0.9, 0, 1, true),
      tolerance: ratio(
        'adaptive.algorithm.tolerance',
        s.tolerance,
        1.1,
        1,
        Number.POSITIVE_INFINITY,
        false,
      ),
      window: s.window == null ? 10000 : positiveInt('adaptive.algorithm.window', s.window),
    });
  }
  if (s.name === 'gradient') {
    return new Gradient({
      tolerance: ratio(
        'adaptive.algorithm.tolerance',
        s.tolerance,
        1,
        1,
        Number.POSITIVE_INFINITY,
        false,
      ),
      smoothing: smoothingOf(s.smoothing),
      longWindow:
        s.longWindow == null ? 1000 : positiveInt('adaptive.algorithm.longWindow', s.longWindow),
    });
  }
  return invalidOption(
    'adaptive.algorithm',
    value,
    `'gradient', 'aimd' or an options object with name`,
  );
}
