/**
 * Batch mode of `consume()`: collecting fetched messages into batches, and reading a batch
 * handler's per-message outcomes. Internal to the consumer.
 *
 * A batch is handed over when it holds `size` messages, or `maxWait` ms after its first message
 * arrived (with `maxWait` 0: at the end of the fetch that brought it). Messages waiting in the
 * open batch are held (they count against `concurrency`), so the flow-control bound is the same
 * as one message at a time: held <= concurrency.
 *
 * @module
 */

import { coded, invalidOption, positiveInt } from '../internal/options.js';
import { nonNegative } from './consumer-options.js';
import type { BatchOptions } from './consumer-types.js';

/** The checked `batch` option. */
export interface BatchShape {
  readonly size: number;
  readonly maxWait: number;
}

/** Checks the `batch` option against `concurrency`; undefined when absent. */
export function batchShape(batch: unknown, concurrency: number): BatchShape | undefined {
  if (batch == null) return undefined;
  if (typeof batch !== 'object') invalidOption('batch', batch, 'an object { size, maxWait? }');
  const { size, maxWait } = batch as BatchOptions;
  const checked = positiveInt('batch.size', size);
  if (checked > concurrency) {
    // A batch that can never fill would only ever be handed over by its timer.
    invalidOption('batch.size', size, `an integer from 1 to concurrency (${concurrency})`, true);
  }
  return { size: checked, maxWait: nonNegative('batch.maxWait', maxWait ?? 0, 'ms') };
}

/** Collects items into batches of `size`, handing each over full or after `maxWait` ms. */
export class BatchCollector<I> {
  readonly #shape: BatchShape;
  readonly #dispatch: (items: I[]) => void;
  #open: I[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(shape: BatchShape, dispatch: (items: I[]) => void) {
    this.#shape = shape;
    this.#dispatch = dispatch;
  }

  add(item: I): void {
    this.#open.push(item);
    if (this.#open.length >= this.#shape.size) this.flush();
    else if (this.#open.length === 1 && this.#shape.maxWait > 0) {
      this.#timer = setTimeout(() => this.flush(), this.#shape.maxWait);
    }
  }

  /** A fetch's messages were all added: with `maxWait` 0, hand over what is there now. */
  fetched(): void {
    if (this.#shape.maxWait === 0) this.flush();
  }

  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const items = this.#open;
    if (items.length === 0) return;
    this.#open = [];
    this.#dispatch(items);
  }

  /** Takes back the open batch (at drain: its messages never started). */
  take(): I[] {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const items = this.#open;
    this.#open = [];
    return items;
  }
}

/** The failure of an item a returned outcome map does not mention. */
export function missingOutcome(): Error {
  return new Error(
    'the batch handler returned outcomes without one for this message (an unlisted message counts as failed)',
  );
}

const mapHas = Map.prototype.has;
const mapGet = Map.prototype.get;

/**
 * One item's outcome from what the batch handler returned: `undefined` = all succeeded, a Map =
 * as stated (unlisted or not `true`/an Error = failed); anything else fails every item. A Map is
 * read by its entries, with the built-in `has`/`get` (a subclass's overrides are not called),
 * and a value whose inspection throws (a Proxy: its traps, or a Map's methods on it) fails the
 * item with ERR_INVALID_RETURN_VALUE instead of throwing out of the consumer.
 */
export function outcomeOf(returned: unknown, item: object): Error | undefined {
  if (returned === undefined) return undefined;
  try {
    if (!(returned instanceof Map)) {
      return coded(
        new TypeError(
          'a batch handler must return undefined (all succeeded) or a Map of item → true | Error',
        ),
        'ERR_INVALID_RETURN_VALUE',
      );
    }
    if (!mapHas.call(returned, item)) return missingOutcome();
    const outcome: unknown = mapGet.call(returned, item);
    if (outcome === true) return undefined;
    if (outcome instanceof Error) return outcome;
  } catch (error) {
    return coded(
      new TypeError(
        'a batch handler returned a value whose reading threw: expected undefined or a Map of item → true | Error',
        { cause: error },
      ),
      'ERR_INVALID_RETURN_VALUE',
    );
  }
  return coded(
    new TypeError('a batch outcome must be true (succeeded) or an Error (failed)'),
    'ERR_INVALID_RETURN_VALUE',
  );
}
