/**
 * One way to show a caller's value inside an error message: readable, one line, bounded, and
 * never throwing — a message about a bad value must not fail on that value. Internal.
 */
import { inspect } from 'node:util';

/** Longest text a value may take in a message (a long string or a big object is cut). */
const MAX_LENGTH = 120;

/** Longest string shown in full; longer ones are cut and their length is given. */
const MAX_STRING = 60;

const INSPECT = {
  depth: 2,
  breakLength: Number.POSITIVE_INFINITY,
  compact: true,
  maxArrayLength: 10,
  maxStringLength: MAX_STRING,
  sorted: false,
  getters: false,
} as const;

/**
 * `value` as a message shows it: strings JSON-quoted (`"abc"`), `-0`, `12n`, `Symbol(x)`,
 * functions as `[Function: name]`, a plain object as `an object { concurrency: 2 }` (an options
 * object passed where a function belongs should read as one, not as `[object Object]`), other
 * objects as `node:util` inspects them on one line (circular references included).
 */
export function formatValue(value: unknown): string {
  try {
    return cut(format(value));
  } catch {
    // A revoked proxy, or a custom inspect hook that throws: say what kind of value it was.
    return `a value of type ${typeof value}`;
  }
}

function format(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value.length > MAX_STRING
        ? `${JSON.stringify(value.slice(0, MAX_STRING))}… (length ${value.length})`
        : JSON.stringify(value);
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'bigint':
      return `${value}n`;
    case 'symbol':
      return value.toString();
    case 'undefined':
    case 'boolean':
      return String(value);
    default: {
      if (value === null) return 'null';
      const text = inspect(value, INSPECT);
      return isPlainObject(value) ? `an object ${text}` : text;
    }
  }
}

function isPlainObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function cut(text: string): string {
  return text.length > MAX_LENGTH ? `${text.slice(0, MAX_LENGTH)}…` : text;
}
