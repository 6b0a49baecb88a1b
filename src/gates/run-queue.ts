/**
 * The queue discipline of the scheduling core: which queued job starts next. FIFO by default;
 * by priority, or round-robin among keys (see `priority-queue.ts`, `keyed-queue.ts`). Internal.
 *
 * @module
 */
import { WaitList, type WaitNode } from '../internal/wait-list.js';

/** What a queue needs of a job. The core's jobs carry these fields; the queue sets `heapIndex`. */
export interface Queued extends WaitNode {
  /** Higher starts first. 0 unless given. */
  priority: number;
  /** Per-key fairness and limits; undefined without the `key` option. */
  key: string | undefined;
  /** Arrival order in the queue, for FIFO within one priority. */
  order: number;
  /** Position in a heap; -1 when in none. */
  heapIndex: number;
}

/** A queue of jobs waiting to start. */
export interface RunQueue<E extends Queued> {
  readonly length: number;
  push(entry: E): void;
  /**
   * Takes the next job allowed to start at `now` and counts it as started for its key; undefined
   * when none may start now (every key with queued work is at its limit).
   */
  take(now: number): E | undefined;
  /**
   * True when `take(now)` would return a job. Asked before a rate permit is taken, so that no
   * permit is spent (and left to age) while every key with work is at its limit.
   */
  ready(now: number): boolean;
  /** Removes a queued job (canceled while queued). */
  remove(entry: E): void;
  /** Takes every queued job out, whatever the limits (abort, drain deadline). */
  clear(): E[];
  /** A job returned by `take` has settled: its key may start another. */
  finished(entry: E, now: number): void;
  /** ms until `take` may succeed again by the clock alone (a key's rate); Infinity: on a finish. */
  readyIn(now: number): number;
  /** The key {@link readyIn} waits for (keyed queues only; for the rate-limited event). */
  nextReadyKey?(): string | undefined;
  /** Queued jobs held back by their key's limits. */
  heldByKey(): number;
  /** Keys with state kept: those with queued or running jobs, or starts still in a rate window. */
  readonly keys: number;
}

/** Plain FIFO: the default, and what a pool without `key` or `priority` pays for. */
export class FifoQueue<E extends Queued> extends WaitList<E> implements RunQueue<E> {
  take(): E | undefined {
    return this.shift();
  }

  ready(): boolean {
    return this.length > 0;
  }

  clear(): E[] {
    const out: E[] = [];
    for (let e = this.shift(); e; e = this.shift()) out.push(e);
    return out;
  }

  finished(): void {}

  readyIn(): number {
    return Number.POSITIVE_INFINITY;
  }

  heldByKey(): number {
    return 0;
  }

  get keys(): number {
    return 0;
  }
}
