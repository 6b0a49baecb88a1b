/**
 * Coalesces per-message calls made in the same turn of the event loop into one Redis command
 * (e.g. 64 acks → one `XACK` with 64 ids). Handlers that finish together settle together, so the
 * broker sees one round trip per burst instead of one per message.
 *
 * @module
 */

/** Collects ids until the next `setImmediate`, then runs `flush` once for all of them. */
export class IdBatcher<R> {
  readonly #flush: (ids: string[]) => Promise<R>;
  readonly #maxBatch: number;
  #ids: string[] = [];
  #waiters: { resolve: (value: R) => void; reject: (error: unknown) => void }[] = [];
  #scheduled = false;

  constructor(flush: (ids: string[]) => Promise<R>, maxBatch = 1000) {
    this.#flush = flush;
    this.#maxBatch = maxBatch;
  }

  /** Resolves with the reply of the command that carried `id`. */
  add(id: string): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#ids.push(id);
      this.#waiters.push({ resolve, reject });
      if (this.#ids.length >= this.#maxBatch) this.#run();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#run());
      }
    });
  }

  #run(): void {
    this.#scheduled = false;
    if (this.#ids.length === 0) return;
    const ids = this.#ids;
    const waiters = this.#waiters;
    this.#ids = [];
    this.#waiters = [];
    this.#flush(ids).then(
      (reply) => {
        for (const w of waiters) w.resolve(reply);
      },
      (error) => {
        for (const w of waiters) w.reject(error);
      },
    );
  }
}
