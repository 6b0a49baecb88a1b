/**
 * A thread's jobs sent and not yet reported, oldest first: an array with a moving head and
 * tail. A result takes the oldest job off with {@link shift} in O(1), where
 * `Array.prototype.shift` copies the rest of the array (up to 2 × 64 jobs) for every result; and
 * a list that empties (a thread at the end of its batches) starts again at the front of the same
 * array, instead of growing a new one batch after batch. Slots outside [head, tail) are always
 * empty, so nothing reported is kept alive. Internal.
 */
export class SentList<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  #tail = 0;

  get length(): number {
    return this.#tail - this.#head;
  }

  /** Slots the backing array holds, reported ones included (for tests: memory follows length). */
  get backing(): number {
    return this.#items.length;
  }

  /** The oldest item, if any. */
  first(): T | undefined {
    return this.#head === this.#tail ? undefined : this.#items[this.#head];
  }

  push(item: T): void {
    const items = this.#items;
    if (this.#tail === items.length) items.push(item);
    else items[this.#tail] = item;
    this.#tail++;
  }

  shift(): T | undefined {
    const head = this.#head;
    if (head === this.#tail) return undefined;
    const items = this.#items;
    const item = items[head];
    items[head] = undefined;
    this.#head = head + 1;
    if (this.#head === this.#tail) {
      // Empty: start again at the front of the same array.
      this.#head = 0;
      this.#tail = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#tail) {
      // A thread that always holds a second batch never empties its list: drop the reported
      // prefix once it is most of the array, so memory follows what is in flight.
      this.#items = items.slice(this.#head, this.#tail);
      this.#tail -= this.#head;
      this.#head = 0;
    }
    return item;
  }

  find(match: (item: T) => boolean): T | undefined {
    for (let i = this.#head; i < this.#tail; i++) {
      const item = this.#items[i] as T;
      if (match(item)) return item;
    }
    return undefined;
  }

  includes(item: T): boolean {
    for (let i = this.#head; i < this.#tail; i++) if (this.#items[i] === item) return true;
    return false;
  }

  /** Removes and returns the first item that matches and every item after it ([] if none). */
  takeFrom(match: (item: T) => boolean): T[] {
    const items = this.#items;
    for (let i = this.#head; i < this.#tail; i++) {
      if (!match(items[i] as T)) continue;
      const taken = items.slice(i, this.#tail) as T[];
      items.fill(undefined, i, this.#tail);
      this.#tail = i;
      if (this.#head === this.#tail) {
        this.#head = 0;
        this.#tail = 0;
      }
      return taken;
    }
    return [];
  }
}
