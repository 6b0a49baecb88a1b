/**
 * `run()` calls parked for room that carry nothing but their job: no signal, priority or
 * transfer list (the common case of many tiny jobs submitted at once). Internal; Pool keeps them
 * here instead of in its wait list of submitters.
 *
 * Why: a parked call lives until room frees up, so with 100,000 calls at once every one of them
 * survives young-generation collections and is copied, then promoted. The bytes that survive
 * per parked call are what the burst costs (profiles: most of it is scavenging). A `Submitter`
 * node is ~128 bytes; an entry here is four array slots (job, resolve, reject, order), ~32.
 * Nothing here can leave from the middle (no signal), so a ring suffices.
 *
 * `order` is the Pool's submission counter, shared with the submitters' list, so the two are
 * served in the order the calls were made.
 *
 * @module
 */
export class ParkedRuns<J, R> {
  /** job, resolve, reject, order; then the next entry. Its length is a power of two (× 4). */
  #items: unknown[] = new Array(64);
  /** `#items.length - 1`. */
  #mask = 63;
  /** Slot of the oldest entry's job. */
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** `order` of the oldest entry; only meaningful while {@link length} > 0. */
  get headOrder(): number {
    return this.#items[this.#head + 3] as number;
  }

  push(job: J, resolve: (value: R) => void, reject: (error: Error) => void, order: number): void {
    if (this.#length * 4 === this.#items.length) this.#grow();
    const at = (this.#head + this.#length * 4) & this.#mask;
    const items = this.#items;
    items[at] = job;
    items[at + 1] = resolve;
    items[at + 2] = reject;
    items[at + 3] = order;
    this.#length++;
  }

  /**
   * Takes the oldest entry off; it is read with {@link job}, {@link resolve} and {@link reject}
   * until the next shift. False when empty.
   */
  shift(): boolean {
    if (this.#length === 0) return false;
    const items = this.#items;
    const at = this.#head;
    this.job = items[at] as J;
    this.resolve = items[at + 1] as (value: R) => void;
    this.reject = items[at + 2] as (error: Error) => void;
    // Let the job and its promise be collected once served.
    items[at] = items[at + 1] = items[at + 2] = undefined;
    this.#head = (at + 4) & this.#mask;
    this.#length--;
    return true;
  }

  /** The entry {@link shift} took last. */
  job: J | undefined = undefined;
  resolve: (value: R) => void = noop;
  reject: (error: Error) => void = noop;

  /** Forgets the entry {@link shift} took last (so it is not kept alive). */
  clearLast(): void {
    this.job = undefined;
    this.resolve = noop;
    this.reject = noop;
  }

  #grow(): void {
    const old = this.#items;
    const next: unknown[] = new Array(old.length * 2);
    const slots = this.#length * 4;
    for (let i = 0; i < slots; i++) next[i] = old[(this.#head + i) & this.#mask];
    this.#items = next;
    this.#mask = next.length - 1;
    this.#head = 0;
  }
}

function noop(): void {}
