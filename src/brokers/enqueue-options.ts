/**
 * What every broker's `enqueue(target, payload, options)` shares: the options, the result and
 * their checks (internal; each subpath re-exports the types). Each broker maps `delay` and `key`
 * onto its own mechanism and documents its limits on its `enqueue`.
 *
 * @module
 */
import {
  invalidArgument,
  invalidOption,
  LONE_SURROGATE,
  optionalDeadline,
  optionsObject,
} from '../internal/options.js';
import { errorMessage } from './dead-letter.js';

/** Options of every broker's `enqueue`. */
export interface EnqueueOptions {
  /**
   * Hand the job out no sooner than this many ms from now (0 = at once), at most 2147483647
   * (about 24.8 days, the longest timer; a longer delay is a `RangeError`). How late it may be
   * handed out after that is broker-specific (see each `enqueue` and the README table).
   * @default 0
   */
  delay?: number;
  /**
   * A deduplication key: while a job enqueued with this key is pending (not yet acked or
   * dead-lettered), another enqueue with the same key adds nothing and returns
   * `{ deduplicated: true }`. How long a key is held is broker-specific (on NATS, the stream's
   * duplicate window). A non-empty string of at most 256 UTF-16 code units (`key.length`), without a line break, a
   * NUL, whitespace at either end (NATS trims it: ` k` would be `k`) or a lone surrogate (it has
   * no UTF-8 form: two such keys would be stored as one). Not on RabbitMQ.
   */
  key?: string;
  /**
   * Extra metadata stored with the job. Names are 1 to 255 printable ASCII characters without
   * spaces or `:`, and those starting with `sluice-` or `nats-` (any case) are reserved (JetStream
   * acts on its `Nats-*` headers: `Nats-Msg-Id` would bypass `key`, `Nats-Expected-*` make the
   * publish conditional); values are strings without line breaks or whitespace at either end
   * (the same rule on every broker, the strictest one's: NATS, which trims values), a NUL
   * (PostgreSQL) or a lone surrogate.
   */
  headers?: Record<string, string>;
}

/** What `enqueue` did. */
export interface EnqueueResult {
  /**
   * The new job's id (stream entry id, stream sequence, row id, message id), or, when
   * deduplicated, the pending job's id where the broker tells it (else undefined).
   */
  readonly id: string | undefined;
  /** True when a pending job already held `key`: nothing was added. */
  readonly deduplicated: boolean;
}

/** {@link EnqueueOptions}, checked. */
export interface CheckedEnqueue {
  delay: number;
  key: string | undefined;
  headers: [string, string][];
}

/**
 * A header name every broker carries as given: printable ASCII without `:` (what a NATS header
 * takes; a space or a control character there is the client's uncoded error at publish), at most
 * 255 characters (an AMQP table key).
 */
const HEADER_NAME = /^[!-9;-~]{1,255}$/;

/** True for a header name `enqueue` takes (and a tracing subscriber may add). */
export function headerNameAllowed(name: string): boolean {
  return HEADER_NAME.test(name) && !/^(sluice|nats)-/i.test(name);
}

/**
 * True for text every broker stores and hands back as itself, so that two different keys stay
 * two and a header value reads back unchanged: no line break (a NATS header ends at one), no NUL
 * (PostgreSQL's text refuses it), no whitespace at either end (nats.js trims header values, so
 * the keys `k`, ` k` and `k\u00a0` were one `Nats-Msg-Id`: the second job reported deduplicated
 * and dropped) and no lone surrogate (it has no UTF-8 form: stored as U+FFFD).
 */
function storedAsItself(text: string): boolean {
  return !/[\r\n\0]/.test(text) && text.trim() === text && !LONE_SURROGATE.test(text);
}

/** True for a header value `enqueue` takes: a string every broker stores as itself. */
export function headerValueAllowed(value: unknown): value is string {
  return typeof value === 'string' && storedAsItself(value);
}

/** Longest `key`, in UTF-16 code units (`key.length`). */
export const MAX_KEY_LENGTH = 256;

/**
 * Checks `opts` (and that `target` is an object: the 0.1 signatures took the client first and
 * the queue name second).
 *
 * @throws TypeError/RangeError `ERR_INVALID_OPTION` for a bad option or field of the target,
 *   `ERR_INVALID_ARGUMENT` for a target that is not an object.
 */
