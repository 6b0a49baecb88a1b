/**
 * Coalesces per-message calls made in the same turn of the event loop into one broker command
 * (e.g. 64 acks → one `XACK` with 64 ids, or one `DELETE … WHERE id = ANY(…)`). Handlers that
 * finish together settle together, so the broker sees one round trip per burst, not per message.
 * Shared by the adapters that can batch.
 *
 * @module
 */

/** Collects items until the next `setImmediate`, then runs `flush` once for all of them. */
export class Batcher<I, R> {
  readonly #flush: (items: I[]) => Promise<R>;
  readonly #maxBatch: number;
  #ids: I[] = [];
  // Parallel arrays, not an object per waiter: `add` is on the per-message hot path.
  #resolves: ((value: R) => void)[] = [];
  #rejects: ((error: unknown) => void)[] = [];
  #scheduled = false;

  constructor(flush: (items: I[]) => Promise<R>, maxBatch = 1000) {
    this.#flush = flush;
    this.#maxBatch = maxBatch;
  }

  /** Resolves with the reply of the command that carried `id`. */
  add(id: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#ids.push(id);
      this.#wait(resolve, reject);
    });
  }

  /**
   * `add` for several items with one promise (a batch handler's acks): resolves with the reply
   * of the command that carried them (all go in one command).
   */
  addMany(ids: readonly I[]): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      for (const id of ids) this.#ids.push(id);
      this.#wait(resolve, reject);
    });
  }

  /** One waiter for the command that carries what was just added; sends it when full. */
  #wait(resolve: (value: R) => void, reject: (error: unknown) => void): void {
    this.#resolves.push(resolve);
    this.#rejects.push(reject);
    if (this.#ids.length >= this.#maxBatch) this.#run();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#run());
    }
  }

  /** Sends what has been collected now, instead of at the next `setImmediate`. */
  flush(): void {
    this.#run();
  }

  /**
   * Takes what has been collected, for the caller to send in a command of its own (PostgreSQL:
   * with its next claim); `undefined` when nothing waits. The scheduled flush then finds nothing.
   * The caller must call `settle` with the reply of the command that carried the items (every
   * waiter gets it, or its rejection), exactly as the `flush` function's would.
   */
  take(): { readonly items: I[]; settle(reply: Promise<R>): void } | undefined {
    if (this.#ids.length === 0) return undefined;
    const items = this.#ids;
    const resolves = this.#resolves;
    const rejects = this.#rejects;
    this.#ids = [];
    this.#resolves = [];
    this.#rejects = [];
    return {
      items,
      settle: (reply) =>
        reply.then(
          (value) => {
            for (const resolve of resolves) resolve(value);
          },
          (error) => {
            for (const reject of rejects) reject(error);
          },
        ),
    };
  }

  #run(): void {
    this.#scheduled = false;
    const taken = this.take();
    if (taken !== undefined) taken.settle(this.#flush(taken.items));
  }
}
