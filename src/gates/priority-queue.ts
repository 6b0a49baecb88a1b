/**
 * Jobs by priority: higher first, FIFO within one priority (a binary heap on
 * `(priority desc, order asc)`). Internal.
 *
 * @module
 */
import type { Queued, RunQueue } from './run-queue.js';

function before(a: Queued, b: Queued): boolean {
  return a.priority > b.priority || (a.priority === b.priority && a.order < b.order);
}

/** A binary heap with O(log n) push, take and removal of any entry (via `heapIndex`). */
export class PriorityQueue<E extends Queued> implements RunQueue<E> {
  readonly #heap: E[] = [];

  get length(): number {
    return this.#heap.length;
  }

  push(entry: E): void {
    entry.heapIndex = this.#heap.length;
    this.#heap.push(entry);
    this.#up(entry.heapIndex);
  }

  take(): E | undefined {
    const top = this.#heap[0];
    if (top !== undefined) this.remove(top);
    return top;
  }

  ready(): boolean {
    return this.#heap.length > 0;
  }

  peek(): E | undefined {
    return this.#heap[0];
  }

  remove(entry: E): void {
    const i = entry.heapIndex;
    const heap = this.#heap;
    if (i < 0 || heap[i] !== entry) return;
    entry.heapIndex = -1;
    const last = heap.pop() as E;
    if (i === heap.length) return;
    heap[i] = last;
    last.heapIndex = i;
    this.#down(i);
    this.#up(last.heapIndex);
  }

  clear(): E[] {
    const out = this.#heap.splice(0);
    for (const e of out) e.heapIndex = -1;
    return out.sort((a, b) => a.order - b.order);
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

  #up(i: number): void {
    const heap = this.#heap;
    const entry = heap[i] as E;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as E;
      if (!before(entry, p)) break;
      heap[i] = p;
      p.heapIndex = i;
      i = parent;
    }
    heap[i] = entry;
    entry.heapIndex = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const entry = heap[i] as E;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(heap[right] as E, heap[left] as E) ? right : left;
      const c = heap[child] as E;
      if (!before(c, entry)) break;
      heap[i] = c;
      c.heapIndex = i;
      i = child;
    }
    heap[i] = entry;
    entry.heapIndex = i;
  }
}
