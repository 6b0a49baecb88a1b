/**
 * A thread's results on their way to the pool. Internal; used by `worker-entry.ts`.
 *
 * A message costs both threads far more than a tiny job, so results wait here and leave together,
 * one message for all of them: when the thread runs out of jobs, before it waits on a job's
 * promise (at the end of that event-loop turn), when {@link MAX_RESULTS} are waiting, when the
 * oldest has waited {@link FLUSH_MS} (only measured when the pool has a timeout: the thread then
 * reads the clock per job anyway), and in the thread's `exit` event, which it emits when it dies
 * of `process.exit()` or of an uncaught exception. A result that moves objects (`ctx.transfer`)
 * leaves alone, at once.
 *
 * Every result, buffered or sent, advances the thread's *progress* cell (see messages.ts): if the
 * thread is killed from outside (out of memory, terminated) with results still here, the pool
 * can tell the jobs that finished from the one that was running.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import type { MessagePort } from 'node:worker_threads';
import { coded } from '../internal/options.js';
import {
  describeThrown,
  type FromThread,
  type SerializedError,
  serializeError,
} from './messages.js';

/** Results waiting longer than this (ms) leave before the next job starts (timed pools only). */
export const FLUSH_MS = 1;
/** At most this many results wait; the next one sends them all. */
export const MAX_RESULTS = 256;

export class Outbox {
  readonly #port: MessagePort;
  readonly #progress: Int32Array;
  /** Sequence number of the first waiting result; the others follow it in order. */
  #seq = 0;
  #values: unknown[] = [];
  /** Positions in `#values` that hold a SerializedError. */
  #failed: number[] = [];
  /** performance.now() when the first waiting result's job was about to start. */
  #since = 0;
  /** performance.now() when the thread began the work of the waiting results (see begin). */
  #busySince = 0;
  #soon = false;

  constructor(port: MessagePort, progress: Int32Array) {
    this.#port = port;
    this.#progress = progress;
  }

  /** Job `seq` returned `value`. */
  ok(seq: number, value: unknown): void {
    this.#add(seq, value);
  }

  /** Job `seq` failed. */
  err(seq: number, error: SerializedError): void {
    this.#failed.push(this.#values.length);
    this.#add(seq, error);
  }

  /** Job `seq` is over and its outcome known to the pool or waiting here. */
  finished(seq: number): void {
    Atomics.store(this.#progress, 0, (seq + 1) | 0);
  }

  /** A job is about to start at `now` (ms, performance.now()): flush results waiting too long. */
  due(now: number): void {
    if (this.#values.length === 0) this.#since = now;
    else if (now - this.#since >= FLUSH_MS) this.flush();
  }

  /** The thread starts running jobs after an idle spell, at `now` (performance.now()). */
  begin(now: number): void {
    this.#busySince = now;
  }

  /** Flushes once the current event-loop turn has run its course. */
  flushSoon(): void {
    if (this.#soon || this.#values.length === 0) return;
    this.#soon = true;
    setImmediate(() => {
      this.#soon = false;
      this.flush();
    });
  }

  /** Sends every waiting result now, in one message. */
  flush(): void {
    if (this.#values.length === 0) return;
    const seq = this.#seq;
    const values = this.#values;
    const failed = this.#failed;
    this.#values = [];
    this.#failed = [];
    const now = performance.now();
    this.#since = now;
    // Idle time between batches is not counted: begin() moves the start past it.
    const busy = now - this.#busySince;
    this.#busySince = now;
    try {
      this.#post({ t: 'results', seq, values, failed, busy });
    } catch {
      // Some value cannot be cloned (postMessage sent nothing): each goes alone, so only the
      // jobs whose values cannot travel fail. Their values are cloned once more.
      let next = 0;
      for (let i = 0; i < values.length; i++) {
        const isError = failed[next] === i;
        if (isError) next++;
        this.#postOne((seq + i) | 0, values[i], isError);
      }
    }
  }

  #add(seq: number, value: unknown): void {
    if (this.#values.length === 0) this.#seq = seq;
    this.#values.push(value);
    this.finished(seq);
    if (this.#values.length >= MAX_RESULTS) this.flush();
  }

  #postOne(seq: number, value: unknown, isError: boolean): void {
    if (!isError) {
      try {
        this.#post({ t: 'ok', seq, value });
        return;
      } catch (error) {
        value = serializeError(cloneFailure(error));
      }
    }
    try {
      this.#post({ t: 'err', seq, error: value as SerializedError });
    } catch (postError) {
      // serializeError never throws and sends only clones, so this is a last resort.
      const fallback = new TypeError(
        `job error cannot be sent from the thread: ${describeThrown(postError)}`,
      );
      this.#post({ t: 'err', seq, error: serializeError(fallback) });
    }
  }

  #post(message: FromThread): void {
    this.#port.postMessage(message);
  }
}

/** A result that cannot be cloned (a function, a class instance with private state, …). */
export function cloneFailure(error: unknown): Error {
  return coded(
    new TypeError(`job result cannot be sent from the thread: ${describeThrown(error)}`, {
      cause: error,
    }),
    'ERR_DATA_CLONE',
  );
}