export function checkEnqueue(
  target: unknown,
  targetShape: string,
  opts: EnqueueOptions | undefined,
): CheckedEnqueue {
  if (target === null || typeof target !== 'object') {
    invalidArgument('target', target, `an object ${targetShape}`);
  }
  // `{ client, stream }` → `stream`: the name the job goes to, a non-empty string. A client
  // passed as the target (the 0.1 call `enqueue(client, name, payload)`) fails here.
  const where = /(\w+) \}$/.exec(targetShape)?.[1] ?? '';
  const name = (target as Record<string, unknown>)[where];
  if (typeof name !== 'string' || name === '') {
    // A field of the target object: an option, as its other fields (`timeout`) and as the
    // PostgreSQL table name's own check.
    invalidOption(
      `target.${where}`,
      name,
      `a non-empty string (the target is ${targetShape}; 0.1's enqueue(client, name, payload) is now enqueue(${targetShape}, payload, options))`,
    );
  }
  // As a source's names (brokerName): stored as U+FFFD, it would be another name's stream.
  if (LONE_SURROGATE.test(name)) {
    invalidOption(
      `target.${where}`,
      name,
      'a name without a lone surrogate (half of a UTF-16 pair: a broker stores U+FFFD for it, so two names would be one)',
    );
  }
  const o = optionsObject<EnqueueOptions>('options', opts) ?? {};
  // A duration as every other: at most the longest timer (a Redis or PostgreSQL source would
  // sleep towards it, a NATS source turns it back with it).
  const delay = optionalDeadline('delay', o.delay) ?? 0;
  // null means no key, as for every optional option.
  const key = o.key ?? undefined;
  if (
    key !== undefined &&
    (typeof key !== 'string' || key === '' || key.length > MAX_KEY_LENGTH || !storedAsItself(key))
  ) {
    invalidOption(
      'key',
      key,
      `a non-empty string of at most ${MAX_KEY_LENGTH} UTF-16 code units (its length; an emoji counts 2), without a line break, a NUL, whitespace at either end or a lone surrogate (half of a UTF-16 pair): every broker must store it as itself`,
    );
  }
  const headers: [string, string][] = [];
  if (o.headers != null) {
    if (typeof o.headers !== 'object' || Array.isArray(o.headers)) {
      invalidOption('headers', o.headers, 'an object of string values');
    }
    for (const [name, value] of Object.entries(o.headers)) {
      if (!headerNameAllowed(name)) {
        invalidOption(
          'headers',
          name,
          'names of 1 to 255 printable ASCII characters without spaces or ":", not starting with "sluice-" or "nats-"',
        );
      }
      if (!headerValueAllowed(value)) {
        invalidOption(
          `headers.${name}`,
          value,
          'a string without line breaks, a NUL, whitespace at either end or a lone surrogate (half of a UTF-16 pair): every broker must store it as itself',
        );
      }
      headers.push([name, value]);
    }
  }
  return { delay, key, headers };
}

/**
 * A payload as bytes: bytes as they are, strings as UTF-8, anything else as JSON.
 *
 * @throws TypeError `ERR_INVALID_ARGUMENT` for a value JSON cannot carry (`undefined`, a
 *   function, a symbol: `JSON.stringify` gives nothing) or cannot serialize (a BigInt, a cycle).
 */
export function encodePayload(payload: unknown, name = 'payload'): Buffer {
  if (payload instanceof Uint8Array) {
    return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  }
  if (typeof payload === 'string') return Buffer.from(payload);
  let json: string | undefined;
  try {
    json = JSON.stringify(payload);
  } catch (error) {
    // What JSON.stringify threw (a toJSON may throw anything) is kept as the cause.
    try {
      invalidArgument(name, payload, `a value JSON can serialize (${errorMessage(error)})`);
    } catch (misuse) {
      throw Object.assign(misuse as Error, { cause: error });
    }
  }
  if (json === undefined) {
    invalidArgument(name, payload, 'bytes, a string or a JSON-serializable value');
  }
  return Buffer.from(json);
}
