import { abortErrorFrom, ChannelClosedError } from './errors.js';
import { Deque } from './internal/deque.js';
import { argument, callSignal, nonNegativeInt } from './internal/options.js';
import { dismiss, park, serve, type Waiter, WaitList } from './internal/wait-list.js';

/** Options of one `send` or `receive`. */
export interface ChannelOpOptions {
  /** Cancels the wait: the promise rejects with `AbortError` and the channel is left unchanged. */
  signal?: AbortSignal;
}

interface Sender<T> extends Waiter<void> {
  value: T;
}

type Receiver<T> = Waiter<IteratorResult<T, undefined>>;

const RESOLVED: Promise<void> = Promise.resolve();
const DONE: IteratorResult<never, undefined> = Object.freeze({ done: true, value: undefined });

/**
 * A bounded FIFO channel with Go's semantics, for async code.
 *
 * - `capacity` N > 0: `send` completes at once while fewer than N values are buffered, and waits
 *   while the buffer is full (backpressure).
 * - `capacity` 0: unbuffered rendezvous, like Go's `make(chan T)`: `send` completes only when a
 *   receiver takes the value.
 * - `capacity` Infinity: unbounded — the only way to opt out of backpressure.
 *
 * `close()` stops intake; receivers still get every value buffered before it, then `done`.
 * Unlike Go, a send on a closed channel rejects with `ChannelClosedError` instead of panicking,
 * and `close()` is idempotent. Iterating with `for await` ends once the channel is closed and
 * empty. Waiting senders and receivers are served in FIFO order.
 *
 * @typeParam T - the value type.
 * @example
 * ```ts
 * const ch = new Channel<number>(8);
 * (async () => { for (let i = 0; i < 100; i++) await ch.send(i); ch.close(); })();
 * for await (const n of ch) console.log(n);
 * ```
 */
export class Channel<T> implements AsyncIterable<T> {
  readonly #capacity: number;
  readonly #buffer = new Deque<T>();
  readonly #senders = new WaitList<Sender<T>>();
  readonly #receivers = new WaitList<Receiver<T>>();
  #closed = false;

  /**
   * @param capacity - buffered values (default 0: unbuffered). A non-negative integer or Infinity;
   *   `undefined` or `null` means the default, as for every optional option of sluice.
   * @throws RangeError/TypeError when `capacity` is not a non-negative integer or Infinity.
   */
  constructor(capacity?: number | null) {
    this.#capacity = nonNegativeInt(argument('capacity'), capacity ?? 0);
  }

  /** The buffer size given at construction (0 = unbuffered). */
  get capacity(): number {
    return this.#capacity;
  }

  /** Values buffered now (not counting blocked senders). */
  get length(): number {
    return this.#buffer.length;
  }

