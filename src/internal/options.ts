/**
 * Option checks shared by every constructor, with one message template naming the option, the
 * value and what was expected. Internal.
 */
function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  return String(value);
}

/** Throws RangeError for a number out of range, TypeError for a value of the wrong type. */
function fail(name: string, value: unknown, expected: string, numeric = true): never {
  const message = `Invalid option "${name}": expected ${expected}, got ${show(value)}`;
  const error =
    numeric && typeof value === 'number' ? new RangeError(message) : new TypeError(message);
  // A stable code on the standard classes too, as Node does for ERR_INVALID_ARG_VALUE.
  throw Object.assign(error, { code: 'ERR_INVALID_OPTION' as const });
}

/** A positive integer (Infinity only when `allowInfinity`). */
export function positiveInt(name: string, value: unknown, allowInfinity = false): number {
  if (typeof value === 'number' && allowInfinity && value === Number.POSITIVE_INFINITY) {
    return value;
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    fail(name, value, allowInfinity ? 'a positive integer or Infinity' : 'a positive integer');
  }
  return value;
}

/** A non-negative integer, or Infinity when `allowInfinity` (the only way to unbound). */
export function nonNegativeInt(name: string, value: unknown, allowInfinity = true): number {
  if (typeof value === 'number' && allowInfinity && value === Number.POSITIVE_INFINITY) {
    return value;
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    fail(
      name,
      value,
      allowInfinity ? 'a non-negative integer or Infinity' : 'a non-negative integer',
    );
  }
  return value;
}

/** A duration in ms: a finite number > 0, or undefined (no limit). */
export function optionalDuration(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    fail(name, value, 'a positive finite number of milliseconds');
  }
  return value;
}

/** An AbortSignal or undefined. */
export function optionalSignal(name: string, value: unknown): AbortSignal | undefined {
  if (value === undefined || value instanceof AbortSignal) return value;
  return fail(name, value, 'an AbortSignal', false);
}

/** A function. */
export function fn<F>(name: string, value: unknown): F {
  if (typeof value !== 'function') fail(name, value, 'a function', false);
  return value as F;
}
