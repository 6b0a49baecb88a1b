/**
 * Coalesces the acks issued within one turn of the event loop into as few `basic.ack` frames as
 * the protocol allows. Internal to `sluice/amqp`.
 *
 * AMQP 0-9-1's `multiple` flag acks every unacked delivery of the channel up to a tag, so it is
 * only valid when each of those is finished too. This tracks the deliveries handed out on the
 * current channel, in tag order (the broker numbers them upwards, and the source hands them out
 * first in, first out: a delivery not handed out yet always has a higher tag than every one that
 * was), and at the end of the turn acks the longest run of oldest deliveries that all want an
 * ack with one `multiple` frame; acks behind a delivery still running (or being retried,
 * released, dead-lettered) go out one frame each. One frame instead of 64 per burst is one
 * socket write instead of 64, which is what bounded the consumer (see BENCHMARKS.md).
 *
 * Every other settlement of a tracked delivery (nack, the ack after a republish) must call
 * {@link AckCoalescer.settled} first, so a `multiple` ack never covers it.
 *
 * @module
 */
import type { Channel, ConsumeMessage } from 'amqplib';

/** One `ack` or `ackMany` call waiting for the turn's flush (all of a flush share its fate). */
interface Waiter {
  readonly resolve: () => void;
  readonly reject: () => void;
}

export class AckCoalescer {
  /** Channel the tracked tags belong to: a new channel (after a reconnect) starts over. */
  #channel: Channel | undefined;
  /** Deliveries handed out and not settled yet, by tag, oldest first (Map keeps insertion order). */
  readonly #open = new Map<number, ConsumeMessage>();
  /** Acks asked for this turn, by tag. */
  #pending = new Map<number, ConsumeMessage>();
  /** The calls that asked for them. */
  #waiters: Waiter[] = [];
  #scheduled = false;
  /** Whether `channel` is still the link's open consumer channel (its tags can be acked). */
  readonly #live: (channel: Channel) => boolean;

  constructor(live: (channel: Channel) => boolean) {
    this.#live = live;
  }

  /** Deliveries tracked (handed out, unsettled): for tests and diagnostics. */
  get open(): number {
    return this.#open.size;
  }

  /** A delivery was handed out on `channel`: it may be covered by a multiple ack once acked. */
  track(msg: ConsumeMessage, channel: Channel): void {
    if (channel !== this.#channel) {
      // The old channel's deliveries were requeued by the broker when it closed; their
      // waiting acks fail at the flush (the channel is no longer live).
      this.#open.clear();
      this.#channel = channel;
    }
    this.#open.set(msg.fields.deliveryTag, msg);
  }

  /** `msg` was settled some other way (nack, republish + ack): no multiple ack may cover it now. */
  settled(msg: ConsumeMessage, channel: Channel | undefined): void {
    if (channel === this.#channel) this.#open.delete(msg.fields.deliveryTag);
  }

  /**
   * Acks `msg` (a delivery of `channel`, tracked) at the end of this turn; resolves once its
   * frame was handed to the channel, rejects with `lost()` if the channel closed meanwhile.
   */
  ack(msg: ConsumeMessage, channel: Channel, lost: () => Error): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (channel !== this.#channel) {
        // Not tracked (cannot happen through the source): ack it alone, at once.
        channel.ack(msg);
        resolve();
        return;
      }
      this.#pending.set(msg.fields.deliveryTag, msg);
      this.#waiters.push({ resolve, reject: () => reject(lost()) });
      this.#schedule();
    });
  }

  /**
   * `ack` for several deliveries of `channel` (tracked) with one promise: they join this turn's
   * acks (a `multiple` frame covers them where they are the oldest open deliveries).
   */
  ackMany(msgs: readonly ConsumeMessage[], channel: Channel, lost: () => Error): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (channel !== this.#channel) {
        for (const msg of msgs) channel.ack(msg);
        resolve();
        return;
      }
      for (const msg of msgs) this.#pending.set(msg.fields.deliveryTag, msg);
      this.#waiters.push({ resolve, reject: () => reject(lost()) });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    const waiters = this.#waiters;
    this.#pending = new Map();
    this.#waiters = [];
    const channel = this.#channel;
    if (!channel || !this.#live(channel)) {
      for (const waiter of waiters) waiter.reject();
      return;
    }
    try {
      // The oldest open deliveries that all want an ack: one frame with `multiple` for them.
      let last: ConsumeMessage | undefined;
      let covered = 0;
      for (const [tag, msg] of this.#open) {
        if (!pending.has(tag)) break;
        last = msg;
        covered = tag;
        this.#open.delete(tag);
      }
      if (last) channel.ack(last, true);
      // The rest sit behind a delivery still open: one frame each.
      for (const [tag, msg] of pending) {
        if (tag <= covered) continue;
        this.#open.delete(tag);
        channel.ack(msg);
      }
    } catch {
      // amqplib throws when the channel closed under us: nothing was acked that matters (the
      // broker requeues the channel's unacked deliveries).
      for (const waiter of waiters) waiter.reject();
      return;
    }
    for (const waiter of waiters) waiter.resolve();
  }
}
