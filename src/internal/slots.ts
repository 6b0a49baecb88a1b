/**
 * Worker slots: which slot ids are busy and what runs in each. Ids are always below the current
 * limit when handed out, so `workerId` stays in 0..concurrency-1 even across `resize()`.
 *
 * Ids are minted on first use, never allocated up front: memory follows the peak number of jobs
 * actually running, so a huge `concurrency` (say 1e9, "effectively unbounded") costs nothing.
 * Invariant: every id below min(minted, limit) that is not busy is on the free stack.
 * Internal.
 */
export class Slots<T> {
  #limit: number;
  /** Released ids below the limit; popped from the end, so recent ids are reused first. */
  #free: number[] = [];
  /** Ids 0..minted-1 have been handed out at least once. */
  #minted = 0;
  /** What runs in each busy slot (sparse; ids may exceed the limit after a shrink). */
  readonly #busy: (T | undefined)[] = [];
  #running = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get limit(): number {
    return this.#limit;
  }

  get running(): number {
    return this.#running;
  }

  /** True while fewer than `limit` slots are busy. */
  get available(): boolean {
    return this.#running < this.#limit;
  }

  /**
   * Takes a free slot for `item`; call only while `available`. Then some id below the limit is
   * not busy: it is either on the free stack or not minted yet (so `minted` < limit).
   */
  acquire(item: T): number {
    const id = this.#free.length > 0 ? (this.#free.pop() as number) : this.#minted++;
    this.#busy[id] = item;
    this.#running++;
    return id;
  }

  release(id: number): void {
    this.#busy[id] = undefined;
    this.#running--;
    if (id < this.#limit) this.#free.push(id);
  }

  resize(limit: number): void {
    this.#limit = limit;
    // Keep the invariant for the new limit: O(ids minted), i.e. the peak ever running.
    this.#free = [];
    const top = Math.min(this.#minted, limit);
    for (let id = top - 1; id >= 0; id--) if (this.#busy[id] === undefined) this.#free.push(id);
  }

  /** True when slot `id` runs `item` now. */
  holds(id: number, item: T): boolean {
    return this.#busy[id] === item;
  }

  /** What runs now, in slot order. */
  items(): T[] {
    return this.#busy.filter((item): item is T => item !== undefined);
  }
}
