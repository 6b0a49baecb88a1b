/**
 * Per-key fairness and limits: round-robin among the keys that have queued work, each key with
 * its own concurrency and rate. Internal.
 *
 * State is kept only for keys with queued or running jobs (and, with a per-key rate, until their
 * last start leaves the window), so memory follows the queue, however many keys pass through.
 *
 * @module
 */
import { Deque } from '../internal/deque.js';
import { PriorityQueue } from './priority-queue.js';
import type { Queued, RunQueue } from './run-queue.js';
import { FifoQueue } from './run-queue.js';
import { SlidingWindow } from './sliding-window.js';

/** Limits per key. */
export interface KeyLimits {
  concurrency: number;
  rate: { limit: number; interval: number } | undefined;
  /** Order within a key by priority (else FIFO). */
  byPriority: boolean;
}

type Where = 'idle' | 'ring' | 'cooling' | 'full';

class KeyState<E extends Queued> {
  readonly key: string;
  readonly queue: RunQueue<E>;
  running = 0;
  readonly window: SlidingWindow | undefined;
  where: Where = 'idle';
  /** While cooling: performance.now() at which the rate lets it start again. */
  readyAt = 0;
  /** While lingering (no work, starts still in the window): when the last one leaves it. */
  lingerUntil = -1;

  constructor(key: string, limits: KeyLimits) {
    this.key = key;
    this.queue = limits.byPriority ? new PriorityQueue<E>() : new FifoQueue<E>();
    this.window = limits.rate && new SlidingWindow(limits.rate.limit, limits.rate.interval);
  }
}

export class KeyedQueue<E extends Queued> implements RunQueue<E> {
  readonly #limits: KeyLimits;
  readonly #states = new Map<string, KeyState<E>>();
  /** Keys that may start a job now, in turn order. */
  readonly #ring = new Deque<KeyState<E>>();
  /** Keys waiting on their rate, soonest first (a small binary heap on `readyAt`). */
  readonly #cooling: KeyState<E>[] = [];
  /** Keys with no work whose rate window still holds starts, oldest first. */
  readonly #lingering = new Deque<KeyState<E>>();
  #length = 0;

  constructor(limits: KeyLimits) {
    this.#limits = limits;
  }

  get length(): number {
    return this.#length;
  }

  get keys(): number {
    // A key lingering in its rate window is forgotten once the window passes, even when nothing
    // else happens in the pool by then (a sweep otherwise runs only on the next release).
    this.#sweep(performance.now());
    return this.#states.size;
  }

