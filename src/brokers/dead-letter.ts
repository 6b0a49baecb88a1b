/**
 * What every adapter adds to a dead letter besides the message itself, kept bounded. A dead
 * letter carries the message's body plus the error; an unbounded error text (a handler that
 * throws its whole input back, say) could push the letter over what the broker accepts (NATS
 * `max_payload`, RabbitMQ `max_message_size`, a Redis or PostgreSQL bulk value), and a message
 * whose dead-lettering fails every time can never leave its queue. Shared by the adapters.
 *
 * @module
 */

/** The most characters of an error message (or code) stored with a dead letter. */
export const MAX_ERROR_TEXT = 4096;

/** `text` cut to `max` characters (with `…` marking the cut). */
export function errorText(text: string, max = MAX_ERROR_TEXT): string {
  if (text.length <= max) return text;
  return `${text.slice(0, Math.max(0, max - 1))}…`;
}
