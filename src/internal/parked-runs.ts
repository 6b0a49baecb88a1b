/**
 * `run()` calls parked for room that carry nothing but their job: no signal, priority or
 * transfer list (the common case of many tiny jobs submitted at once). Internal; Pool keeps them
 * here instead of in its wait list of submitters.
 *
 * Why: a parked call lives until room frees up, so with 100,000 calls at once every one of them
 * survives young-generation collections and is copied, then promoted. The bytes that survive
 * per parked call are what the burst costs (profiles: most of it is scavenging). A `Submitter`
 * node is ~128 bytes; an entry here is four array slots (job, resolve, reject, order), ~32.
 * Nothing here can leave from the middle (no signal), so a queue suffices.
 *
 * The entries live in fixed chunks of {@link CHUNK} entries, not in one ring that doubles: a
 * ring grown to 100,000 entries copied every slot on each doubling (~50 ms of a burst of
 * 100,000 calls in profiles, most of it write barriers into the huge new array), and then held
 * all of them in one array too large for the young generation.
 *
 * `order` is the Pool's submission counter, shared with the submitters' list, so the two are
 * served in the order the calls were made.
 *
 * @module
 */

/** Entries per chunk (× 4 slots: a 32 KiB array, small enough for the young generation). */
const CHUNK = 1024;
const SLOTS = CHUNK * 4;

export class ParkedRuns<J, R> {
  /** Chunks in order; `#chunks[#first]` holds the oldest entry. */
  #chunks: unknown[][] = [];
  #first = 0;
  /** Slot of the oldest entry in the first chunk. */
  #head = 0;
  /** Slot after the newest entry in the last chunk. */
  #tail = SLOTS;
  #length = 0;
  /** An emptied chunk kept for reuse, so a queue around a chunk boundary does not churn. */
  #spare: unknown[] | undefined;

  get length(): number {
    return this.#length;
  }

  /** `order` of the oldest entry; only meaningful while {@link length} > 0. */
  get headOrder(): number {
    return (this.#chunks[this.#first] as unknown[])[this.#head + 3] as number;
  }

  push(job: J, resolve: (value: R) => void, reject: (error: Error) => void, order: number): void {
    if (this.#tail === SLOTS) {
      const chunk = this.#spare ?? new Array(SLOTS);
      this.#spare = undefined;
      this.#chunks.push(chunk);
      this.#tail = 0;
    }
    const items = this.#chunks[this.#chunks.length - 1] as unknown[];
    const at = this.#tail;
    items[at] = job;
    items[at + 1] = resolve;
    items[at + 2] = reject;
    items[at + 3] = order;
    this.#tail = at + 4;
    this.#length++;
  }

  /**
   * Takes the oldest entry off; it is read with {@link job}, {@link resolve} and {@link reject}
   * until the next shift. False when empty.
   */
  shift(): boolean {
    if (this.#length === 0) return false;
    const items = this.#chunks[this.#first] as unknown[];
    const at = this.#head;
    this.job = items[at] as J;
    this.resolve = items[at + 1] as (value: R) => void;
    this.reject = items[at + 2] as (error: Error) => void;
    // Let the job and its promise be collected once served.
    items[at] = items[at + 1] = items[at + 2] = undefined;
    this.#length--;
    this.#head = at + 4;
    if (this.#length === 0) {
      // Empty: keep one chunk, written from its start again.
      this.#spare = items;
      this.#chunks = [];
      this.#first = 0;
      this.#head = 0;
      this.#tail = SLOTS;
    } else if (this.#head === SLOTS) {
      this.#spare = items;
      this.#chunks[this.#first++] = undefined as never;
      this.#head = 0;
      // Drop the dead prefix of the chunk list once it is most of it.
      if (this.#first >= 64 && this.#first * 2 >= this.#chunks.length) {
        this.#chunks = this.#chunks.slice(this.#first);
        this.#first = 0;
      }
    }
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
}

function noop(): void {}
