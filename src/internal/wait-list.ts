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