  /** True once `close()` was called (values may still be buffered). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends `value`, waiting while the channel is full (or, unbuffered, until a receiver takes it).
   *
   * @returns a promise that resolves once the value is buffered or handed to a receiver.
   * @throws ChannelClosedError (rejection) when the channel is closed, now or while waiting.
   * @throws AbortError (rejection) when `opts.signal` aborts first; the value is not sent.
   * @throws TypeError (rejection) `ERR_INVALID_OPTION` when `opts.signal` is not an AbortSignal.
   */
  send(value: T, opts?: ChannelOpOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    try {
      signal = callSignal(opts);
    } catch (error) {
      return Promise.reject(error); // misuse of a promise-returning method rejects (README)
    }
    if (this.#closed) return Promise.reject(new ChannelClosedError());
    if (signal?.aborted) return Promise.reject(abortErrorFrom(signal));
    if (this.#offer(value)) return RESOLVED;
    return park<void, Sender<T>>(this.#senders, { value }, signal);
  }

  /**
   * Sends without waiting.
   *
   * @returns true when the value was buffered or handed to a waiting receiver; false when full.
   * @throws ChannelClosedError when the channel is closed.
   */
  trySend(value: T): boolean {
    if (this.#closed) throw new ChannelClosedError();
    return this.#offer(value);
  }

  /**
   * Receives the next value, waiting while the channel is empty and open.
   *
   * @returns `{ done: false, value }`, or `{ done: true, value: undefined }` once the channel is
   *   closed and drained.
   * @throws AbortError (rejection) when `opts.signal` aborts first; no value is taken.
   * @throws TypeError (rejection) `ERR_INVALID_OPTION` when `opts.signal` is not an AbortSignal.
   */
  receive(opts?: ChannelOpOptions): Promise<IteratorResult<T, undefined>> {
    let signal: AbortSignal | undefined;
    try {
      signal = callSignal(opts);
    } catch (error) {
      return Promise.reject(error); // misuse of a promise-returning method rejects (README)
    }
    if (signal?.aborted) return Promise.reject(abortErrorFrom(signal));
    const ready = this.tryReceive();
    if (ready) return Promise.resolve(ready);
    return park<IteratorResult<T, undefined>, Receiver<T>>(this.#receivers, {}, signal);
  }

  /**
   * Receives without waiting.
   *
   * @returns the next value as `{ done: false, value }`; `{ done: true }` when closed and empty;
   *   `undefined` when empty and still open.
   */
  tryReceive(): IteratorResult<T, undefined> | undefined {
    if (this.#buffer.length > 0) {
      const value = this.#buffer.shift() as T;
      // A slot opened: the longest-waiting sender moves its value into the buffer.
      const sender = this.#senders.shift();
      if (sender) {
        this.#buffer.push(sender.value);
        serve(sender, undefined);
      }
      return { done: false, value };
    }
    const sender = this.#senders.shift();
    if (sender) {
      serve(sender, undefined);
      return { done: false, value: sender.value };
    }
    return this.#closed ? DONE : undefined;
  }

  /**
   * Closes the channel: later sends, and sends waiting now, reject with `ChannelClosedError`;
   * buffered values are still delivered; receivers waiting on an empty channel get `done`.
   * Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (let s = this.#senders.shift(); s; s = this.#senders.shift()) {
      dismiss(s, new ChannelClosedError('channel closed while the send was waiting'));
    }
    // Receivers only wait on an empty buffer, so they all get `done` now.
    for (let r = this.#receivers.shift(); r; r = this.#receivers.shift()) serve(r, DONE);
  }

  /**
   * Iterates until the channel is closed and empty. Breaking out does not close the channel.
   * `return()` while a `next()` waits on an empty channel ends that wait with `done` and takes
   * no value, so a consumer that stops (a runPool abort) never swallows a value sent later.
   * Written by hand: an async generator would queue `return()` behind the waiting `next()`.
   */
  [Symbol.asyncIterator](): AsyncIterator<T, undefined> & AsyncIterable<T> {
    let finished = false;
    /** This iterator's waits, so that return() can end them. */
    const waits = new Set<Receiver<T>>();
    const settle = (result: IteratorResult<T, undefined>): IteratorResult<T, undefined> => {
      if (result.done) finished = true;
      return result;
    };
    const iterator = {
      next: (): Promise<IteratorResult<T, undefined>> => {
        if (finished) return Promise.resolve(DONE);
        const ready = this.tryReceive();
        if (ready) return Promise.resolve(settle(ready));
        return new Promise((resolve, reject) => {
          const node: Receiver<T> = {
            resolve: (result) => {
              waits.delete(node);
              resolve(settle(result));
            },
            reject,
            unsubscribe: undefined,
            prev: undefined,
            next: undefined,
            linked: false,
          };
          waits.add(node);
          this.#receivers.push(node);
        });
      },
      return: (): Promise<IteratorResult<T, undefined>> => {
        finished = true;
        for (const node of waits) {
          this.#receivers.remove(node);
          node.resolve(DONE);
        }
        return Promise.resolve(DONE);
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /** Hands `value` to a waiting receiver or buffers it; false when neither is possible. */
  #offer(value: T): boolean {
    const receiver = this.#receivers.shift();
    if (receiver) {
      serve(receiver, { done: false, value });
      return true;
    }
    if (this.#buffer.length < this.#capacity) {
      this.#buffer.push(value);
      return true;
    }
    return false;
  }
}
