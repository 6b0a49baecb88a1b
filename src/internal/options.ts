/**
 * Option checks shared by every constructor, with one message template naming the option, the
 * value and what was expected. Internal.
 */
import { formatValue } from './format-value.js';

/**
 * Codes carried by the standard `TypeError`/`RangeError`s sluice throws for misuse, as Node does
 * (`ERR_INVALID_ARG_TYPE`, …): bad input to our API is the caller's bug, not a sluice failure.
 */
export type UsageErrorCode =
  | 'ERR_INVALID_OPTION'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_INVALID_STATE'
  | 'ERR_MODULE_NOT_FOUND'
  | 'ERR_UNKNOWN_FILE_EXTENSION'
  | 'ERR_INVALID_MODULE'
  | 'ERR_DATA_CLONE'
  | 'ERR_INVALID_RETURN_VALUE';

/** `error` with a stable `code`. */
export function coded<E extends Error>(
  error: E,
  code: UsageErrorCode,
): E & { code: UsageErrorCode } {
  return Object.assign(error, { code });
}

/**
 * What a check names: an option by its name (`"concurrency"`), or a positional argument marked
 * with {@link argument} (`argument("capacity")`), which changes the message and the code.
 */
export type Label = string | { readonly argument: string };

/** Marks `name` as a positional argument for the checks below. */
export const argument = (name: string): Label => ({ argument: name });

/**
 * Throws the misuse error: RangeError for a number out of range (`numeric`), TypeError for
 * anything else — a wrong type, or a value of the right type that is not allowed (Node's
 * ERR_INVALID_ARG_VALUE is a TypeError too).
 */
function fail(label: Label, value: unknown, expected: string, numeric = true): never {
  const [kind, name, code] =
    typeof label === 'string'
      ? (['option', label, 'ERR_INVALID_OPTION'] as const)
      : (['argument', label.argument, 'ERR_INVALID_ARGUMENT'] as const);
  const message = `Invalid ${kind} "${name}": expected ${expected}, got ${formatValue(value)}`;
  const error =
    numeric && typeof value === 'number' ? new RangeError(message) : new TypeError(message);
  throw coded(error, code);
}

/** Throws the TypeError for a bad positional argument: `Invalid argument "name": …`. */
export function invalidArgument(name: string, value: unknown, expected: string): never {
  return fail(argument(name), value, expected, false);
}

/** Throws the TypeError for a call made at the wrong time (e.g. after iteration began). */
export function invalidState(message: string): never {
  throw coded(new TypeError(message), 'ERR_INVALID_STATE');
}

/**
 * Throws the option error for `name` = `value`: a TypeError, or a RangeError when `outOfRange`
 * and the value is a number (the right type, a wrong value).
 */
export function invalidOption(
  name: Label,
  value: unknown,
  expected: string,
  outOfRange = false,
): never {
  return fail(name, value, expected, outOfRange);
}

/**
 * " <= 2^53-1" for a whole number too large to count exactly (`2 ** 53 + 1 === 2 ** 53`): a count
 * past it cannot be incremented, so it is refused (Infinity is the way to unbound).
 */
const unsafe = (value: unknown): string =>
  typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)
    ? ` <= ${Number.MAX_SAFE_INTEGER}`
    : '';

/** A positive safe integer (Infinity only when `allowInfinity`). */
export function positiveInt(name: Label, value: unknown, allowInfinity = false): number {
  if (typeof value === 'number' && allowInfinity && value === Number.POSITIVE_INFINITY) {
    return value;
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    const what = `a positive integer${unsafe(value)}`;
    fail(name, value, allowInfinity ? `${what} or Infinity` : what);
  }
  return value;
}

/** A non-negative safe integer, or Infinity when `allowInfinity` (the only way to unbound). */
export function nonNegativeInt(name: Label, value: unknown, allowInfinity = true): number {
  if (typeof value === 'number' && allowInfinity && value === Number.POSITIVE_INFINITY) {
    return value;
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    const what = `a non-negative integer${unsafe(value)}`;
    fail(name, value, allowInfinity ? `${what} or Infinity` : what);
  }
  return value;
}

/**
 * The longest delay a Node timer keeps: `setTimeout` clamps anything longer to 1 ms (with a
 * TimeoutOverflowWarning), so a longer duration would fire at once. Every duration option is
 * refused above it (about 24.8 days) rather than silently misbehave.
 */
export const MAX_TIMER_MS = 2_147_483_647;

