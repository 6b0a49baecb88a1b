/**
 * The transfer-list item type, derived from `Worker.postMessage` rather than imported by
 * name: @types/node 26 dropped `TransferListItem` (its lists are of `Transferable`, and the
 * second parameter may also be options), so a name import breaks a user's type check with
 * `skipLibCheck: false` on one version or the other.
 *
 * @module
 */
import type { Worker } from 'node:worker_threads';

/** What a transfer list may hold (`ArrayBuffer`, `MessagePort`, …), as `postMessage` takes it. */
export type TransferListItem = Extract<
  Parameters<Worker['postMessage']>[1],
  readonly unknown[]
>[number];
