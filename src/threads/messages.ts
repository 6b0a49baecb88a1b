/**
 * The wire protocol between a ThreadPool and its threads, and how errors cross it. Internal.
 *
 * Jobs travel in batches (one `postMessage` for several queued jobs), and so do their results
 * (see outbox.ts for when a thread sends them).
 *
 * Each thread shares one `Int32Array` cell with the pool, the *cursor*: the sequence number of
 * the next job the thread may start. The thread claims job `s` with
 * `compareExchange(cursor, s, s + 1)`; the pool takes back jobs that have not started by moving
 * the cursor past them. So both sides always agree on which jobs started, without a message.
 * When the pool has a timeout, the thread also writes the start time of each job it is about to
 * claim to a second cell (a `Float64Array` at byte 8, ms since the epoch), before the claim: a
 * job's clock then starts when it does.
 *
 * A third cell, *progress* (an `Int32Array` cell at byte 4), is the sequence number after the
 * last job that finished: the thread writes it once a job's outcome is known, whether or not its
 * result has left the thread yet. It is read when the thread is gone: a started job below it
 * finished (its result died with the thread if it never arrived), the one at it was running.
 *
 * @module
 */
import type { MessagePort } from 'node:worker_threads';
import { JobFailedError } from '../errors.js';
import { formatValue } from '../internal/format-value.js';

/** Pool → thread: run these jobs, in order, with sequence numbers `seq`, `seq + 1`, … */
export interface RunMessage {
  t: 'run';
  seq: number;
  jobs: unknown[];
  /**
   * The Pool's job index of the first job (the thread's `ctx.index`); the others follow it
   * (`index + i`) unless `indexes` is given.
   */
  index: number;
  /** The index of each job, when they do not follow one another (rare: a retry, a job taken back). */
  indexes?: number[];
}

/** Pool → thread: abort the signal of job `seq` (if it is running). */
export interface CancelMessage {
  t: 'cancel';
  seq: number;
  reason: SerializedError;
}

export type ToThread = RunMessage | CancelMessage;

/** Thread → pool. */
export type FromThread =
  | { t: 'ready' }
  /** The module could not be loaded. `permanent` when retrying cannot help (no function export). */
  | { t: 'init-failed'; error: SerializedError; permanent: boolean }
  | { t: 'ok'; seq: number; value: unknown }
  | { t: 'err'; seq: number; error: SerializedError }
  /**
   * The outcomes of jobs `seq`, `seq + 1`, …: `values[i]` is job `seq + i`'s value, or its
   * SerializedError when `i` is listed in `failed` (ascending). `busy`: ms the thread spent on
   * them (from when it began working on them, or on the batch they came in, to this message):
   * the pool's batch sizer counts the gap between results at most 1 ms more than that, so a
   * stall of the main thread does not make tiny jobs look long.
   */
  | { t: 'results'; seq: number; values: unknown[]; failed: number[]; busy: number }
  /**
   * A `run` message could not be decoded in the thread (its `messageerror`), so none of its jobs
   * started. `seq` is where it began: the end of the last `run` message that was decoded.
   */
  | { t: 'undecodable'; seq: number; error: SerializedError };

/** What the pool passes to a new thread as `workerData`. */
export interface ThreadData {
  /** The worker module, as a `file:` URL. */
  module: string;
  /** The thread's slot number (its `ctx.workerId`). */
  id: number;
  /** Backing store of the cursor, progress and start-time cells (see the module comment). */
  cursor: SharedArrayBuffer;
  /** The pool has a timeout: write each job's start time before claiming it. */
  timed: boolean;
  /** The thread's end of its channel to the pool (jobs in, results out). */
  port: MessagePort;
}

/** An error flattened for `postMessage`: an `Error` subclass's identity does not survive it. */
export interface SerializedError {
  /** `true` when the thrown value was an Error; otherwise `value` holds the thrown value. */
  isError: boolean;
  name: string;
  message: string;
  stack: string | undefined;
  /** Enumerable own properties (`code`, `errno`, …) that survive structured cloning. */
  props: Record<string, unknown>;
  cause?: SerializedError;
  value?: unknown;
}

const BUILTIN: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/**
 * Flattens anything thrown. Total: never throws itself, whatever `thrown` is — a revoked Proxy,
 * a Proxy whose traps throw, an Error whose `message`/`name`/`stack` getters throw. A value that
 * cannot be inspected or cloned becomes its text ({@link formatValue}, which never throws); an
 * Error some of whose parts cannot be read keeps the parts that can.
 */
