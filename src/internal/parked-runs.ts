/**
 * `run()` calls parked for room that carry nothing but their job: no signal, priority or
 * transfer list (the common case of many tiny jobs submitted at once). Internal; Pool keeps them
 * here instead of in its wait list of submitters.
 *
 * Why: a parked call lives until room frees up, so with 100,000 calls at once every one of them
 * survives young-generation collections and is copied, then promoted. The bytes that survive
 * per parked call are what the burst costs (profiles: most of it is scavenging). A `Submitter`
 * node is ~128 bytes; an entry here is two array slots (job, resolve), 16. A parked call keeps
 * only its promise's `resolve`: its `reject` is left to the collector at once (64 bytes that
 * would survive with it), and a failure settles the promise through `resolve` with a thenable
 * that rejects (see Pool's `rejection`). Nothing here can leave from the middle (no signal), so
 * a ring suffices.
 *
 * Entries are numbered from 0 in the order they were pushed ({@link pushed}, {@link headSeq}):
 * the Pool gives a parked `Submitter` the number of entries pushed before it, so that the two
 * lists are served in the order the calls were made.
 *
 * @module
 */
export class ParkedRuns<J, R> {
  /** job, resolve; then the next entry. Its length is a power of two (× 2). */
  #items: unknown[] = new Array(64);
  /** `#items.length - 1`. */
  #mask = 63;
  /** Slot of the oldest entry's job. */
  #head = 0;
  #length = 0;
  /**
   * Entries pushed so far: the number the next entry gets. Only {@link push} moves it. A plain
   * field, not a getter over a private one: the Pool reads it on every parked submit, and the
   * getter cost that path ~300 instructions per job (callgrind, BENCHMARKS.md "Tiny jobs, sixth
   * pass").
   */
  pushed = 0;

  get length(): number {
    return this.#length;
  }

  /** The oldest entry's number; only meaningful while {@link length} > 0. */
  get headSeq(): number {
    return this.pushed - this.#length;
  }

  push(job: J, resolve: (value: R) => void): void {
    if (this.#length * 2 === this.#items.length) this.#grow();
    const at = (this.#head + this.#length * 2) & this.#mask;
    const items = this.#items;
    items[at] = job;
    items[at + 1] = resolve;
    this.#length++;
    this.pushed++;
  }

  /**
   * Takes the oldest entry off; it is read with {@link job} and {@link resolve} until the next
   * shift. False when empty.
   */
  shift(): boolean {
    if (this.#length === 0) return false;
    const items = this.#items;
    const at = this.#head;
    this.job = items[at] as J;
    this.resolve = items[at + 1] as (value: R) => void;
    // Let the job and its promise be collected once served.
    items[at] = items[at + 1] = undefined;
    this.#head = (at + 2) & this.#mask;
    this.#length--;
    return true;
  }

  /** The entry {@link shift} took last. */
  job: J | undefined = undefined;
  resolve: (value: R) => void = noop;

  /** Forgets the entry {@link shift} took last (so it is not kept alive). */
  clearLast(): void {
    this.job = undefined;
    this.resolve = noop;
  }

  #grow(): void {
    const old = this.#items;
    const next: unknown[] = new Array(old.length * 2);
    const slots = this.#length * 2;
    for (let i = 0; i < slots; i++) next[i] = old[(this.#head + i) & this.#mask];
    this.#items = next;
    this.#mask = next.length - 1;
    this.#head = 0;
  }
}

function noop(): void {}
