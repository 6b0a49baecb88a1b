/**
 * The stuck-job watchdog: one module for every pool kind. It keeps the jobs running now (fed by
 * the core's lifecycle hooks for Pool, runPool and stages; by the thread scheduler for a
 * ThreadPool, whose truth about "running" lives there) and the "zombies" — jobs whose signal
 * aborted (timeout, cancel, abort) while their worker had not returned. One unref'd timer per
 * pool, armed only while something is watched, reports each job once past its threshold on
 * `diagnostics_channel`; `stats()` lists them live. Off (no `watchdog` option): nothing is
 * created and no job pays anything.
 *
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import { invalidOption, optionalDuration, optionsObject } from '../internal/options.js';
import type { CoreHooks } from '../scheduler/hooks.js';
import type { JobEventBase, PoolKind } from './channels.js';

/**
 * The `watchdog` option of Pool, ThreadPool, runPool and pipeline stages.
 *
 * @example
 * ```ts
 * const pool = new Pool(work, { concurrency: 8, timeout: 30_000,
 *   watchdog: { stuckAfter: 60_000, zombieAfter: 5_000 } });
 * ```
 */
export interface WatchdogOptions {
  /** Report a job still running this many ms after its start (ms, > 0). Required. */
  stuckAfter: number;
  /**
   * Report a job whose signal aborted (timeout, cancel, abort, drain deadline) and whose worker
   * has still not returned this many ms later (ms, > 0). Default: `stuckAfter`.
   */
  zombieAfter?: number;
}

/** A job running for longer than `stuckAfter`, as listed by `stats().stuck`. */
export interface StuckJob<J = unknown> {
  /** The job (a stage's input value). */
  readonly job: J;
  /** Its index in its pool (as in its `Result`). */
  readonly index: number;
  /** ms since it started (its current attempt; for a ThreadPool, since hand-over to its thread). */
  readonly ageMs: number;
}

/** A job whose signal aborted while its worker ran on, as listed by `stats().zombies`. */
export interface ZombieJob<J = unknown> {
  readonly job: J;
  readonly index: number;
  /** ms since its signal aborted (the job settled then; its worker has not returned since). */
  readonly ageMs: number;
  /** What the job settled with: a `TimeoutError` or an `AbortError`. */
  readonly error: Error;
}

/** On {@link SLUICE_JOB_STUCK}: a job has been running for `ageMs` ≥ `stuckAfter` (once per attempt). */
export interface JobStuckMessage<J = unknown> extends JobEventBase<J> {
  readonly ageMs: number;
  readonly stuckAfter: number;
}

/** On {@link SLUICE_JOB_ZOMBIE}: a job's worker ran on `ageMs` ≥ `zombieAfter` after its signal aborted (once). */
export interface JobZombieMessage<J = unknown> extends JobEventBase<J> {
  readonly ageMs: number;
  readonly zombieAfter: number;
  readonly error: Error;
}

/** Channel name: jobs running past the `watchdog.stuckAfter` of their pool, {@link JobStuckMessage}. */
export const SLUICE_JOB_STUCK = 'sluice:job:stuck';
/** Channel name: workers running on past `watchdog.zombieAfter` after their job's signal aborted, {@link JobZombieMessage}. */
export const SLUICE_JOB_ZOMBIE = 'sluice:job:zombie';

const stuckChannel = diagnostics.channel(SLUICE_JOB_STUCK);
const zombieChannel = diagnostics.channel(SLUICE_JOB_ZOMBIE);

/** What `stats()` adds when the watchdog is on. */
export interface WatchdogStats<J = unknown> {
  /** Jobs running longer than `stuckAfter` now, oldest first. */
  stuck: StuckJob<J>[];
  /** Zombies older than `zombieAfter` now, oldest first. */
  zombies: ZombieJob<J>[];
}

interface Watched {
  readonly job: unknown;
  readonly index: number;
  /** performance.now() at start (running) or at the abort (zombie). */
  readonly since: number;
  readonly error: Error | undefined;
  reported: boolean;
}

/** Validated `watchdog` option. */
interface Thresholds {
  readonly stuckAfter: number;
  readonly zombieAfter: number;
}

/**
 * Reads the `watchdog` option (`name` prefixes a stage's option names).
 * @throws TypeError/RangeError `ERR_INVALID_OPTION` naming the option.
 */
export function watchdogOptions(value: unknown, name = ''): Thresholds | undefined {
  const opts = optionsObject<WatchdogOptions>(`${name}watchdog`, value);
  if (opts === undefined) return undefined;
  const stuckAfter = optionalDuration(`${name}watchdog.stuckAfter`, opts.stuckAfter);
  if (stuckAfter === undefined) {
    invalidOption(`${name}watchdog.stuckAfter`, opts.stuckAfter, 'a positive number of ms');
  }
  const zombieAfter =
    optionalDuration(`${name}watchdog.zombieAfter`, opts.zombieAfter) ?? stuckAfter;
  return { stuckAfter, zombieAfter };
}