export function serializeError(thrown: unknown, depth = 0): SerializedError {
  let isError: boolean;
  try {
    isError = thrown instanceof Error;
  } catch {
    // `instanceof` reads the prototype: a revoked Proxy (or a throwing trap) ends here.
    isError = false;
  }
  if (!isError) return opaque(thrown);
  try {
    return serializeErrorParts(thrown as Error, depth);
  } catch {
    return { ...opaque(thrown), isError: true, message: formatValue(thrown) };
  }
}

function serializeErrorParts(thrown: Error, depth: number): SerializedError {
  const props: Record<string, unknown> = {};
  for (const key of attempt(() => Object.keys(thrown), [] as string[])) {
    if (key === 'cause') continue;
    const value = attempt(() => (thrown as unknown as Record<string, unknown>)[key], undefined);
    if (isPlain(value)) props[key] = value;
  }
  // A subclass usually leaves `name` as 'Error'; the constructor's name is the class name.
  const name = text(attempt(() => thrown.name, undefined)) ?? 'Error';
  const className =
    name !== 'Error' ? name : (text(attempt(() => thrown.constructor?.name, undefined)) ?? 'Error');
  const out: SerializedError = {
    isError: true,
    name: className,
    message: attempt(() => {
      const message: unknown = thrown.message;
      return typeof message === 'string' ? message : formatValue(message);
    }, "(the thrown error's message could not be read)"),
    stack: text(attempt(() => thrown.stack, undefined)),
    props,
  };
  const cause = attempt(() => thrown.cause, undefined);
  if (cause !== undefined && depth < 4) out.cause = serializeError(cause, depth + 1);
  return out;
}

/** A thrown value that is not an Error (or cannot be read as one): sent as itself, or its text. */
function opaque(thrown: unknown): SerializedError {
  return {
    isError: false,
    name: 'Error',
    message: '',
    stack: undefined,
    props: {},
    value: cloneable(thrown),
  };
}

/**
 * One line about a thrown value for a message: `Name: message` for an Error, else
 * {@link formatValue}'s text. Never throws.
 */
export function describeThrown(thrown: unknown): string {
  return attempt(() => {
    if (!(thrown instanceof Error)) return formatValue(thrown);
    const described = String(thrown);
    return typeof described === 'string' ? described : formatValue(thrown);
  }, formatValue(thrown));
}

function attempt<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * Rebuilds an error on this side: built-in classes are re-created, any other class becomes an
 * `Error` whose `name` is the original class name. Message, stack and plain props are kept.
 */
export function deserializeError(data: SerializedError): Error {
  if (!data.isError) return new JobFailedError(data.value);
  const Ctor = BUILTIN[data.name] ?? Error;
  const error = new Ctor(data.message);
  if (error.name !== data.name) {
    Object.defineProperty(error, 'name', { value: data.name, configurable: true, writable: true });
  }
  Object.defineProperty(error, 'stack', { value: data.stack, configurable: true, writable: true });
  Object.assign(error, data.props);
  if (data.cause) {
    Object.defineProperty(error, 'cause', {
      value: deserializeError(data.cause),
      configurable: true,
      writable: true,
    });
  }
  return error;
}

function isPlain(value: unknown): boolean {
  const type = typeof value;
  return value === null || type === 'string' || type === 'number' || type === 'boolean';
}

/**
 * The value itself as a structured clone, or its text. The clone (not the value) is what gets
 * posted: cloning the value again could run its getters again, and they may throw this time.
 */
function cloneable(value: unknown): unknown {
  try {
    return structuredClone(value);
  } catch {
    return formatValue(value);
  }
}

/**
 * Throws a `DataCloneError` when `transfer` lists an `ArrayBuffer` that was already moved away
 * (transferred before). Node 20's `postMessage` does not refuse one: the receiver would get an
 * empty buffer instead of the job's data. A detached buffer has length 0 and refuses `slice`;
 * `detached` (ES2024) answers directly where the runtime has it.
 */
export function assertAttached(transfer: readonly unknown[]): void {
  for (const item of transfer) {
    if (!(item instanceof ArrayBuffer) || item.byteLength !== 0) continue;
    const flag = (item as { detached?: boolean }).detached;
    let detached = flag === true;
    if (flag === undefined) {
      try {
        item.slice(0, 0);
      } catch {
        detached = true;
      }
    }
    if (detached) {
      throw new DOMException(
        'an ArrayBuffer in the transfer list is detached (already transferred)',
        'DataCloneError',
      );
    }
  }
}
