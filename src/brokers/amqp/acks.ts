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

interface Waiter {
  readonly msg: ConsumeMessage;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class AckCoalescer {
  /** Channel the tracked tags belong to: a new channel (after a reconnect) starts over. */
  #channel: Channel | undefined;
  /** Deliveries handed out and not settled yet, by tag, oldest first (Map keeps insertion order). */
  readonly #open = new Map<number, ConsumeMessage>();
  /** Acks asked for this turn, by tag. */
  #pending = new Map<number, Waiter>();
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
      this.#pending.set(msg.fields.deliveryTag, {
        msg,
        resolve,
        reject: () => reject(lost()),
      });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    this.#pending = new Map();
    const channel = this.#channel;
    if (!channel || !this.#live(channel)) {
      for (const waiter of pending.values()) waiter.reject(undefined);
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
      for (const [tag, waiter] of pending) {
        if (tag <= covered) continue;
        this.#open.delete(tag);
        channel.ack(waiter.msg);
      }
    } catch (error) {
      // amqplib throws when the channel closed under us: nothing was acked that matters (the
      // broker requeues the channel's unacked deliveries).
      for (const waiter of pending.values()) waiter.reject(error);
      return;
    }
    for (const waiter of pending.values()) waiter.resolve();
  }
}
