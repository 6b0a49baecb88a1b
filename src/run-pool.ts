import { type AdaptiveConcurrency, adaptiveOf } from './gates/adaptive.js';
import { type GateOptions, gateOptions } from './gates/gate-options.js';
import { PriorityQueue } from './gates/priority-queue.js';
import type { WorkerFunction } from './internal/job-run.js';
import {
  argument,
  fn,
  iterableArgument,
  nonEmptyString,
  nonNegativeInt,
  optionalBoolean,
  optionalDuration,
  optionalSignal,
  optionsObject,
  positiveInt,
} from './internal/options.js';
import type { EngineGates } from './internal/pull-engine.js';
import { PullEngine, rateOnly } from './internal/pull-engine.js';
import { publishingHooks } from './observability/publisher.js';
import { Watchdog, type WatchdogOptions, watchdogOptions } from './observability/watchdog.js';
import type { Result } from './result.js';
import { guardedHooks, HOOKS, type JobHooks } from './scheduler/hooks.js';
import { leanEngine } from './scheduler/lean-engine.js';

/**
 * Options of {@link runPool}: the pool's own, and the gates (`retry`, `rate`, `key`, `perKey`,
 * `priority`), with the same meaning as on `Pool`.
 */
export interface RunPoolOptions<J = unknown> extends GateOptions<J> {
  /**
   * Workers running at once: a positive integer, or an {@link adaptive} limit moved by each
   * attempt's run time and outcome (as on `Pool`). Required.
   */
  concurrency: number | AdaptiveConcurrency;
  /**
   * Finished results held for a slow consumer, beyond the running jobs. Default `concurrency`
   * (`max` when adaptive),
   * so no worker waits to hand over its result while the consumer keeps up. `Infinity` unbounds.
   */
  buffer?: number;
  /**
   * Yield results in source order (default false: completion order). Starts are never held
   * back: a fast job after a slow one runs at once and its result waits, within `buffer`.
   */
  ordered?: boolean;
  /** Per-job limit in ms from the job's start; expiry aborts the worker's signal and the job
   * yields a `TimeoutError`. Default: none. */
  timeout?: number;
  /** Aborting it stops pulling, aborts running workers, and ends the iteration once every
   * pulled job has yielded its result (canceled ones as `AbortError`) — including a value that
   * a pull pending at the abort brings afterwards, which settles as canceled without running. */
  signal?: AbortSignal;
  /**
   * The job's priority (higher starts first, FIFO within one). With `retry`, `key` or
   * `priority`, jobs are pulled ahead of free slots, up to `concurrency + buffer` ahead of the
   * consumer as always, and the gates pick among the pulled ones: that window is how far priority
   * and per-key turns see. A lone `rate` pulls as without gates: one job when a slot is free,
   * which waits for its permit (nothing more is pulled meanwhile). A lone `rate` (with no
   * `timeout`, adaptive limit or `watchdog` either) runs on the same engine as no gate at all: it
   * adds only the permit to each start.
   */
  priority?: (job: J) => number;
  /**
   * Names it in its `diagnostics_channel` events (README "Events"): a non-empty string.
   * Default `'run-pool'`.
   */
  name?: string;
  /** Opt-in stuck-job watchdog, as on `Pool` (README "Watchdog"). runPool has no `stats()`: use the events. */
  watchdog?: WatchdogOptions;
}

