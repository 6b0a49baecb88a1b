/**
 * Pull requests for one durable JetStream consumer, with the process's holdings bounded.
 * Internal to `sluice/nats`.
 *
 * A JetStream pull request for `n` messages stays open on the server until `n` messages were
 * delivered or it expires, and messages keep arriving for it after we hand the first ones to the
 * consumer loop. So we keep at most one request open, ask only for `max - buffered - credit`
 * (credit = messages the open request may still deliver), and return as soon as anything is
 * buffered. Because the loop's `max` is its number of free slots, running + buffered + credit
 * never exceeds the loop's concurrency: the documented constant for NATS is 0.
 *
 * @module
 */
import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { sleep, wakeAll } from '../sleep.js';

/** After a pull failed (e.g. while disconnected), wait this long (ms) before the next one. */
const RETRY_PAUSE = 250;
/** A pull older than `expires` plus this (ms) is presumed lost (e.g. the server restarted). */
const LOST_PULL_GRACE = 5_000;

/** A delivered message and when it arrived (`performance.now()`): its ack_wait started earlier. */
export interface Arrival {
  readonly raw: JsMsg;
  readonly at: number;
}

export class NatsPuller {
  readonly #consumer: Consumer;
  readonly #expires: number;
  readonly #buffer: Arrival[] = [];
  #pull: ConsumerMessages | undefined;
  #pulling = false;
  #pullStarted = 0;
  #credit = 0;
  #retryAt = 0;
  readonly #wakers = new Set<() => void>();
  #closed = false;
  /** The open pull's delivery loop (never rejects). */
  #running: Promise<void> = Promise.resolve();
  /** The last error a pull ended with (kept for diagnostics, never thrown at the loop). */
  lastError: unknown;

  constructor(consumer: Consumer, expires: number) {
    this.#consumer = consumer;
    this.#expires = expires;
  }

  /** Messages delivered by the server and not yet handed out. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** Waits up to `fetchWait` ms (never past `signal`) for messages; returns at most `max`. */
  async take(max: number, signal: AbortSignal, fetchWait: number): Promise<Arrival[]> {
    if (max <= 0) return [];
    const deadline = Date.now() + fetchWait;
    while (this.#buffer.length === 0 && !signal.aborted && !this.#closed) {
      const now = Date.now();
      if (now >= deadline) break;
      this.#dropLostPull(now);
      if (!this.#pulling && now >= this.#retryAt) this.#start(max - this.#credit);
      // Woken early by a delivery, the end of the pull, or the signal.
      await sleep(
        (this.#pulling ? deadline : Math.min(deadline, this.#retryAt)) - now,
        signal,
        this.#wakers,
      );
    }
    // The loop stopped waiting (closing, usually): pull nothing more that it will not take.
    if (signal.aborted) this.stopPull();
    return this.#buffer.splice(0, max);
  }

  /**
   * Ends the open pull. Gracefully (the default) it drains the pull's subscription: `UNSUB`, then
   * a round trip, and every message the server sent before it saw the `UNSUB` is still received
   * and buffered (the pull's loop ends only after that), for the caller to run or release. A
   * plain close would drop those in flight, left delivered and unacked until `ack_wait`. Not
   * graceful (the connection dropped, the pull is presumed lost): close at once.
   */
  stopPull(graceful = true): void {
    const pull = this.#pull;
    this.#pull = undefined;
    if (!pull) return;
    // The subscription is the client's private field: the public API has no drain for a pull.
    const sub = (pull as unknown as { sub?: { drain?: () => Promise<void> } }).sub;
    if (graceful && typeof sub?.drain === 'function') {
      sub.drain().catch(() => pull.close().catch(() => {}));
    } else {
      void pull.close().catch(() => {});
    }
  }

  /**
   * Stops pulling for good and returns whatever was buffered, for the caller to release. Waits
   * for the open pull to end first: messages the server sent before it saw the pull close
   * still arrive, and would otherwise sit unacknowledged until ack_wait.
   */
  async close(): Promise<Arrival[]> {
    this.#closed = true;
    this.stopPull();
    wakeAll(this.#wakers);
    await this.#running;
    return this.#buffer.splice(0);
  }

  #start(n: number): void {
    if (n <= 0) return;
    this.#pulling = true;
    this.#credit = n;
    this.#pullStarted = Date.now();
    this.#running = this.#run(n).finally(() => {
      this.#pulling = false;
      this.#credit = 0;
      this.#pull = undefined;
      wakeAll(this.#wakers);
    });
  }

  async #run(n: number): Promise<void> {
    try {
      const pull = await this.#consumer.fetch({ max_messages: n, expires: this.#expires });
      this.#pull = pull;
      if (this.#closed) this.stopPull();
      for await (const m of pull) {
        this.#credit--;
        this.#buffer.push({ raw: m, at: performance.now() });
        wakeAll(this.#wakers);
      }
    } catch (err) {
      this.lastError = err;
      this.#retryAt = Date.now() + RETRY_PAUSE;
    }
  }

  #dropLostPull(now: number): void {
    if (this.#pulling && now - this.#pullStarted > this.#expires + LOST_PULL_GRACE) {
      this.stopPull(false);
    }
  }
}
