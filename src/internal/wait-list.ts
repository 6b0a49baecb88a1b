import { abortErrorFrom } from '../errors.js';
import { onAbort } from './abort-fanout.js';

/**
 * An intrusive doubly linked FIFO for waiters (blocked senders, receivers, submitters): O(1)
 * append, shift and removal of an aborted waiter from the middle, so a waiter canceled by its
 * signal leaves nothing behind. Internal.
 */
export interface WaitNode {
  prev: WaitNode | undefined;
  next: WaitNode | undefined;
  /** false once removed, so a second removal is a no-op. */
  linked: boolean;
}

export class WaitList<N extends WaitNode> {
  #head: N | undefined;
  #tail: N | undefined;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** The oldest node, left in place. */
  get head(): N | undefined {
    return this.#head;
  }

  push(node: N): void {
    node.prev = this.#tail;
    node.next = undefined;
    node.linked = true;
    if (this.#tail) this.#tail.next = node;
    else this.#head = node;
    this.#tail = node;
    this.#length++;
  }

  shift(): N | undefined {
    const node = this.#head;
    if (node) this.remove(node);
    return node;
  }

  remove(node: N): void {
    if (!node.linked) return;
    if (node.prev) node.prev.next = node.next;
    else this.#head = node.next as N | undefined;
    if (node.next) node.next.prev = node.prev;
    else this.#tail = node.prev as N | undefined;
    node.prev = node.next = undefined;
    node.linked = false;
    this.#length--;
  }
}

/** A parked caller: a promise's settle functions, and its listener on the caller's signal. */
export interface Waiter<V> extends WaitNode {
  resolve: (value: V) => void;
  reject: (error: Error) => void;
  unsubscribe: (() => void) | undefined;
}

/**
 * Parks a caller at the end of `list` until it is served (see {@link serve}) or its `signal`
 * aborts — then it leaves the list and the promise rejects with the signal's `AbortError`.
 * `fields` are the waiter's own data (the value to send, the job to submit, …).
 */
export function park<V, N extends Waiter<V>>(
  list: WaitList<N>,
  fields: Omit<N, keyof Waiter<V>>,
  signal: AbortSignal | undefined,
): Promise<V> {
  return new Promise<V>((resolve, reject) => {
    const node = {
      ...fields,
      resolve,
      reject,
      unsubscribe: undefined,
      prev: undefined,
      next: undefined,
      linked: false,
    } as N;
    list.push(node);
    if (signal) {
      node.unsubscribe = onAbort(signal, () => {
        list.remove(node);
        reject(abortErrorFrom(signal));
      });
    }
  });
}

/**
 * {@link park} for a waiter the caller built whole (a class instance: one fixed shape, no object
 * spread per waiter — the hot path of a pool whose submits wait for room). Its `resolve` and
 * `reject` are set here.
 */
export function parkNode<V, N extends Waiter<V>>(
  list: WaitList<N>,
  node: N,
  signal: AbortSignal | undefined,
): Promise<V> {
  return new Promise<V>((resolve, reject) => {
    node.resolve = resolve;
    node.reject = reject;
    list.push(node);
    if (signal) {
      node.unsubscribe = onAbort(signal, () => {
        list.remove(node);
        reject(abortErrorFrom(signal));
      });
    }
  });
}

/**
 * Marks a waiter taken off its list as being served: its signal can no longer cancel it. Call
 * it before computing the value when that runs user code (a Pool starting the submitted job,
 * whose worker may abort the very signal the submit was given): the waiter was accepted.
 */
export function claim<V>(waiter: Waiter<V>): void {
  waiter.unsubscribe?.();
  waiter.unsubscribe = undefined;
}

/** Settles a waiter taken off its list: drops its signal listener, then resolves it. */
export function serve<V>(waiter: Waiter<V>, value: V): void {
  waiter.unsubscribe?.();
  waiter.resolve(value);
}

/** Rejects a waiter taken off its list (e.g. at close), dropping its signal listener. */
export function dismiss<V>(waiter: Waiter<V>, error: Error): void {
  waiter.unsubscribe?.();
  waiter.reject(error);
}
