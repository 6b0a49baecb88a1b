/**
 * How many waiting jobs go to a thread in one message. Internal.
 *
 * Tiny jobs cost less than the message that carries them, so they travel in batches; long jobs
 * travel alone, or a batch would hold back jobs another thread could start. The size follows
 * the measured time per job: a batch holds about {@link BATCH_BUDGET_MS} of work.
 */

/** A batch is sized to about this much measured work (ms), so batching never delays much. */
export const BATCH_BUDGET_MS = 1;
/** Jobs per message at most. */
export const MAX_BATCH = 64;

export class BatchSize {
  #gapSum = 0;
  #gapCount = 0;
  /** Measured time per job (ms); undefined until the first result. */
  #perJobMs: number | undefined;

  /**
   * `jobs` results (one message) arrived `gapMs` after the thread's previous event (its previous result, or the
   * send that ended an idle spell, which adds the message round trip). Results come in bursts,
   * so the estimate is a decaying sum of gaps over a decaying count — a moving average of the
   * gaps themselves would swing between 0 and the burst interval.
   */
  observe(gapMs: number, jobs = 1): void {
    // `jobs` results in one message count as `jobs` gaps of `gapMs / jobs` each.
    const decay = jobs === 1 ? 0.97 : 0.97 ** jobs;
    this.#gapSum = this.#gapSum * decay + gapMs;
    this.#gapCount = this.#gapCount * decay + jobs;
    this.#perJobMs = this.#gapSum / this.#gapCount;
  }

  /**
   * Jobs a message may carry by the measured time per job alone (1 until measured): the batch
   * size when the backlog is deep enough.
   */
  limit(): number {
    if (this.#perJobMs === undefined) return 1;
    const byTime = Math.floor(BATCH_BUDGET_MS / Math.max(this.#perJobMs, 1e-6));
    return Math.max(1, Math.min(MAX_BATCH, byTime));
  }

  /** Jobs for the next message, given `waiting` jobs shared among `threads` threads. */
  next(waiting: number, threads: number): number {
    if (waiting === 0) return 0;
    if (this.#perJobMs === undefined) return 1;
    const byTime = Math.floor(BATCH_BUDGET_MS / Math.max(this.#perJobMs, 1e-6));
    // Share the backlog among threads, so one thread never hoards it.
    const fair = Math.ceil(waiting / Math.max(1, threads));
    return Math.max(1, Math.min(MAX_BATCH, byTime, fair));
  }
}
