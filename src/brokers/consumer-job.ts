/**
 * One message on its way through the consumer, doubling as the handler's context. Its `signal`
 * is created on first access only: an AbortController plus a listener cost more than a trivial
 * handler, and most handlers never look at the signal.
 *
 * @module
 */
import { LeaseLostError } from '../errors.js';
import { onAbort } from '../internal/abort-fanout.js';
import type { Lane } from './consumer-lanes.js';
import type { BrokerMessage } from './source.js';

/** The pool's per-job context (only `signal` is used). */
interface PoolContext {
  readonly signal: AbortSignal;
}

/**
 * A decoded message submitted to the pool; also the `HandlerContext` the handler receives, and
 * in batch mode the `BatchItem`.
 */
export class ConsumerJob<T, M extends BrokerMessage> {
  readonly message: M;
  readonly payload: T;
  /** @internal The source it came from, which settles it. */
  readonly lane: Lane<M>;
  #pool: PoolContext | undefined;
  #controller: AbortController | undefined;
  #leaseLost = false;

  constructor(message: M, payload: T, lane: Lane<M>) {
    this.message = message;
    this.payload = payload;
    this.lane = lane;
  }

  /**
   * Aborted when the pool cancels the job (timeout, drain deadline, abort) or the broker says
   * the message is no longer ours.
   */
  get signal(): AbortSignal {
    if (!this.#controller) {
      const controller = new AbortController();
      this.#controller = controller;
      const outer = this.#pool?.signal;
      if (this.#leaseLost) controller.abort(leaseLostError(this.message));
      else if (outer?.aborted) controller.abort(outer.reason);
      // In batch mode every item shares the batch's signal: one listener on it for them all.
      else if (outer) onAbort(outer, (reason) => controller.abort(reason));
    }
    return this.#controller.signal;
  }

  /** @internal True once a heartbeat found the message taken by another consumer. */
  get leaseLost(): boolean {
    return this.#leaseLost;
  }

  /** @internal Links the pool's context (a batch's, in batch mode) when the handler starts. */
  attach(pool: PoolContext): void {
    this.#pool = pool;
  }

  /** @internal Marks the lease lost and aborts the handler's signal (if it was ever read). */
  loseLease(): void {
    if (this.#leaseLost) return;
    this.#leaseLost = true;
    this.#controller?.abort(leaseLostError(this.message));
  }
}

/** The handler's `signal.reason` once a heartbeat found the lease lost (`ERR_LEASE_LOST`). */
function leaseLostError(message: BrokerMessage): Error {
  return new LeaseLostError(
    message.id,
    'lease renewal',
    'its lease was lost: another consumer may be handling it',
  );
}