/**
 * Runs `worker` over `jobs` with at most `concurrency` running at once, yielding one
 * {@link Result} per job — Go's canonical worker pool (jobs channel, N workers, results channel)
 * as one async iterable.
 *
 * - Lazy: the source is pulled only when a slot is free, and at most `concurrency + buffer` jobs
 *   ahead of what the consumer has taken. A slow consumer slows the pulling.
 * - Errors are values: a job that throws, rejects or throws a non-Error yields
 *   `{ ok: false, error }` and the others keep running. Nothing becomes an unhandled rejection.
 * - Breaking out of `for await` stops pulling, calls the source's `return()`, and aborts the
 *   signals of running workers (their results are dropped).
 * - If the source itself throws, running jobs still yield their results, then iteration throws
 *   the source's error.
 *
 * @throws TypeError/RangeError (synchronously) naming the option when an option is invalid
 *   (`code: 'ERR_INVALID_OPTION'`); TypeError `ERR_INVALID_ARGUMENT` when `jobs` is not iterable.
 * @example
 * ```ts
 * for await (const r of runPool(urls, (url, { signal }) => fetch(url, { signal }), { concurrency: 8 })) {
 *   if (!r.ok) console.error(r.job, r.error);
 * }
 * ```
 */
export function runPool<J, R>(
  jobs: Iterable<J> | AsyncIterable<J>,
  worker: WorkerFunction<J, R>,
  opts: RunPoolOptions<J>,
): AsyncIterableIterator<Result<J, R>> {
  iterableArgument('jobs', jobs);
  optionsObject(argument('opts'), opts);
  const adaptive = adaptiveOf(opts?.concurrency);
  const concurrency = adaptive?.limit ?? positiveInt('concurrency', opts?.concurrency);
  const name = opts.name == null ? 'run-pool' : nonEmptyString('name', opts.name);
  const limits = watchdogOptions(opts.watchdog);
  const watchdog = limits && new Watchdog(limits, name, 'run-pool');
  const hooks = guardedHooks((opts as { [HOOKS]?: JobHooks<J> })[HOOKS]);
  adaptive?.attach(name, 'run-pool');
  const run = fn<WorkerFunction<J, R>>(argument('worker'), worker);
  const buffer = nonNegativeInt('buffer', opts.buffer ?? adaptive?.max ?? concurrency);
  const ordered = optionalBoolean('ordered', opts.ordered) ?? false;
  const timeout = optionalDuration('timeout', opts.timeout);
  const signal = optionalSignal('signal', opts.signal);
  const gates = engineGates(opts);
  const events = { name, kind: 'run-pool' } as const;
  if (
    adaptive === undefined &&
    timeout === undefined &&
    (gates === undefined || rateOnly(gates)) &&
    watchdog === undefined &&
    hooks === undefined
  ) {
    // Nothing that needs the full engine (hooks of its own would want every job's events; any
    // gate but a lone rate, its queue): the lean engine, which decides per job only what the full
    // one decides per job (events; a lone rate's permit).
    const publishing = publishingHooks<J>(name, 'run-pool', undefined);
    return leanEngine(jobs, run, {
      concurrency,
      buffer,
      ordered,
      signal,
      hooks: publishing,
      events,
      rate: gates?.rate,
    });
  }
  return new PullEngine(jobs, run, {
    concurrency,
    adaptive,
    buffer,
    ordered,
    timeout,
    signal,
    stats: undefined,
    gates,
    hooks: publishingHooks(
      name,
      'run-pool',
      watchdog === undefined ? hooks : watchdog.hooks(hooks),
    ),
    watchdog,
    events,
  });
}

/** The gates of a runPool or a stage, or undefined when no gate option is set (the fast path). */
export function engineGates<J>(
  opts: GateOptions<J> & { priority?: (job: J) => number },
  name = '',
): EngineGates<J> | undefined {
  const { retry, rate, key, perKey, priority } = opts;
  if (retry == null && rate == null && key == null && perKey == null && priority == null) {
    return undefined;
  }
  const gates = gateOptions(opts, name);
  if (priority == null) return { ...gates, priority: undefined };
  const byPriority = fn<(job: J) => number>(`${name}priority`, priority);
  // A keyed queue orders each key's jobs by priority already; otherwise a heap replaces FIFO.
  const newQueue = gates.key === undefined ? () => new PriorityQueue() : gates.newQueue;
  return { ...gates, newQueue, priority: byPriority } as EngineGates<J>;
}