  push(entry: E): void {
    const key = entry.key as string;
    let state = this.#states.get(key);
    if (state === undefined) {
      state = new KeyState<E>(key, this.#limits);
      this.#states.set(key, state);
    }
    state.queue.push(entry);
    this.#length++;
    if (state.where === 'idle') this.#place(state, undefined);
  }

  take(now: number): E | undefined {
    this.#wake(now);
    for (let state = this.#ring.shift(); state; state = this.#ring.shift()) {
      state.where = 'idle';
      if (state.queue.length === 0) {
        this.#release(state, now);
        continue;
      }
      const wait = state.window?.delay(now) ?? 0;
      if (wait > 0) {
        this.#cool(state, now + wait);
        continue;
      }
      const entry = state.queue.take(now) as E;
      this.#length--;
      state.running++;
      state.window?.record(now);
      this.#place(state, now);
      if (this.#length === 0) this.#releaseWaiting(now);
      return entry;
    }
    return undefined;
  }

  ready(now: number): boolean {
    this.#wake(now);
    // As take() does, keys passed over leave the ring (empty: released; held by their rate:
    // cooling), but the first key that may start stays at the front for the take() that follows.
    for (let state = this.#ring.peek(); state; state = this.#ring.peek()) {
      const wait = state.queue.length === 0 ? 0 : (state.window?.delay(now) ?? 0);
      if (state.queue.length > 0 && wait <= 0) return true;
      this.#ring.shift();
      state.where = 'idle';
      if (state.queue.length === 0) this.#release(state, now);
      else this.#cool(state, now + wait);
    }
    return false;
  }

  remove(entry: E): void {
    const state = this.#states.get(entry.key as string);
    if (state === undefined) return;
    const before = state.queue.length;
    state.queue.remove(entry);
    if (state.queue.length === before) return;
    this.#length--;
    const now = performance.now();
    this.#release(state, now);
    if (this.#length === 0) this.#releaseWaiting(now);
  }

  /**
   * A key emptied by removals while in the ring or cooling is released only when a take()
   * reaches it; once nothing is queued none may come, so those keys are released here.
   */
  #releaseWaiting(now: number): void {
    const waiting = [...this.#cooling];
    this.#cooling.length = 0;
    for (let s = this.#ring.shift(); s; s = this.#ring.shift()) waiting.push(s);
    for (const state of waiting) {
      state.where = 'idle';
      this.#place(state, now);
      this.#release(state, now);
    }
  }

  clear(): E[] {
    const out: E[] = [];
    for (const state of this.#states.values()) out.push(...state.queue.clear());
    this.#states.clear();
    this.#ring.drain();
    this.#cooling.length = 0;
    this.#lingering.drain();
    this.#length = 0;
    return out.sort((a, b) => a.order - b.order);
  }

  finished(entry: E, now: number): void {
    const state = this.#states.get(entry.key as string);
    if (state === undefined) return;
    state.running--;
    if (state.where === 'full') state.where = 'idle';
    if (state.where === 'idle') this.#place(state, now);
    this.#release(state, now);
  }

  nextReadyKey(): string | undefined {
    return this.#cooling[0]?.key;
  }

  readyIn(now: number): number {
    const first = this.#cooling[0];
    return first === undefined ? Number.POSITIVE_INFINITY : Math.max(0, first.readyAt - now);
  }

  heldByKey(): number {
    let held = 0;
    for (const state of this.#states.values()) {
      if (state.where === 'full' || state.where === 'cooling') held += state.queue.length;
    }
    return held;
  }

  /** Puts an idle key where it belongs: in the ring if it can start a job, else marked full. */
  #place(state: KeyState<E>, _now: number | undefined): void {
    if (state.queue.length === 0) return;
    if (state.running >= this.#limits.concurrency) {
      state.where = 'full';
      return;
    }
    state.where = 'ring';
    this.#ring.push(state);
  }

  /** Drops the state of a key left with nothing to do (or lets it linger in its rate window). */
  #release(state: KeyState<E>, now: number): void {
    this.#sweep(now);
    if (state.queue.length > 0 || state.running > 0 || state.lingerUntil >= 0) return;
    // In the ring or cooling: released when taken out of there.
    if (state.where === 'ring' || state.where === 'cooling') return;
    if (state.window && !state.window.idle(now)) {
      state.lingerUntil = now + state.window.interval;
      this.#lingering.push(state);
      return;
    }
    if (this.#states.get(state.key) === state) this.#states.delete(state.key);
  }

  /** Forgets lingering keys whose window emptied and that got no new work meanwhile. */
  #sweep(now: number): void {
    for (let s = this.#lingering.peek(); s && s.lingerUntil <= now; s = this.#lingering.peek()) {
      this.#lingering.shift();
      s.lingerUntil = -1;
      if (s.queue.length > 0 || s.running > 0 || s.where !== 'idle') continue;
      if (s.window && !s.window.idle(now)) {
        // New starts since it began to linger: wait for them to leave the window too.
        s.lingerUntil = now + s.window.interval;
        this.#lingering.push(s);
      } else if (this.#states.get(s.key) === s) {
        this.#states.delete(s.key);
      }
    }
  }

  #cool(state: KeyState<E>, readyAt: number): void {
    state.where = 'cooling';
    state.readyAt = readyAt;
    const heap = this.#cooling;
    let i = heap.push(state) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((heap[parent] as KeyState<E>).readyAt <= readyAt) break;
      heap[i] = heap[parent] as KeyState<E>;
      i = parent;
    }
    heap[i] = state;
  }

  /** Moves keys whose rate lets them start again back into the ring. */
  #wake(now: number): void {
    const heap = this.#cooling;
    while (heap.length > 0 && (heap[0] as KeyState<E>).readyAt <= now) {
      const state = heap[0] as KeyState<E>;
      const last = heap.pop() as KeyState<E>;
      if (heap.length > 0) siftDown(heap, last);
      state.where = 'idle';
      this.#place(state, now);
      if (state.queue.length === 0 && state.running === 0) this.#release(state, now);
    }
  }
}

function siftDown<E extends Queued>(heap: KeyState<E>[], entry: KeyState<E>): void {
  let i = 0;
  const n = heap.length;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= n) break;
    const right = left + 1;
    const child =
      right < n && (heap[right] as KeyState<E>).readyAt < (heap[left] as KeyState<E>).readyAt
        ? right
        : left;
    if ((heap[child] as KeyState<E>).readyAt >= entry.readyAt) break;
    heap[i] = heap[child] as KeyState<E>;
    i = child;
  }
  heap[i] = entry;
}
