/**
 * Operating dead letters: one {@link DeadLetters} interface over the four brokers' dead-letter
 * stores (Redis `<stream>:dead`, NATS `<stream>_DEAD`, RabbitMQ `<queue>.dead`, PostgreSQL
 * `<table>_dead`), to list them, replay them to their queue and purge them. Each broker's
 * implementation is in its broker's folder (`redis/dead-letters.ts`, …) and exported from its subpath.
 *
 * Shared semantics (each broker's file says how it keeps them, and its limits):
 * - **list**: pages, newest failure first; `cursor` is opaque, taken from the previous page.
 * - **replay**: at-least-once. A letter is copied back to the queue first and removed from the
 *   dead letters only after the broker confirmed the copy, so a replay interrupted at any point
 *   (even by SIGKILL) loses nothing: each letter is still dead, or queued, or (in the gap between
 *   the two steps) both — a duplicate, which at-least-once consumers already handle. The copy is
 *   a new message: its delivery count starts again at 1, so `maxDeliveries` applies afresh.
 *   Redis and PostgreSQL do both steps in one atomic step per 100 letters (no duplicates);
 *   NATS and RabbitMQ cannot, and may duplicate the batch a kill interrupted.
 * - **purge**: deletes letters for good and says how many.
 *
 * @module
 */

import { invalidArgument, invalidOption, numberAtLeast } from '../internal/options.js';
import { SOURCE_DEFAULTS } from './source-options.js';

/** One dead letter, as {@link DeadLetters.list} shows it. */
export interface DeadLetter {
  /** The letter's id in the dead-letter store: pass it to `replay([id])` / `purge([id])`. */
  readonly id: string;
  /** The failed message's id in its queue (entry id, stream sequence, row id), when known. */
  readonly messageId: string | undefined;
  /**
   * The message body: its raw bytes as the broker delivered them, before `decode` (a `Buffer`
   * on Node; `JSON.parse(new TextDecoder().decode(body))` for the default JSON decoding).
   */
  readonly body: Uint8Array;
  /** The last error's message (cut to 4096 characters when written). */
  readonly error: string;
  /** The last error's `code` (or its class name when it had none), when recorded. */
  readonly code: string | undefined;
  /** Deliveries the message had when it was dead-lettered (the last one included). */
  readonly attempts: number;
  /**
   * When its first delivery failed. `undefined` where the broker keeps no such record (NATS
   * JetStream, and letters written before this field existed); equal to `lastFailedAt` for a
   * message that failed only once.
   */
  readonly firstFailedAt: Date | undefined;
  /** When it was dead-lettered (its last failure). */
  readonly lastFailedAt: Date;
}

/** One page of {@link DeadLetters.list}. */
export interface DeadLetterPage {
  /** At most `limit` letters, newest failure first. */
  readonly letters: DeadLetter[];
  /** Pass it as `cursor` for the next page; `undefined` on the last page. */
  readonly next: string | undefined;
}

/** Options of {@link DeadLetters.list}. */
export interface DeadLetterListOptions {
  /** Letters per page, 1 to 1000. @default 50 */
  limit?: number;
  /** `next` of the previous page; absent for the first (newest) page. */
  cursor?: string;
}

/** Which letters a filter selects: all of the given conditions hold. */
export interface DeadLetterFilter {
  /** The error code equals this. */
  code?: string;
  /** The error message contains this text, or matches this expression. */
  error?: string | RegExp;
  /** Dead-lettered at or after this time. */
  failedAfter?: Date;
  /** Dead-lettered before this time. */
  failedBefore?: Date;
  /** Any other condition, on the letter as `list` shows it. */
  where?: (letter: DeadLetter) => boolean;
}

/** What `replay` / `purge` act on: every letter, letters by id, or letters a filter selects. */
export type DeadLetterSelection = 'all' | readonly string[] | DeadLetterFilter;

/**
 * The dead letters of one queue. Create one with `redisDeadLetters`, `natsDeadLetters`,
 * `amqpDeadLetters` or `postgresDeadLetters` (from the broker's subpath).
 *
 * @example
 * ```ts
 * const dead = await redisDeadLetters({ stream: 'jobs' });
 * const { letters, next } = await dead.list({ limit: 20 });
 * await dead.replay({ code: 'ETIMEDOUT' });
 * await dead.close();
 * ```
 */
export interface DeadLetters {
  /**
   * One page of letters, newest failure first.
   * @throws TypeError/RangeError `ERR_INVALID_OPTION` for a bad `limit` or a cursor this
   *   broker did not make, `ERR_INVALID_ARGUMENT` for `options` that is not an object.
   */
  list(options?: DeadLetterListOptions): Promise<DeadLetterPage>;
  /**
   * Puts the selected letters back on the queue (at-least-once: copy, confirm, then remove; see
   * the module doc) as new messages whose delivery count starts at 1.
   * @returns how many letters were replayed (ids not found are skipped).
   * @throws TypeError `ERR_INVALID_ARGUMENT` for a bad selection; the broker's error otherwise
   *   (the letters replayed before it stay replayed).
   */
  replay(which: DeadLetterSelection): Promise<number>;
  /**
   * Deletes the selected letters for good.
   * @returns how many were deleted.
   */
  purge(which: DeadLetterSelection): Promise<number>;
  /** Closes the connections this object opened (one it was given stays open). */
  close(): Promise<void>;
}

/** The default and the largest page size of `list`. */
export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 1000;

/** Letters handled per broker round trip by replay and purge. */
export const BATCH = 100;

/**
 * `connectTimeout` of a dead-letters factory, checked (ms, as for the sources), with the
 * sources' default.
 */
