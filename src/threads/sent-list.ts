/**
 * A thread's jobs sent and not yet reported, oldest first: an array with a moving head. A result
 * takes the oldest job off with {@link shift} in O(1), where `Array.prototype.shift` copies the
 * rest of the array (up to 2 × 64 jobs) for every result. Internal.
 */
export class SentList<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Slots the backing array holds, reported ones included (for tests: memory follows length). */
  get backing(): number {
    return this.#items.length;
  }

  /** The oldest item, if any. */
  first(): T | undefined {
    return this.#items[this.#head];
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head === this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      // Empty (a thread at the end of its batches, usually): start afresh.
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      // A thread that always holds a second batch never empties its list: drop the reported
      // prefix once it is most of the array, so memory follows what is in flight.
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  find(match: (item: T) => boolean): T | undefined {
    for (let i = this.#head; i < this.#items.length; i++) {
      const item = this.#items[i] as T;
      if (match(item)) return item;
    }
    return undefined;
  }

  includes(item: T): boolean {
    return this.#items.indexOf(item, this.#head) >= 0;
  }

  /** Removes and returns the first item that matches and every item after it ([] if none). */
  takeFrom(match: (item: T) => boolean): T[] {
    for (let i = this.#head; i < this.#items.length; i++) {
      if (!match(this.#items[i] as T)) continue;
      const taken = this.#items.splice(i) as T[];
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      }
      return taken;
    }
    return [];
  }
}
