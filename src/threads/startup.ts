/**
 * Thread start-up supervision: the pool's `ready` promise, restart backoff, and the point where
 * the pool gives up. Internal.
 */
import { WorkerStartupError } from '../errors.js';

/** Backoff before restart n (1-based): 50 ms, 100 ms, 200 ms, … capped at 2 s. */
export function restartDelay(failures: number): number {
  return Math.min(50 * 2 ** (failures - 1), 2_000);
}

export class Startup {
  readonly ready: Promise<void>;
  #resolve!: () => void;
  #reject!: (error: Error) => void;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #failed: WorkerStartupError | undefined;
  readonly #maxFailures: number;
  /** The module's file path or URL, for messages: a bare "Unexpected end of input" names no file. */
  readonly #module: string;

  constructor(maxFailures: number, module: string) {
    this.#maxFailures = maxFailures;
    this.#module = module;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.ready.catch(() => {}); // also reported through every job: never an unhandled rejection
  }

  /** The error the pool gave up with, if it did. */
  get failure(): WorkerStartupError | undefined {
    return this.#failed;
  }

  /** A thread loaded the module: the consecutive-failure count starts over. */
  succeeded(): void {
    this.#failures = 0;
    this.#resolve();
  }

  /**
   * A thread failed to start. Returns the error to fail the pool with, or undefined after
   * scheduling `restart` with backoff. `permanent` failures (no function export) give up at once.
   */
  failed(cause: Error, permanent: boolean, restart: () => void): WorkerStartupError | undefined {
    this.#failures++;
    if (!permanent && this.#failures < this.#maxFailures) {
      // Back off, so a module that cannot load is not loaded in a tight loop.
      clearTimeout(this.#timer);
      this.#timer = setTimeout(restart, restartDelay(this.#failures));
      return undefined;
    }
    const message = permanent
      ? `ThreadPool cannot use its module ${this.#module}: ${cause.message}`
      : `ThreadPool gave up after ${this.#failures} consecutive thread start-up failures of ${this.#module}: ${cause.message}`;
    this.#failed = new WorkerStartupError(message, { cause });
    this.#reject(this.#failed);
    return this.#failed;
  }

  /**
   * The pool stopped (drained, closed or aborted). A `ready` still pending rejects with `error`:
   * no thread will load the module now, and `ThreadPool.create()` waiting on it must end.
   */
  stop(error: Error): void {
    clearTimeout(this.#timer);
    this.#reject(error); // a no-op once ready settled
  }
}
