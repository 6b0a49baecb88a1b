/**
 * The scheduler's queue of jobs waiting for a thread: O(1) push and shift (an array with a
 * moving head), plus the rare operations — put taken-back jobs in front, find or remove a
 * canceled one — in O(n). Ordered by `priority` (higher first, FIFO within one): a job of the
 * same or lower priority than the last is appended in O(1); a higher one is inserted in place
 * (binary search, then an O(n) splice — priorities are the exception). Internal.
 */
export class Fifo<T extends { readonly priority: number }> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    const items = this.#items;
    const last = items.length > this.#head ? (items[items.length - 1] as T) : undefined;
    if (last === undefined || last.priority >= item.priority) {
      items.push(item);
      return;
    }
    // The first waiting item of a lower priority: the new one goes just before it.
    let lo = this.#head;
    let hi = items.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((items[mid] as T).priority < item.priority) hi = mid;
      else lo = mid + 1;
    }
    items.splice(lo, 0, item);
  }

  shift(): T | undefined {
    if (this.#head === this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    // Compact once the dead prefix is large, so memory follows the queue, not its history.
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  peek(): T | undefined {
    return this.#head === this.#items.length ? undefined : this.#items[this.#head];
  }

  /** Puts `items` in front, in their order. */
  unshiftAll(items: readonly T[]): void {
    if (items.length === 0) return;
    this.#items = [...items, ...this.#items.slice(this.#head)];
    this.#head = 0;
  }

  find(match: (item: T) => boolean): T | undefined {
    for (let i = this.#head; i < this.#items.length; i++) {
      const item = this.#items[i] as T;
      if (match(item)) return item;
    }
    return undefined;
  }

  remove(item: T): boolean {
    const at = this.#items.indexOf(item, this.#head);
    if (at < 0) return false;
    this.#items.splice(at, 1);
    return true;
  }
}