const MS_LIMIT = `<= ${MAX_TIMER_MS} (about 24.8 days)`;

/** A duration in ms: a finite number > 0 and <= {@link MAX_TIMER_MS}, or undefined/null (no limit). */
export function optionalDuration(name: Label, value: unknown): number | undefined {
  if (value == null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > MAX_TIMER_MS) {
    fail(name, value, `a positive finite number of milliseconds ${MS_LIMIT}`);
  }
  return value;
}

/**
 * A drain deadline in ms: like {@link optionalDuration}, but 0 is allowed and means "cancel
 * whatever is left right away" (as Go's context with an expired deadline). One rule for every
 * drain: `Pool`, `ThreadPool`, `Pipeline`, a consumer's `drain({ timeout })` and `drainTimeout`.
 */
export function optionalDeadline(name: Label, value: unknown): number | undefined {
  if (value == null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_TIMER_MS) {
    fail(name, value, `a finite number of milliseconds >= 0 and ${MS_LIMIT}`);
  }
  return value;
}

/**
 * An options bag: an object, or undefined/null (all defaults). `pool.submit(1, 5)` is a mistake
 * to report, not a bag with no options.
 */
export function optionsObject<O extends object>(name: Label, value: unknown): O | undefined {
  if (value == null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    return fail(name, value, 'an options object', false);
  }
  return value as O;
}

/** The `resourceLimits` a worker thread takes (`node:worker_threads`), each in MB. */
const RESOURCE_LIMITS = [
  'maxOldGenerationSizeMb',
  'maxYoungGenerationSizeMb',
  'codeRangeSizeMb',
  'stackSizeMb',
] as const;

/**
 * Limits outside which Node does not fail the thread but ends the whole process as it starts
 * one (measured on Node 20 and 24): a stack of ~0.22 MB or less overflows in Node's own bootstrap
 * (a fatal error, exit code 6), and a code range of ~100 TB cannot be reserved (V8's fatal
 * "Fatal process OOM", SIGTRAP). Refused at construction, with a margin, instead.
 */
const LIMIT_RANGES = {
  stackSizeMb: {
    min: 0.5,
    max: Number.POSITIVE_INFINITY,
    expected:
      'a number of MB >= 0.5 (a smaller stack ends the whole process as Node starts the thread; the default is 4)',
  },
  codeRangeSizeMb: {
    min: 0,
    max: 4096,
    expected: 'a number of MB <= 4096 (a code range V8 cannot reserve ends the whole process)',
  },
} as const;

/**
 * A worker thread's `resourceLimits`: undefined/null, or an object with only the known keys, each
 * undefined or a positive finite number — checked at construction, not found out later as
 * threads that fail to start.
 */
export function optionalResourceLimits<L extends object>(
  name: string,
  value: unknown,
): L | undefined {
  const limits = optionsObject<Record<string, unknown>>(name, value);
  if (limits === undefined) return undefined;
  for (const key of Object.keys(limits)) {
    if (!(RESOURCE_LIMITS as readonly string[]).includes(key)) {
      fail(`${name}.${key}`, limits[key], `one of the keys ${RESOURCE_LIMITS.join(', ')}`, false);
    }
    const limit = limits[key];
    if (limit == null) continue;
    if (typeof limit !== 'number' || !Number.isFinite(limit) || limit <= 0) {
      fail(`${name}.${key}`, limit, 'a positive finite number of MB');
    }
    const range = LIMIT_RANGES[key as keyof typeof LIMIT_RANGES];
    if (range !== undefined && !(limit >= range.min && limit <= range.max)) {
      fail(`${name}.${key}`, limit, range.expected);
    }
  }
  return limits as L;
}

/** An AbortSignal, or undefined/null (none). */
export function optionalSignal(name: Label, value: unknown): AbortSignal | undefined {
  if (value == null) return undefined;
  if (value instanceof AbortSignal) return value;
  return fail(name, value, 'an AbortSignal', false);
}

/** A boolean or undefined: `'no'` is a string, not false, so it is refused rather than truthy. */
export function optionalBoolean(name: Label, value: unknown): boolean | undefined {
  if (value == null) return undefined;
  if (typeof value === 'boolean') return value;
  return fail(name, value, 'a boolean', false);
}

/** A function. */
export function fn<F>(name: Label, value: unknown): F {
  if (typeof value !== 'function') fail(name, value, 'a function', false);
  return value as F;
}

