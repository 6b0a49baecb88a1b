/**
 * NATS subject checks (internal): a subject option is refused up front, naming it, instead of
 * failing later with nats.js's uncoded `InvalidSubjectError` at a publish, or the server's
 * "invalid subject" (JetStream API error 10052) while declaring the stream after connecting.
 *
 * @module
 */
import { brokerName, type Label } from '../../internal/options.js';

/*
 * Dot-separated non-empty tokens without the whitespace the server refuses (space, tab, CR, LF,
 * form feed: a space or tab ends a subject on the wire). Other whitespace is a subject's own
 * character (the server takes `jobs.a\u00a0b` and `jobs.\u3000`), and `>` (the rest) may only be
 * the last token: the server refuses `jobs.>.x` as a stream's subject ("invalid subject").
 */
const SUBJECT = /^((?!>\.)[^.\t\n\f\r ]+\.)*[^.\t\n\f\r ]+$/u;
/** As SUBJECT, with no token that is a wildcard: `*` (one token) or `>` (the rest). */
const LITERAL = /^((?![*>]\.)[^.\t\n\f\r ]+\.)*(?![*>]$)[^.\t\n\f\r ]+$/u;

/**
 * A subject sluice only filters on or captures (the source's work subject): wildcards allowed.
 * @throws TypeError `ERR_INVALID_OPTION` naming `name`.
 */
export function filterSubject(name: Label, value: unknown): string {
  return brokerName(name, value, {
    test: SUBJECT,
    expected:
      'a NATS subject: dot-separated non-empty tokens without spaces, tabs or line breaks, > only last',
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
      'a NATS subject to publish to: dot-separated non-empty tokens without spaces, tabs, line breaks or wildcards (* or >)',
  });
}
