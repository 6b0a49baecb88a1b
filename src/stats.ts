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
  /**
   * Failed attempts whose retry was scheduled (the `retry` option), counted when the backoff
   * starts: a job canceled during it still counts. Not counted in the outcomes.
   */
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
  /**
   * Time from acceptance to start, ms, over the last {@link STATS_WINDOW} timed jobs that
   * started. Every job is timed, except in a `Pool` running jobs back to back, less than
   * 10 µs apart: there one job in 16 is (see `utilization`, "Timing").
   */
  waitTime: Percentiles;
  /** Time from start to settlement, ms, over the last {@link STATS_WINDOW} timed jobs that settled. */
  runTime: Percentiles;
  /**
   * Busy slot-time over available slot-time (0..1) from the first job's start to the last
   * settlement (or now, while jobs run): 1 means every slot was always busy. Gaps with nothing
   * running count as idle; time before the first job and after the last does not. In a
   * pipeline the stage closest to 1 is the bottleneck.
   *
   * **Timing.** Reading the clock (`performance.now()`) costs 40–100 ns, up to a third of what
   * a tiny job costs a pool. A `Pool` therefore — as Go's runtime times one goroutine in 8 for
   * its scheduling latencies — times every job until it sees a burst (64 clock readings in a
   * row less than 10 µs apart per start or settlement), then one accepted job in 16, until a
   * reading comes further apart than that again. A timed
   * job's acceptance, start and settlement are read exactly; the others are counted, not
   * timed. The sample is chosen by acceptance order, not by how long a job takes, so its
   * percentiles estimate those of every job in the burst (over the last 1,024 timed jobs:
   * about the last 16,000 jobs of a burst). In a burst, busy slot-time is the timed jobs'
   * run time, each counted 16 times: an estimate whose error shrinks as
   * jobs add up; and the active period ends at the last reading (at most the last 16 jobs
   * early). With an adaptive `concurrency`, which needs every run time, a Pool times every
   * job; `runPool` stages and ThreadPool always do.
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

/** A Pool that samples its timings times one accepted job in this many (see PoolStats). */
export const SAMPLE_PERIOD = 16;

/**
 * A Pool samples its timings while its events come less than this many ms apart (10 µs: a
 * clock reading is then 0.5–1% of the time per event or more; see PoolStats, "Timing").
 */
export const SAMPLED_BELOW_MS = 0.01;

/** Readings in a row that close together before a Pool samples (a burst, not a few jobs). */
const HOT_READINGS = 64;

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

  /** Adds `value`; NaN (a job not timed) adds nothing. */
  add(value: number): void {
    if (Number.isNaN(value)) return;
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
  /**
   * The running timed jobs, each weighted by the jobs it stands for (1 when every job is timed,
   * SAMPLE_PERIOD in a sample): busy slot-time integrates this, so it only changes at readings.
   */
  #weighted = 0;
  /** Starts and settlements since the last reading (for the burst detection). */
  #events = 0;
  /** May time a sample only (a Pool's choice: see PoolStats, "Timing"). */
  readonly #sampling: boolean;
  /** 0: every job is timed; SAMPLE_PERIOD - 1: one in SAMPLE_PERIOD. */
  #mask = 0;
  #sequence = 0;
  /** Readings in a row closer than SAMPLED_BELOW_MS per event. */
  #hot = 0;

  /** @param sampling - may time only a sample of jobs in a burst (Pool; see PoolStats). */
  constructor(concurrency: number, sampling = false) {
    this.#concurrency = concurrency;
    this.#sampling = sampling;
  }

  setConcurrency(concurrency: number): void {
    this.#advance(performance.now());
    this.#concurrency = concurrency;
  }

  /**
   * Whether the job accepted next is timed — its acceptance, start and settlement read — as
   * its weight: the jobs it stands for (1 when every job is timed), or 0 (not timed). Every
   * job is timed unless this recorder samples and sees a burst (see PoolStats, "Timing").
   */
  timeNext(): number {
    return (this.#sequence++ & this.#mask) === 0 ? this.#mask + 1 : 0;
  }

  /** Whether {@link timeNext} will time the next job (without counting it). */
  get nextTimed(): boolean {
    return (this.#sequence & this.#mask) === 0;
  }

  /** A job not timed started (no reading). */
  startedUntimed(): void {
    this.#running++;
    this.#events++;
  }

  /** A job not timed settled with `outcome` (no reading). */
  settledUntimed(outcome: Outcome): void {
    this.#running--;
    this.#events++;
    this.counts[outcome]++;
  }

  /** An attempt not timed failed and will be retried (no reading). */
  retryingUntimed(): void {
    this.#running--;
    this.#events++;
    this.retried++;
  }

  /**
   * A job started at `now` (a performance.now() reading the caller already has: the clock is
   * read at most once per event, it costs ~50 ns) after waiting `waitMs` (NaN: not known);
   * `weight`: the jobs it stands for (see {@link timeNext}).
   */
  recordStart(now: number, waitMs: number, weight = 1): void {
    this.#advance(now);
    this.#running++;
    this.#weighted += weight;
    this.#events++;
    this.#wait.add(waitMs);
  }

  /** {@link recordStart} reading the clock itself; returns the start time for `settled`. */
  started(waitMs: number): number {
    const now = performance.now();
    this.recordStart(now, waitMs);
    return now;
  }

  /**
   * A job that started at `startedAt` ended with `outcome` at `now` (default: the clock now);
   * `weight` as it started with.
   */
  settled(outcome: Outcome, startedAt: number, now = performance.now(), weight = 1): void {
    this.#advance(now);
    this.#running--;
    this.#weighted -= weight;
    this.#events++;
    this.#run.add(now - startedAt);
    this.counts[outcome]++;
  }

  /** An attempt that started at `startedAt` failed at `now` and will be retried (no outcome yet). */
  retrying(startedAt: number, now: number, weight = 1): void {
    this.#advance(now);
    this.#running--;
    this.#weighted -= weight;
    this.#events++;
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

  /** Integrates busy and available slot-time up to the reading `now`. */
  #advance(now: number): void {
    const dt = Number.isNaN(this.#last) ? 0 : now - this.#last;
    this.#last = now;
    // Exact for the timed jobs (they start and settle at readings); with a sample, each stands
    // for the jobs it was chosen among.
    this.#busy += this.#weighted * dt;
    this.#capacity += this.#concurrency * dt;
    if (this.#sampling && this.#events > 0) this.#adapt(dt / this.#events);
    this.#events = 0;
  }

  /** Samples in a burst of events closer than SAMPLED_BELOW_MS; times every job otherwise. */
  #adapt(msPerEvent: number): void {
    if (msPerEvent < SAMPLED_BELOW_MS) {
      if (++this.#hot >= HOT_READINGS) this.#mask = SAMPLE_PERIOD - 1;
    } else {
      this.#hot = 0;
      this.#mask = 0;
    }
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
