/**
 * The scheduler's queue of jobs waiting for a thread: O(1) push and shift, plus the rare
 * operations — put taken-back jobs in front, find or remove a canceled one — in O(n). Ordered by
 * `priority` (higher first, FIFO within one): a job of the same or lower priority than the last
 * is appended in O(1); a higher one is inserted in place (an O(n) rebuild — priorities are the
 * exception). Internal.
 *
 * A ring whose capacity is a power of two, kept once grown (unless it grew past
 * {@link KEPT_SLOTS} and then emptied): jobs pass through it 100,000 at a time, and an array with
 * a moving head grew its backing store again after every compaction (a copy of the queue, then a
 * reallocation at each growth step: bytes per job that every young-generation collection pays
 * for).
 */
/** A ring larger than this is given up once it empties. */
const KEPT_SLOTS = 4096;

export class Fifo<T extends { readonly priority: number }> {
  #items: (T | undefined)[] = new Array(16).fill(undefined);
  /** `#items.length - 1`. */
  #mask = 15;
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(item: T): void {
    if (this.#length > 0) {
      const last = this.#items[(this.#head + this.#length - 1) & this.#mask] as T;
      if (last.priority < item.priority) {
        this.#insert(item);
        return;
      }
    }
    if (this.#length === this.#items.length) this.#rebuild(this.#toArray(), 2 * this.#items.length);
    this.#items[(this.#head + this.#length) & this.#mask] = item;
    this.#length++;
  }

  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & this.#mask;
    // Emptied after a peak far above the usual few hundred waiting jobs: memory follows the
    // queue, not its history.
    if (--this.#length === 0 && this.#items.length > KEPT_SLOTS) this.#rebuild([], 16);
    return item;
  }

  /** Slots the ring holds (for tests: memory follows the queue). */
  get backing(): number {
    return this.#items.length;
  }

  peek(): T | undefined {
    return this.#length === 0 ? undefined : this.#items[this.#head];
  }

  /** Puts `items` in front, in their order. */
  unshiftAll(items: readonly T[]): void {
    if (items.length === 0) return;
    this.#rebuild([...items, ...this.#toArray()]);
  }

  find(match: (item: T) => boolean): T | undefined {
    for (let i = 0; i < this.#length; i++) {
      const item = this.#items[(this.#head + i) & this.#mask] as T;
      if (match(item)) return item;
    }
    return undefined;
  }

  remove(item: T): boolean {
    const all = this.#toArray();
    const at = all.indexOf(item);
    if (at < 0) return false;
    all.splice(at, 1);
    this.#rebuild(all);
    return true;
  }

  /** Inserts just before the first waiting item of a lower priority. */
  #insert(item: T): void {
    const all = this.#toArray();
    let lo = 0;
    let hi = all.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((all[mid] as T).priority < item.priority) hi = mid;
      else lo = mid + 1;
    }
    all.splice(lo, 0, item);
    this.#rebuild(all);
  }

  #toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.#length; i++)
      out.push(this.#items[(this.#head + i) & this.#mask] as T);
    return out;
  }

  /** Lays `all` out from slot 0 of a ring of at least `capacity` slots (the current one if it fits). */
  #rebuild(all: T[], capacity = this.#items.length): void {
    let size = Math.max(capacity, 16);
    while (size < all.length) size *= 2;
    if (size !== this.#items.length) this.#items = new Array(size).fill(undefined);
    else this.#items.fill(undefined);
    for (let i = 0; i < all.length; i++) this.#items[i] = all[i];
    this.#head = 0;
    this.#length = all.length;
    this.#mask = size - 1;
  }
}