export function connectTimeoutOption(value: unknown): number {
  return (
    numberAtLeast('connectTimeout', value, 1, { unit: 'ms' }) ?? SOURCE_DEFAULTS.connectTimeout
  );
}

/** `list`'s options, checked: `{ limit, cursor }`. */
export function listOptions(options: DeadLetterListOptions | undefined): {
  limit: number;
  cursor: string | undefined;
} {
  // null means the defaults, as for every optional argument and option (README).
  if (options != null && typeof options !== 'object') {
    invalidArgument('options', options, 'an object or undefined');
  }
  // Fields of an options object are options (ERR_INVALID_OPTION), as everywhere.
  const limit = numberAtLeast('limit', options?.limit, 1, { integer: true }) ?? DEFAULT_PAGE;
  if (limit > MAX_PAGE) invalidOption('limit', limit, `an integer from 1 to ${MAX_PAGE}`, true);
  const cursor = options?.cursor ?? undefined;
  if (cursor !== undefined && (typeof cursor !== 'string' || cursor === '')) {
    invalidOption('cursor', cursor, 'a non-empty string from a previous page');
  }
  return { limit, cursor };
}

/** Throws the error for a cursor that this broker's `list` could not have made. */
export function badCursor(cursor: string): never {
  return invalidOption('cursor', cursor, 'a cursor returned by list() of this broker');
}

/** A selection, checked and normalised. */
export type Selection =
  | { kind: 'all' }
  | { kind: 'ids'; ids: string[] }
  | { kind: 'filter'; test: (letter: DeadLetter) => boolean };

/**
 * Checks `which` (`'all'`, an array of ids, or a filter object). A filter is the value of the
 * positional argument `which`, not an options object: its misuse is `ERR_INVALID_ARGUMENT`,
 * named `which.<key>`.
 * @throws TypeError `ERR_INVALID_ARGUMENT` naming the bad part.
 */
export function selection(which: DeadLetterSelection): Selection {
  if (which === 'all') return { kind: 'all' };
  if (Array.isArray(which)) {
    for (const id of which) {
      if (typeof id !== 'string' || id === '')
        invalidArgument('which', id, 'ids that are non-empty strings');
    }
    return { kind: 'ids', ids: [...new Set<string>(which)] };
  }
  if (typeof which !== 'object' || which === null) {
    invalidArgument('which', which, "'all', an array of ids or a filter object");
  }
  const f = which as DeadLetterFilter;
  const known = new Set(['code', 'error', 'failedAfter', 'failedBefore', 'where']);
  for (const key of Object.keys(f)) {
    if (!known.has(key)) invalidArgument('which', key, `a filter key (${[...known].join(', ')})`);
  }
  if (f.code !== undefined && typeof f.code !== 'string')
    invalidArgument('which.code', f.code, 'a string');
  if (f.error !== undefined && typeof f.error !== 'string' && !(f.error instanceof RegExp)) {
    invalidArgument('which.error', f.error, 'a string or a RegExp');
  }
  for (const key of ['failedAfter', 'failedBefore'] as const) {
    const at = f[key];
    if (at !== undefined && !(at instanceof Date && Number.isFinite(at.getTime()))) {
      invalidArgument(`which.${key}`, at, 'a valid Date');
    }
  }
  if (f.where !== undefined && typeof f.where !== 'function') {
    invalidArgument('which.where', f.where, 'a function');
  }
  return { kind: 'filter', test: (letter) => matches(letter, f) };
}

function matches(letter: DeadLetter, f: DeadLetterFilter): boolean {
  if (f.code !== undefined && letter.code !== f.code) return false;
  if (typeof f.error === 'string' && !letter.error.includes(f.error)) return false;
  if (f.error instanceof RegExp) {
    f.error.lastIndex = 0; // a /g or /y expression keeps state between calls
    if (!f.error.test(letter.error)) return false;
  }
  const at = letter.lastFailedAt.getTime();
  if (f.failedAfter !== undefined && at < f.failedAfter.getTime()) return false;
  if (f.failedBefore !== undefined && at >= f.failedBefore.getTime()) return false;
  return f.where === undefined || f.where(letter) === true;
}

/** What {@link eachSelected} needs from a broker whose store can be paged and read by id. */
export interface PagedStore {
  page(limit: number, cursor: string | undefined): Promise<DeadLetterPage>;
  /** The letters among `ids` that exist (any order). */
  byIds(ids: string[]): Promise<DeadLetter[]>;
}

/**
 * Walks the selected letters in batches of {@link BATCH} (newest first; by ids: in the order
 * given) and hands each batch to `act`, which returns how many it handled. Keyset cursors stay
 * valid while `act` removes letters already seen. Returns the sum.
 */
export async function eachSelected(
  store: PagedStore,
  which: Selection,
  act: (letters: DeadLetter[]) => Promise<number>,
): Promise<number> {
  let done = 0;
  if (which.kind === 'ids') {
    for (let i = 0; i < which.ids.length; i += BATCH) {
      const found = await store.byIds(which.ids.slice(i, i + BATCH));
      if (found.length > 0) done += await act(found);
    }
    return done;
  }
  let cursor: string | undefined;
  do {
    const page = await store.page(BATCH, cursor);
    const chosen = which.kind === 'all' ? page.letters : page.letters.filter(which.test);
    if (chosen.length > 0) done += await act(chosen);
    cursor = page.next;
  } while (cursor !== undefined);
  return done;
}

/** A time from milliseconds since the epoch as stored (a string or number), if it is one. */
export function dateFromMs(value: unknown): Date | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const ms = Number(value);
  return Number.isFinite(ms) && ms > 0 ? new Date(ms) : undefined;
}
