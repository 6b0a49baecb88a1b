import { AbortError, TimeoutError, WorkerCrashedError, WorkerStartupError } from './errors.js';
import type { LimitStats } from './gates/adaptive.js';
import type { StuckJob, ZombieJob } from './observability/watchdog.js';

/** Latency percentiles in ms over a recent window (see {@link PoolStats}). 0 when no samples. */
export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
}

/**
 * A snapshot of a pool's counters. Settled outcomes are disjoint:
 * `succeeded + failed + timedOut + canceled + crashed` = jobs settled so far.
 */
export interface PoolStats {
  /** The current limit on jobs running at once. */
  concurrency: number;
  /**
   * With an adaptive `concurrency` only: the limit (= `concurrency`), its [min, max], and its
   * last changes (`history`, oldest first, each `{ at, from, to, reason }`; `at` on the
   * limit's clock, ms; `reason` `probe` | `latency` | `drop` | `manual`; 50 kept by default).
   */
  limit?: LimitStats;
  /** Jobs running now. */
  running: number;
  /**
   * With the `watchdog` option only: jobs running longer than its `stuckAfter` now (oldest
   * first, each `{ job, index, ageMs }`).
   */
  stuck?: StuckJob[];
  /**
   * With the `watchdog` option only: jobs whose signal aborted more than `zombieAfter` ms ago
   * while their worker still runs (oldest first, each `{ job, index, ageMs, error }`).
   */
  zombies?: ZombieJob[];
  /** Jobs accepted and waiting for a slot. */
  queued: number;
  /** Jobs accepted since the pool was created. */
  submitted: number;
  succeeded: number;
  /** Jobs whose worker threw or rejected (not timeouts, cancels or crashes). */
  failed: number;
  /** Jobs that ran past their `timeout` (`TimeoutError`). */
  timedOut: number;
  /** Jobs canceled by a signal, `abort()` or a drain deadline (`AbortError`). */
  canceled: number;
  /** Jobs lost to a dead worker thread (`WorkerCrashedError`, `WorkerStartupError`). */
  crashed: number;
  /** Failed attempts that were run again (the `retry` option); not counted in the outcomes. */
  retried: number;
  /**
   * Accepted jobs held back by a gate right now: `retry` — waiting out a retry backoff (no slot
   * held, not in `queued`); `rate` — queued jobs that a free slot could start but for the rate
   * limit; `key` — queued jobs whose key is at its `perKey` limit. All 0 without those options.
   */
  waiting: GateWaiting;
  /**
   * Keys the pool keeps state for (with the `key` option): those with queued or running jobs,
   * or with starts still inside their `perKey.rate` window. Idle keys cost nothing.
   */
  keys: number;
  /** Time from acceptance to start, ms, over the last {@link STATS_WINDOW} started jobs. */
  waitTime: Percentiles;
  /** Time from start to settlement, ms, over the last {@link STATS_WINDOW} settled jobs. */
  runTime: Percentiles;
  /**
   * Busy slot-time over available slot-time (0..1) from the first job's start to the last
   * settlement (or now, while jobs run): 1 means every slot was always busy. Gaps with nothing
   * running count as idle; time before the first job and after the last does not. In a
   * pipeline the stage closest to 1 is the bottleneck.
   */
  utilization: number;
}

/** See {@link PoolStats.waiting}. */
export interface GateWaiting {
  retry: number;
  rate: number;
  key: number;
}

/** What a gated pool adds to its snapshot. */
export interface GateSnapshot {
  waiting: GateWaiting;
  keys: number;
}

const NO_GATES: GateSnapshot = Object.freeze({
  waiting: Object.freeze({ retry: 0, rate: 0, key: 0 }),
  keys: 0,
});

/** How many recent samples the percentiles are computed over. */
export const STATS_WINDOW = 1024;

/** How a job ended, as counted by {@link PoolStats}. */
export type Outcome = 'succeeded' | 'failed' | 'timedOut' | 'canceled' | 'crashed';

/** Classifies a job's error into its {@link Outcome}. */
export function outcomeOf(error: Error | undefined): Outcome {
  if (error === undefined) return 'succeeded';
  if (error instanceof TimeoutError) return 'timedOut';
  if (error instanceof AbortError) return 'canceled';
  if (error instanceof WorkerCrashedError || error instanceof WorkerStartupError) return 'crashed';
  return 'failed';
}

