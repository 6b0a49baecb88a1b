/**
 * Lifecycle hooks: the one place where every job's accepted / started / retried / settled event
 * is emitted, for every pool kind (Pool and ThreadPool through Pool, runPool and stages through
 * the pull engine, consume() through its Pool). Observability (events, metrics, tracing) attaches
 * here. Internal for now: pools take them through the {@link HOOKS} option key.
 *
 * Every hook is called synchronously at the event, and must not throw (a throwing hook is
 * reported once on `process.emitWarning` and dropped, so the job's settlement is never lost).
 *
 * @module
 */

/** A job's lifecycle, as the core sees it. `index` identifies the job within its pool. */
export interface JobHooks<J = unknown> {
  /** Accepted into the pool (submitted, or pulled from a runPool/stage source). */
  accepted?(job: J, index: number): void;
  /** An attempt started on a slot (`attempt` from 1), after waiting `waitMs` since acceptance. */
  started?(job: J, index: number, attempt: number): void;
  /** An attempt failed with `error` and will run again after `delayMs`. */
  retried?(job: J, index: number, attempt: number, error: Error, delayMs: number): void;
  /** The job settled for good: `error` undefined means it succeeded. */
  settled?(job: J, index: number, error: Error | undefined): void;
}

/**
 * Runs an attempt's worker call (`fn(...args)`) inside whatever scope the hooks want (the events
 * publisher: the job's `sluice:job` start stores, in the async context the job was accepted in),
 * returning what `fn` returns. Only the synchronous call is wrapped: the pool's own callbacks on
 * the worker's promise stay outside, so they never run in one job's scope.
 */
export type AroundWorker = <A extends unknown[], T>(fn: (...args: A) => T, ...args: A) => T;

/**
 * The hooks as pools call them: `accepted` returns true when the job's later events are wanted,
 * and a pool calls started/retried/settled only for such jobs — so an unobserved job costs one
 * call (the events publisher returns false while nobody listens). `started` may return an
 * {@link AroundWorker} through which the pool then calls that attempt's worker.
 */
export interface CoreHooks<J = unknown> extends Omit<JobHooks<J>, 'accepted' | 'started'> {
  accepted(job: J, index: number): boolean;
  started?(job: J, index: number, attempt: number): AroundWorker | undefined;
}

/** The option key under which a pool takes its hooks (a symbol: not part of the public options). */
export const HOOKS: unique symbol = Symbol('sluice.hooks');

/** Wraps `hooks` so that a throwing hook is dropped with one warning instead of breaking a job. */
export function guardedHooks<J>(hooks: JobHooks<J> | undefined): CoreHooks<J> | undefined {
  if (hooks === undefined) return undefined;
  // Hooks given to a pool want every job's events.
  const guarded: CoreHooks<J> = { accepted: () => true };
  for (const name of ['accepted', 'started', 'retried', 'settled'] as const) {
    const hook = hooks[name] as ((...args: unknown[]) => void) | undefined;
    if (typeof hook !== 'function') continue;
    let broken = false;
    (guarded as unknown as Record<string, (...args: unknown[]) => unknown>)[name] = (...args) => {
      if (broken) return true;
      try {
        hook.apply(hooks, args);
      } catch (error) {
        broken = true;
        process.emitWarning(`sluice: the ${name} hook threw and was dropped: ${String(error)}`);
      }
      return true;
    };
  }
  // A user's `started` returns nothing: wrap it so the pool sees no AroundWorker.
  const started = guarded.started as ((...args: unknown[]) => unknown) | undefined;
  if (started !== undefined) {
    guarded.started = (job, index, attempt) => {
      started(job, index, attempt);
      return undefined;
    };
  }
  return guarded;
}
