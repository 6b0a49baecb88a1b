/**
 * The pools that announced themselves on `sluice:pool:created`, held weakly, and their snapshots
 * summed by name for one scrape. Internal to `sluice/prometheus`.
 *
 * @module
 */
import type { PoolCreatedMessage, PoolSnapshot } from '../observability/gate-channels.js';

/** The gauges' values of every pool sharing one name, summed. */
export interface PoolGauges {
  running: number;
  queued: number;
  waitingRetry: number;
  waitingRate: number;
  waitingKey: number;
  concurrency: number;
  /** consume() only: messages held (undefined when no consumer has this name). */
  held: number | undefined;
}

/**
 * Why weak: a pool nobody closes (a service pool dropped with its owner) must not be kept alive
 * by the metrics. Its reader is a field of the pool, so the WeakRef empties with it.
 */
export class AnnouncedPools {
  readonly #byName = new Map<string, Set<WeakRef<() => PoolSnapshot>>>();
  /** The last read, kept for the rest of the turn: a scrape reads every gauge in one turn. */
  #read: Map<string, PoolGauges> | undefined;

  add(message: PoolCreatedMessage): void {
    let set = this.#byName.get(message.name);
    if (set === undefined) {
      set = new Set();
      this.#byName.set(message.name, set);
    }
    set.add(new WeakRef(message.snapshot));
  }

  /** Gauges by pool name, for pools still open or closing; finished and collected ones are dropped. */
  gauges(): Map<string, PoolGauges> {
    if (this.#read !== undefined) return this.#read;
    const read = new Map<string, PoolGauges>();
    for (const [name, set] of this.#byName) {
      for (const ref of set) {
        const snapshot = ref.deref()?.();
        if (
          snapshot === undefined ||
          snapshot.state === 'drained' ||
          snapshot.state === 'aborted'
        ) {
          set.delete(ref);
          continue;
        }
        add(read, name, snapshot);
      }
      if (set.size === 0) this.#byName.delete(name);
    }
    this.#read = read;
    queueMicrotask(() => {
      this.#read = undefined;
    });
    return read;
  }
}

function add(read: Map<string, PoolGauges>, name: string, snapshot: PoolSnapshot): void {
  let g = read.get(name);
  if (g === undefined) {
    g = {
      running: 0,
      queued: 0,
      waitingRetry: 0,
      waitingRate: 0,
      waitingKey: 0,
      concurrency: 0,
      held: undefined,
    };
    read.set(name, g);
  }
  const { stats, consumer } = snapshot;
  g.running += stats.running;
  g.queued += stats.queued;
  g.waitingRetry += stats.waiting.retry;
  g.waitingRate += stats.waiting.rate;
  g.waitingKey += stats.waiting.key;
  g.concurrency += stats.concurrency;
  if (consumer !== undefined) g.held = (g.held ?? 0) + consumer.held;
}
