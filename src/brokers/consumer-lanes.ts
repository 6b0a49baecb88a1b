/**
 * The fetch side of `consume()`: one lane per source, all sharing one cap on held messages.
 * Internal to the consumer.
 *
 * Each source gets at most one fetch at a time, and a fetch is asked for slots *reserved* for it
 * out of the free ones (`concurrency - held - reserved`), so held + reserved never exceeds the
 * cap however many sources there are, and a source never returns more than it was asked for.
 * With one source this is the plain loop: fetch all free slots, again as soon as some free up.
 *
 * Fairness over several sources: each free slot goes to the source (with no fetch running)
 * that holds the fewest messages now, ties broken in an order that rotates at every hand-out
 * (so with fewer free slots than sources, each source gets its turn). Sources with work thus
 * hold equal parts of the cap, and a source with a big backlog never takes the slots of the
 * others. A source whose last fetch came back empty only probes with one slot: its fetch may
 * wait on the broker for its whole block time, and should not tie up a share meanwhile.
 *
 * A failed fetch is retried on that lane only, with backoff (100 ms doubling to 2 s); a fetch
 * failing with a misuse code stops that lane only; the others keep going.
 *
 * @module
 */
import { coded } from '../internal/options.js';
import { pause } from './consumer-options.js';
import { errorStringCode } from './dead-letter.js';
import type { BrokerMessage, BrokerSource } from './source.js';

/** One source and the state of its fetches. */
export class Lane<M extends BrokerMessage> {
  readonly source: BrokerSource<M>;
  /** True while `source.fetch` runs: acks issued then do not free their slot early. */
  fetching = false;
  /** A fetch task runs (the fetch itself, or the pause after it). */
  active = false;
  /** The last fetch returned nothing: the next one probes with a single slot. */
  lastEmpty = false;
  /** Messages from this source held now (the consumer decrements it as each settles). */
  held = 0;
  /** A fetch has been started before. */
  fetched = false;
  /** Stopped for good after a misuse error. */
  stopped = false;
  failures = 0;
  /** Acks of this turn's microtasks waiting for the consumer's one `ackMany` call (see `consumer.ts`). */
  acks: M[] | undefined;

  constructor(source: BrokerSource<M>) {
    this.source = source;
  }
}

/** What the lanes need from the consumer. */
export interface LaneHost<M extends BrokerMessage> {
  readonly concurrency: number;
  /** Messages held now (fetched, not yet settled). */
  held(): number;
  stopping(): boolean;
  /** Takes a fetch's messages; must count them as held before it returns. */
  deliver(lane: Lane<M>, messages: M[]): void;
  /**
   * Hands back, unstarted, the messages a fetch returned past its `max` (a custom source's bug):
   * never held, so the bound on held messages holds whatever a source returns.
   */
  refuse(lane: Lane<M>, extra: M[], max: number): void;
  /** A fetch failed (not reported while stopping). */
  fetchFailed(error: unknown, lane: Lane<M>): void;
  /** Every lane stopped on a misuse error: nothing more can be fetched. */
  allStopped(): void;
}

export class FetchLanes<M extends BrokerMessage> {
  readonly lanes: readonly Lane<M>[];
  readonly #host: LaneHost<M>;
  readonly #signal: AbortSignal;
  /**
   * Acks may free their slot when issued (see `BrokerSource.orderedAcks`): only with one source.
   * The promise is that the ack reaches the broker before *that source's* next fetch; a slot
   * freed early and then fetched by another source would let the brokers together hold more
   * than the cap until the ack lands.
   */
  readonly orderedAcks: boolean;
  #reserved = 0;
  #cursor = 0;
  #wake: (() => void) | undefined;
  readonly #tasks = new Set<Promise<void>>();

  /**
   * The most one fetch asks for (batch mode: the batch size). Fetching a batch at a time keeps
   * batches out of step — one is fetched while another runs or is being acked — instead of all
   * fetched together and then all acked together, each phase a round trip to wait out.
   */
  readonly #maxFetch: number;

  constructor(
    sources: readonly BrokerSource<M>[],
    host: LaneHost<M>,
    signal: AbortSignal,
    maxFetch = Number.POSITIVE_INFINITY,
  ) {
    this.#maxFetch = maxFetch;
    this.lanes = sources.map((source) => new Lane(source));
    this.#host = host;
    this.#signal = signal;
    this.orderedAcks = sources.length === 1 && sources[0]!.orderedAcks === true;
  }