/** A pool's watchdog. Internal; pools create one when given the `watchdog` option. */
export class Watchdog {
  readonly #name: string;
  readonly #kind: PoolKind;
  readonly #limits: Thresholds;
  /** Running jobs by index (one attempt at a time per index). */
  readonly #running = new Map<number, Watched>();
  /** Abandoned workers by their attempt (a retried job may leave several behind). */
  readonly #zombies = new Map<object, Watched>();
  readonly #period: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(limits: Thresholds, name: string, kind: PoolKind) {
    this.#limits = limits;
    this.#name = name;
    this.#kind = kind;
    // A quarter of the shorter threshold: a job is reported at most 25% late.
    this.#period = Math.max(1, Math.min(limits.stuckAfter, limits.zombieAfter) / 4);
  }

  /** An attempt of `job` started (now, or at `at`). */
  started(job: unknown, index: number, at = performance.now()): void {
    this.#running.set(index, { job, index, since: at, error: undefined, reported: false });
    this.#arm();
  }

  /** The running attempt of job `index` ended (settled, failed for a retry, or taken back). */
  ended(index: number): void {
    this.#running.delete(index);
  }

  /** `attempt` settled as `error` by its signal while its worker still runs. */
  abandoned(attempt: object, job: unknown, index: number, error: Error): void {
    this.#zombies.set(attempt, {
      job,
      index,
      since: performance.now(),
      error,
      reported: false,
    });
    this.#arm();
  }

  /** The worker of an abandoned `attempt` returned at last (or its thread was terminated). */
  returned(attempt: object): void {
    this.#zombies.delete(attempt);
  }

  /**
   * Hooks that feed this watchdog, then call `inner`. `view` maps the core's job to the one
   * reported (a stage's envelope to its value).
   */
  hooks<J>(inner: CoreHooks<J> | undefined, view?: (job: J) => unknown): CoreHooks<J> {
    const shown = view ?? ((job: J): unknown => job);
    return {
      accepted: (job, index) => {
        inner?.accepted(job, index);
        return true; // every job's started/settled is wanted
      },
      started: (job, index, attempt) => {
        this.started(shown(job), index);
        return inner?.started?.(job, index, attempt);
      },
      retried: (job, index, attempt, error, delayMs) => {
        this.ended(index);
        inner?.retried?.(job, index, attempt, error, delayMs);
      },
      settled: (job, index, error) => {
        this.ended(index);
        inner?.settled?.(job, index, error);
      },
    };
  }

  /** The jobs past their thresholds now (what `stats()` shows). */
  snapshot(now = performance.now()): WatchdogStats {
    const { stuckAfter, zombieAfter } = this.#limits;
    const stuck: StuckJob[] = [];
    for (const w of this.#running.values()) {
      const ageMs = now - w.since;
      if (ageMs >= stuckAfter) stuck.push({ job: w.job, index: w.index, ageMs });
    }
    const zombies: ZombieJob[] = [];
    for (const w of this.#zombies.values()) {
      const ageMs = now - w.since;
      if (ageMs >= zombieAfter) {
        zombies.push({ job: w.job, index: w.index, ageMs, error: w.error as Error });
      }
    }
    stuck.sort((a, b) => b.ageMs - a.ageMs);
    zombies.sort((a, b) => b.ageMs - a.ageMs);
    return { stuck, zombies };
  }

  /** Stops the timer (the pool ended); later jobs would arm it again. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#tick(), this.#period);
    // A watchdog never keeps the process alive.
    this.#timer.unref();
  }

  /** Reports what crossed a threshold since the last tick; disarms when nothing is watched. */
  #tick(): void {
    if (this.#running.size === 0 && this.#zombies.size === 0) {
      this.stop();
      return;
    }
    const now = performance.now();
    const { stuckAfter, zombieAfter } = this.#limits;
    const base = { name: this.#name, kind: this.#kind };
    for (const w of this.#running.values()) {
      const ageMs = now - w.since;
      if (w.reported || ageMs < stuckAfter) continue;
      w.reported = true;
      if (stuckChannel.hasSubscribers) {
        stuckChannel.publish({
          ...base,
          index: w.index,
          job: w.job,
          ageMs,
          stuckAfter,
        } satisfies JobStuckMessage);
      }
    }
    for (const w of this.#zombies.values()) {
      const ageMs = now - w.since;
      if (w.reported || ageMs < zombieAfter) continue;
      w.reported = true;
      if (zombieChannel.hasSubscribers) {
        zombieChannel.publish({
          ...base,
          index: w.index,
          job: w.job,
          ageMs,
          zombieAfter,
          error: w.error as Error,
        } satisfies JobZombieMessage);
      }
    }
  }
}
