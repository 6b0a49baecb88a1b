/**
 * NATS subject checks (internal): a subject option is refused up front, naming it, instead of
 * failing later with nats.js's uncoded `InvalidSubjectError` at a publish, or the server's
 * "invalid subject" (JetStream API error 10052) while declaring the stream after connecting.
 *
 * @module
 */
import { brokerName, type Label } from '../../internal/options.js';

/** Dot-separated non-empty tokens without whitespace (which ends a subject on the wire). */
const SUBJECT = /^[^.\s]+(\.[^.\s]+)*$/u;
/** As SUBJECT, with no token that is a wildcard: `*` (one token) or `>` (the rest). */
const LITERAL = /^(?![*>](\.|$))[^.\s]+(\.(?![*>](\.|$))[^.\s]+)*$/u;

/**
 * A subject sluice only filters on or captures (the source's work subject): wildcards allowed.
 * @throws TypeError `ERR_INVALID_OPTION` naming `name`.
 */
export function filterSubject(name: Label, value: unknown): string {
  return brokerName(name, value, {
    test: SUBJECT,
    expected: 'a NATS subject: dot-separated non-empty tokens without whitespace',
  });
}

/**
 * A subject sluice publishes to (`enqueue`, dead letters, replays): no wildcard, as a publish to
 * `jobs.*` is delivered to no stream that captures real subjects.
 * @throws TypeError `ERR_INVALID_OPTION` naming `name`.
 */
export function publishSubject(name: Label, value: unknown): string {
  return brokerName(name, value, {
    test: LITERAL,
    expected:
      'a NATS subject to publish to: dot-separated non-empty tokens without whitespace or wildcards (* or >)',
  });
}
