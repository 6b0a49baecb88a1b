/**
 * Worker slots: which slot ids are busy and what runs in each. Ids are always below the current
 * limit when handed out, so `workerId` stays in 0..concurrency-1 even across `resize()`.
 * Internal.
 */
export class Slots<T> {
  #limit: number;
  /** Free ids below the limit; popped from the end, so low ids are reused first. */
  #free: number[] = [];
  /** What runs in each busy slot (sparse; ids may exceed the limit after a shrink). */
  readonly #busy: (T | undefined)[] = [];
  #running = 0;

  constructor(limit: number) {
    this.#limit = limit;
    this.#rebuild();
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

  /** Takes a free slot for `item`; call only while `available`. */
  acquire(item: T): number {
    const id = this.#free.pop() as number;
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
    this.#rebuild();
  }

  /** What runs now, in slot order. */
  items(): T[] {
    return this.#busy.filter((item): item is T => item !== undefined);
  }

  #rebuild(): void {
    this.#free = [];
    for (let id = this.#limit - 1; id >= 0; id--)
      if (this.#busy[id] === undefined) this.#free.push(id);
  }
}
