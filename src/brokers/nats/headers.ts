/**
 * Headers of the NATS source (internal): what a dead letter carries under `max_payload`, and
 * the producer's headers of a delivery.
 *
 * @module
 */
import type { JsMsg } from '@nats-io/jetstream';

/**
 * The headers of `wanted` (in order of importance; empty values skipped) that fit in `room`
 * bytes as NATS encodes them (`NATS/1.0`, then `\r\nKey: value` each, then `\r\n\r\n`); the
 * last one that does not fit whole (the error text) is cut to what is left.
 */
export function fitHeaders(wanted: [string, string][], room: number): [string, string][] {
  const out: [string, string][] = [];
  let used = 12; // `NATS/1.0` and the final blank line
  for (const [key, value] of wanted) {
    if (value === '') continue;
    const fixed = key.length + 4; // \r\n, ': '
    const size = Buffer.byteLength(value);
    if (used + fixed + size <= room) {
      out.push([key, value]);
      used += fixed + size;
    } else if (key === 'Sluice-Error' && room - used - fixed - 3 > 0) {
      // Cut by bytes (the text may be UTF-8), dropping a character cut in two; `…` is 3 bytes.
      const bytes = Buffer.from(value).subarray(0, room - used - fixed - 3);
      const cut = bytes.toString().replace(/\uFFFD+$/, '');
      out.push([key, `${cut}…`]);
      used += fixed + Buffer.byteLength(cut) + 3;
    }
  }
  return out;
}

/** Header values must be one line; long errors are cut. */
export function headerValue(text: string): string {
  const line = text.replace(/[\r\n]+/g, ' ');
  return line.length > 1024 ? `${line.slice(0, 1024)}…` : line;
}

/** The producer's headers: all but JetStream's (`Nats-*`) and ours (`Sluice-*`). */
export function producerHeaders(raw: JsMsg): { headers?: Record<string, string> } {
  if (!raw.headers) return {};
  const h = raw.headers;
  const own = h.keys().filter((name) => !/^(nats|sluice)-/i.test(name));
  return own.length === 0 ? {} : { headers: Object.fromEntries(own.map((n) => [n, h.get(n)])) };
}