/** A fixed ring of the most recent samples. */
class Window {
  readonly #samples = new Float64Array(STATS_WINDOW);
  #count = 0;

  add(value: number): void {
    this.#samples[this.#count % STATS_WINDOW] = value;
    this.#count++;
  }

  percentiles(): Percentiles {
    const n = Math.min(this.#count, STATS_WINDOW);
    if (n === 0) return { p50: 0, p90: 0, p99: 0 };
    const sorted = this.#samples.slice(0, n).sort();
    const at = (q: number) => sorted[Math.min(n - 1, Math.ceil(q * n) - 1)] as number;
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
  }
}

/**
 * Counts and timings shared by every pool kind (Pool, runPool stages, ThreadPool). Internal:
 * the public surface is {@link PoolStats}.
 */
export class StatsRecorder {
  readonly counts: Record<Outcome, number> = {
    succeeded: 0,
    failed: 0,
    timedOut: 0,
    canceled: 0,
    crashed: 0,
  };
  submitted = 0;
  retried = 0;
  readonly #wait = new Window();
  readonly #run = new Window();
  #running = 0;
  #concurrency: number;
  /** Start of the active window: the first job's start (NaN until then). */
  #last = Number.NaN;
  #busy = 0;
  #capacity = 0;

  constructor(concurrency: number) {
    this.#concurrency = concurrency;
  }

  setConcurrency(concurrency: number): void {
    this.#advance(performance.now());
    this.#concurrency = concurrency;
  }

  /**
   * A job started at `now` (a performance.now() reading the caller already has: the clock is
   * read at most once per event, it costs ~50 ns) after waiting `waitMs`.
   */
  recordStart(now: number, waitMs: number): void {
    this.#advance(now);
    this.#running++;
    this.#wait.add(waitMs);
  }

  /** {@link recordStart} reading the clock itself; returns the start time for `settled`. */
  started(waitMs: number): number {
    const now = performance.now();
    this.recordStart(now, waitMs);
    return now;
  }

  /** A job that started at `startedAt` ended with `outcome` at `now` (default: the clock now). */
  settled(outcome: Outcome, startedAt: number, now = performance.now()): void {
    this.#advance(now);
    this.#running--;
    this.#run.add(now - startedAt);
    this.counts[outcome]++;
  }

  /** An attempt that started at `startedAt` failed at `now` and will be retried (no outcome yet). */
  retrying(startedAt: number, now: number): void {
    this.#advance(now);
    this.#running--;
    this.#run.add(now - startedAt);
    this.retried++;
  }

  /** A job that never started (canceled while queued) ended with `outcome`. */
  settledUnstarted(outcome: Outcome): void {
    this.counts[outcome]++;
  }

  snapshot(
    concurrency: number,
    running: number,
    queued: number,
    gates: GateSnapshot = NO_GATES,
  ): PoolStats {
    // Idle time after the last settlement is not counted until the next start.
    if (this.#running > 0) this.#advance(performance.now());
    return {
      concurrency,
      running,
      queued,
      submitted: this.submitted,
      ...this.counts,
      retried: this.retried,
      waiting: { ...gates.waiting },
      keys: gates.keys,
      waitTime: this.#wait.percentiles(),
      runTime: this.#run.percentiles(),
      utilization: this.#capacity > 0 ? Math.min(1, this.#busy / this.#capacity) : 0,
    };
  }

  #advance(now: number): void {
    const dt = Number.isNaN(this.#last) ? 0 : now - this.#last;
    this.#last = now;
    this.#busy += this.#running * dt;
    this.#capacity += this.#concurrency * dt;
  }
}

/**
 * A recorder kept for the life of the process, with doubles in its time fields as in real use:
 * it keeps StatsRecorder's hidden class alive so a full GC after the last pool dies does not
 * discard the optimised code of every pool kind (see `pinnedForOptimisedCode` in
 * internal/pull-engine.ts). Exported only so that the module keeps it; not API.
 */
export const pinnedRecorder: StatsRecorder = pinRecorder();

function pinRecorder(): StatsRecorder {
  const recorder = new StatsRecorder(1);
  const startedAt = recorder.started(0.5);
  recorder.settled('succeeded', startedAt - 0.5);
  return recorder;
}
