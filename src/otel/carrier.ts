/**
 * Message headers as an OpenTelemetry propagation carrier. Internal to sluice/otel.
 *
 * @module
 */
import type { TextMapGetter, TextMapSetter } from '@opentelemetry/api';

/** Writes into a plain string record (the `headers` of `sluice:enqueue`). */
export const headerSetter: TextMapSetter<Record<string, string>> = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};

/**
 * Reads a message's headers. Case-insensitive: a broker or a producer in another language may
 * have written `Traceparent`.
 */
export const headerGetter: TextMapGetter<Readonly<Record<string, string>> | undefined> = {
  keys(carrier) {
    return carrier === undefined ? [] : Object.keys(carrier);
  },
  get(carrier, key) {
    if (carrier === undefined) return undefined;
    const exact = carrier[key];
    if (exact !== undefined) return exact;
    const wanted = key.toLowerCase();
    for (const name of Object.keys(carrier)) {
      if (name.toLowerCase() === wanted) return carrier[name];
    }
    return undefined;
  },
};
