/**
 * What every adapter adds to a dead letter besides the message itself, kept bounded. A dead
 * letter carries the message's body plus the error; an unbounded error text (a handler that
 * throws its whole input back, say) could push the letter over what the broker accepts (NATS
 * `max_payload`, RabbitMQ `max_message_size`, a Redis or PostgreSQL bulk value), and a message
 * whose dead-lettering fails every time can never leave its queue. Shared by the adapters.
 *
 * @module
 */

import { formatValue } from '../internal/format-value.js';

/** The most characters of an error message (or code) stored with a dead letter. */
export const MAX_ERROR_TEXT = 4096;

/** `text` cut to `max` characters (with `…` marking the cut). */
export function errorText(text: string, max = MAX_ERROR_TEXT): string {
  if (text.length <= max) return text;
  return `${text.slice(0, Math.max(0, max - 1))}…`;
}

/**
 * Reads `read()` and gives it as text, never throwing: a handler's error is the caller's value,
 * and a `message` or `code` getter (or a `toString`) that throws must not fail the dead letter
 * or retry that reports it — the message would stay pending until `claimIdle` (or its lease)
 * and come back with a generic reason.
 */
function textOf(read: () => unknown): string | undefined {
  let value: unknown;
  try {
    value = read();
  } catch {
    return undefined;
  }
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  try {
    return String(value);
  } catch {
    return formatValue(value);
  }
}

/** `error.message` as text, or `error` shown by `formatValue` when it cannot be read. */
export function errorMessage(error: unknown): string {
  return textOf(() => (error as { message?: unknown }).message) ?? formatValue(error);
}

/** `error.name` as text (`'Error'` when it cannot be read). */
export function errorName(error: unknown): string {
  return textOf(() => (error as { name?: unknown }).name) ?? 'Error';
}

/** `error.code` as text, `undefined` when there is none (or it cannot be read). */
export function errorCode(error: unknown): string | undefined {
  return textOf(() => (error as { code?: unknown }).code);
}

/** `error.code` if it is a string, else `undefined`; never throws. */
export function errorStringCode(error: unknown): string | undefined {
  let code: unknown;
  try {
    code = (error as { code?: unknown }).code;
  } catch {
    return undefined;
  }
  return typeof code === 'string' ? code : undefined;
}