  /** Hands out free slots until the consumer stops; resolves once every fetch has ended. */
  async run(): Promise<void> {
    while (!this.#host.stopping()) {
      if (this.#handOut()) continue;
      // Handlers that finished together settle in one burst of microtasks: with ordered acks,
      // let the whole burst free its slots, so one fetch asks for all of them. The `setImmediate`
      // is taken when the first slot frees, before the consumer hands that ack to the source:
      // so the fetch starts ahead of the source's own ack flush (at the same turn's
      // `setImmediate`), and the source can send the acks with its read (PostgreSQL: in one
      // statement with the claim).
      const full = this.#free() <= 0 && this.orderedAcks;
      await new Promise<void>((resolve) => {
        this.#wake = full ? () => setImmediate(resolve) : resolve;
      });
    }
    while (this.#tasks.size > 0) await Promise.all(this.#tasks);
  }

  /** Something changed (a slot freed, a fetch ended, the consumer stops): look again. */
  wake(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #free(): number {
    return this.#host.concurrency - this.#host.held() - this.#reserved;
  }

  /** Starts fetches for the free slots; false when none could start. */
  #handOut(): boolean {
    let free = this.#free();
    if (free <= 0) return false;
    const n = this.lanes.length;
    const ready: Lane<M>[] = [];
    for (let i = 0; i < n; i++) {
      const lane = this.lanes[(this.#cursor + i) % n]!;
      if (!lane.active && !lane.stopped) ready.push(lane);
    }
    if (ready.length === 0) return false;
    this.#cursor = (this.#cursor + 1) % n;
    if (n === 1) {
      // The first fetch asks for every free slot, whatever the batch size: a RabbitMQ source
      // takes that first `max` as the consumer's concurrency (its prefetch).
      const lane = ready[0]!;
      this.#start(lane, lane.fetched ? Math.min(free, this.#maxFetch) : free);
      return true;
    }
    // Water-filling: each free slot goes to the ready lane holding the fewest messages (ties:
    // this turn's order), so sources with work end up holding equal parts of the cap. A lane
    // whose last fetch was empty takes at most one slot.
    const grants = ready.map(() => 0);
    for (; free > 0; free--) {
      let pick = -1;
      for (let i = 0; i < ready.length; i++) {
        if (grants[i]! >= (ready[i]!.lastEmpty ? 1 : this.#maxFetch)) continue;
        if (pick < 0 || ready[i]!.held + grants[i]! < ready[pick]!.held + grants[pick]!) pick = i;
      }
      if (pick < 0) break;
      grants[pick]!++;
    }
    let started = false;
    ready.forEach((lane, i) => {
      if (grants[i]! === 0) return;
      this.#start(lane, grants[i]!);
      started = true;
    });
    return started;
  }

  #start(lane: Lane<M>, max: number): void {
    lane.active = true;
    lane.fetched = true;
    this.#reserved += max;
    const task = this.#fetch(lane, max).finally(() => {
      lane.active = false;
      this.#tasks.delete(task);
      this.wake();
    });
    this.#tasks.add(task);
  }

  async #fetch(lane: Lane<M>, max: number): Promise<void> {
    let messages: M[];
    lane.fetching = true;
    try {
      messages = fetchedMessages<M>(await lane.source.fetch(max, this.#signal));
    } catch (error) {
      lane.fetching = false;
      this.#reserved -= max;
      await this.#failed(lane, error);
      return;
    }
    lane.fetching = false;
    // The reservation turns into held messages in one step: the cap holds at every point.
    this.#reserved -= max;
    lane.failures = 0;
    lane.lastEmpty = messages.length === 0;
    // More than asked for (a custom source's bug): the extra are released at once, never held.
    // Spliced: `messages` is our own copy (see fetchedMessages), never the source's array.
    if (messages.length > max) this.#host.refuse(lane, messages.splice(max), max);
    lane.held += messages.length;
    this.#host.deliver(lane, messages);
    // A fetch is meant to wait for messages. One that keeps returning nothing at once (a
    // closed or broken source) must not starve the event loop: timers and signal handlers
    // (SIGTERM) still run between such calls.
    if (messages.length === 0) await new Promise((resolve) => setImmediate(resolve));
  }

  async #failed(lane: Lane<M>, error: unknown): Promise<void> {
    if (this.#host.stopping()) return;
    this.#host.fetchFailed(error, lane);
    if (isMisuse(error)) {
      // Trying again cannot help (a closed source, a prefetch above concurrency): stop this
      // lane once, rather than report the same error every 2 s for ever.
      lane.stopped = true;
      if (this.lanes.every((other) => other.stopped)) this.#host.allStopped();
      return;
    }
    // Broker down or reconnecting: back off (100 ms doubling to 2 s) instead of spinning.
    await pause(Math.min(2000, 100 * 2 ** lane.failures++), this.#signal);
  }
}

/** A fetch error that no retry can cure: the source or its options are wrong. */
function isMisuse(error: unknown): boolean {
  const code = errorStringCode(error); // a custom source's error may have a throwing getter
  return (
    code === 'ERR_INVALID_STATE' || code === 'ERR_INVALID_OPTION' || code === 'ERR_INVALID_ARGUMENT'
  );
}

/**
 * A fetch's answer as a plain array of message objects. Anything else — a custom source that
 * resolved `undefined`, an array-like, an entry that is not an object, a Proxy whose reading
 * throws — fails the fetch (ERR_INVALID_RETURN_VALUE: reported and retried), as a rejection
 * would: held and settled are never built on it. Messages it may have carried stay with the
 * broker, which delivers them again (as after a fetch whose reply was lost).
 */
function fetchedMessages<M>(value: unknown): M[] {
  let messages: M[] | undefined;
  try {
    if (Array.isArray(value)) {
      // By index, its length read once: an array's own iterator (user code) is not called —
      // it could yield other values than its entries, or never end.
      const n = (value as unknown[]).length;
      messages = [];
      for (let i = 0; i < n; i++) {
        const m: unknown = (value as unknown[])[i];
        if (typeof m !== 'object' || m === null) {
          messages = undefined;
          break;
        }
        messages.push(m as M);
      }
    }
  } catch {
    messages = undefined;
  }
  if (messages === undefined) {
    throw coded(
      new TypeError(
        "the source's fetch() must resolve with an array of message objects (a custom BrokerSource bug)",
      ),
      'ERR_INVALID_RETURN_VALUE',
    );
  }
  return messages;
}