/** An iterable or async iterable (a positional argument: the jobs or a pipeline's source). */
export function iterableArgument<J>(name: string, value: unknown): Iterable<J> | AsyncIterable<J> {
  const v = value as Partial<Iterable<J> & AsyncIterable<J>> | null | undefined;
  if (
    v == null ||
    (typeof v[Symbol.iterator] !== 'function' && typeof v[Symbol.asyncIterator] !== 'function')
  ) {
    invalidArgument(name, value, 'an iterable or async iterable');
  }
  return value as Iterable<J> | AsyncIterable<J>;
}

/**
 * Extra rules of {@link numberAtLeast}: whole numbers only; the unit named in messages — `'ms'`
 * also caps the value at {@link MAX_TIMER_MS}, the longest delay a timer keeps.
 */
export interface NumberRule {
  integer?: boolean;
  unit?: string;
  /** Largest value taken (a protocol field's range); `unit: 'ms'` caps at MAX_TIMER_MS anyway. */
  max?: number;
}

/**
 * A number option: finite, at least `min`, at most `max`, an integer when `integer`; undefined or
 * null passes (the caller applies its default).
 */
export function numberAtLeast(name: Label, value: number, min: number, opts?: NumberRule): number;
export function numberAtLeast(
  name: Label,
  value: unknown,
  min: number,
  opts?: NumberRule,
): number | undefined;
export function numberAtLeast(
  name: Label,
  value: unknown,
  min: number,
  opts: NumberRule = {},
): number | undefined {
  if (value == null) return undefined;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    value >= min &&
    (opts.unit !== 'ms' || value <= MAX_TIMER_MS) &&
    (opts.max === undefined || value <= opts.max) &&
    (!opts.integer || Number.isInteger(value));
  if (!ok) {
    const what = opts.integer ? 'an integer' : 'a finite number';
    const max =
      opts.max !== undefined ? ` and <= ${opts.max}` : opts.unit === 'ms' ? ` and ${MS_LIMIT}` : '';
    fail(name, value, `${what}${opts.unit ? ` of ${opts.unit}` : ''} >= ${min}${max}`);
  }
  return value as number;
}

/** A string option that must be non-empty and, when `pattern` is given, match it. */
export function nonEmptyString(
  name: Label,
  value: unknown,
  pattern?: { test: RegExp; expected: string },
): string {
  if (typeof value !== 'string' || value === '') fail(name, value, 'a non-empty string', false);
  if (pattern && !pattern.test.test(value)) fail(name, value, pattern.expected, false);
  return value;
}

/**
 * A lone surrogate (half of a UTF-16 pair): it has no UTF-8 form, so a broker stores U+FFFD in
 * its place — two different names or keys would become one, a header value would change.
 */
export const LONE_SURROGATE = /[\ud800-\udfff]/u;

/**
 * The name of something a broker stores or routes by (a stream, group, consumer, queue, subject,
 * field): a non-empty string (matching `pattern` when given) that UTF-8 carries as itself — a
 * lone surrogate would become U+FFFD, so `jobs\ud800` and `jobs\udfff` would be one stream.
 */
export function brokerName(
  name: Label,
  value: unknown,
  pattern?: { test: RegExp; expected: string },
): string {
  const text = nonEmptyString(name, value, pattern);
  if (LONE_SURROGATE.test(text)) {
    fail(
      name,
      value,
      `${pattern?.expected ?? 'a non-empty string'} without a lone surrogate (half of a UTF-16 pair: a broker stores U+FFFD for it, so two names would be one)`,
      false,
    );
  }
  return text;
}

/**
 * The `signal` of a per-call options bag (`send`, `receive`, `submit`, …): checks that `opts` is
 * an object or nullish and that its `signal` is an AbortSignal or absent; throws otherwise.
 */
export function callSignal(opts: unknown): AbortSignal | undefined {
  // Most calls pass no options: answer them before building the argument's label (every
  // submit comes through here).
  if (opts === undefined) return undefined;
  return optionalSignal('signal', optionsObject<{ signal?: unknown }>(OPTS, opts)?.signal);
}

const OPTS = argument('opts');

/**
 * The `timeout` (ms) of a `drain(opts)` call — Pool, pipeline, consume() — or undefined.
 * @throws the misuse error (`ERR_INVALID_OPTION`, `ERR_INVALID_ARGUMENT` when `opts` is not an
 *   object); callers turn it into a rejection.
 */
export function drainDeadline(opts: unknown): number | undefined {
  return optionalDeadline(
    'timeout',
    optionsObject<{ timeout?: number }>(argument('opts'), opts)?.timeout,
  );
}
