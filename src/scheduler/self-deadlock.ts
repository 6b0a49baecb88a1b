/**
 * Self-deadlock detection for a Pool (its `detectDeadlock` option). A worker that awaits
 * `submit`/`run` on its own pool holds its slot while it waits; once every running job's worker
 * waits on the pool like that, no slot can ever free (nothing they wait for can start) and the
 * pool hangs — the seed's "worker blocked on a full channel". AsyncLocalStorage tells which
 * pool's job a call comes from, so the call that would complete the cycle fails instead.
 *
 * The rule (exact under its premise, that a worker calling submit/run on its pool awaits it):
 * refuse a worker's `submit` that must wait for room, or its `run` (whose job then cannot start
 * — every slot is busy), when every running job of the pool — the caller's included — is
 * waiting in a `submit`/`run` on this same pool, the pool is not paused and has no `timeout`
 * (a timeout frees slots: the pool would go on, slowly). A call that can proceed — room in the
 * queue for a submit, a free slot, some running job not waiting on the pool — is never refused.
 *
 * Opt-in because on Node 20 an active AsyncLocalStorage makes every promise of the process
 * slower (async_hooks' promise hook): measured +60..130% per job on bench/core's trivial job.
 * Off, nothing here runs and no storage exists.
 *
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** The running job (its attempt object) whose worker is executing, per async context. */
let storage: AsyncLocalStorage<object> | undefined;

/** True once some pool detects deadlocks (the storage exists and contexts propagate). */
export function deadlockStorageActive(): boolean {
  return storage !== undefined;
}

/**
 * Calls `start(...args)` outside any detecting pool's job context: a worker of another pool,
 * started from code that runs in such a context (a pump after a settlement), must not be taken
 * for that job. Only used once the storage exists.
 */
export function outsideJobs<A extends unknown[]>(start: (...args: A) => void, ...args: A): void {
  if (storage === undefined) start(...args);
  else storage.exit(start, ...args);
}

/** One wait of a running job's worker on its pool: a parked submit, or a run until its job settles. */
export interface Wait {
  readonly caller: object;
  ended: boolean;
}

/**
 * One pool's view: which of its running jobs wait on it now. A wait ends the moment it is
 * served — a submit accepted, a run's job settled — not when the caller's promise callbacks
 * run a few ticks later: in between, the pool may start a job whose worker calls in, and a
 * caller already served must not count as waiting then.
 */
export class DeadlockGuard {
  /** Running attempts whose worker waits on this pool, with how many waits each. */
  readonly #waiting = new Map<object, number>();
  /** Waits of `run` calls, by the index of the job whose settlement ends them. */
  readonly #byJob = new Map<number, Wait>();

  constructor() {
    storage ??= new AsyncLocalStorage<object>();
  }

  /** Calls `start(...args)` (which calls the worker of `attempt`) in `attempt`'s context. */
  enter<A extends unknown[]>(attempt: object, start: (...args: A) => void, ...args: A): void {
    (storage as AsyncLocalStorage<object>).run(attempt, start, ...args);
  }

  /** The attempt whose worker is making the current call, if any (the pool checks it is its own). */
  current(): object | undefined {
    return storage?.getStore();
  }

  /**
   * Whether `caller` waiting now would leave no running job free: `running` jobs hold every slot
   * (`saturated`) and all of them, `caller` included, would be waiting on the pool.
   */
  wouldDeadlock(caller: object, running: number, saturated: boolean): boolean {
    if (!saturated) return false;
    const waiting = this.#waiting.size + (this.#waiting.has(caller) ? 0 : 1);
    return waiting >= running;
  }

  /** `caller`'s worker starts waiting on the pool. */
  begin(caller: object): Wait {
    this.#waiting.set(caller, (this.#waiting.get(caller) ?? 0) + 1);
    return { caller, ended: false };
  }

  /** The wait is served or refused (once; later calls are no-ops). */
  end(wait: Wait): void {
    if (wait.ended) return;
    wait.ended = true;
    const n = this.#waiting.get(wait.caller);
    if (n === undefined) return;
    if (n <= 1) this.#waiting.delete(wait.caller);
    else this.#waiting.set(wait.caller, n - 1);
  }

  /** A run's job was accepted as job `index`: its wait ends when that job settles. */
  until(index: number, wait: Wait): void {
    this.#byJob.set(index, wait);
  }

  /** Job `index` settled for good: a run waiting for it is served. */
  jobSettled(index: number): void {
    if (this.#byJob.size === 0) return;
    const wait = this.#byJob.get(index);
    if (wait === undefined) return;
    this.#byJob.delete(index);
    this.end(wait);
  }

  /** `attempt` left its slot: its worker's waits no longer hold the pool. */
  attemptEnded(attempt: object): void {
    this.#waiting.delete(attempt);
  }
}
