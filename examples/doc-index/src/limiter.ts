/**
 * A counting semaphore for the HTTP embedder's request limit: at most `limit` calls of `run` are
 * in progress; the rest wait in FIFO order.
 *
 * Why not a sluice `Pool`: each `embed()` call fans its batches out and awaits them together; a
 * Pool's bounded queue would make a large document's fan-out wait for queue room in `submit`,
 * which is the same thing with more moving parts. The pipeline's embed stage already bounds how
 * many documents are in flight; this only bounds requests across them.
 *
 * @module
 */
export class Limiter {
  readonly #limit: number;
  #active = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#limit) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#active++;
    }
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next waiter, so `#active` never dips and lets a newcomer jump the queue.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    }
  }
}
