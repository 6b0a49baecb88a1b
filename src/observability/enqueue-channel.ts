/**
 * The `sluice:enqueue` tracing channel: every broker's `enqueue` runs through it, so a
 * subscriber (sluice/otel) can time the send and add headers — the producer's trace context —
 * to the message without the core importing any tracing library. Zero dependencies.
 *
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import {
  type EnqueueResult,
  headerNameAllowed,
  headerValueAllowed,
} from '../brokers/enqueue-options.js';

/** The broker an event is about, named as OpenTelemetry's `messaging.system` names it. */
export type MessagingSystem = 'redis' | 'nats' | 'rabbitmq' | 'postgresql';

/**
 * The context object of one `enqueue` call on the {@link SLUICE_ENQUEUE} tracing channel (the
 * same object goes to its `start`, `end`, (`error`,) `asyncStart` and `asyncEnd` subscribers).
 */
export interface EnqueueTraceContext {
  readonly system: MessagingSystem;
  /** The stream (Redis), subject (NATS), queue (RabbitMQ) or table (PostgreSQL). */
  readonly destination: string;
  /**
   * The headers the job will carry (`enqueue`'s `headers` option). A `start` subscriber (or a
   * store bound to it) may add string headers here — e.g. `traceparent` — and they are written
   * with the job; names that `enqueue` would refuse (`sluice-*`, `:` or line breaks) and
   * non-string values are dropped.
   */
  readonly headers: Record<string, string>;
  /** Set before `asyncStart` when the job was enqueued. */
  result?: EnqueueResult;
  /** Set before `error` when the enqueue failed. */
  error?: unknown;
}

/**
 * Tracing channel name (`diagnostics_channel.tracingChannel(SLUICE_ENQUEUE)`): one traced call
 * per `enqueue` (its options already checked), context {@link EnqueueTraceContext}: `start`
 * before anything is sent, `end` when the call returned its promise, then `asyncStart` and
 * `asyncEnd` when the broker confirmed (or `error` first when it failed).
 */
export const SLUICE_ENQUEUE = 'sluice:enqueue';

const enqueueTrace = diagnostics.tracingChannel(SLUICE_ENQUEUE);

/**
 * Runs `send` with the checked headers, through the {@link SLUICE_ENQUEUE} channel when it has
 * subscribers (with the headers they added), else directly at the cost of one check. Internal.
 */
export function tracedEnqueue(
  system: MessagingSystem,
  destination: string,
  headers: [string, string][],
  send: (headers: [string, string][]) => Promise<EnqueueResult>,
): Promise<EnqueueResult> {
  if (!enqueueTrace.hasSubscribers) return send(headers);
  const ctx: EnqueueTraceContext = { system, destination, headers: Object.fromEntries(headers) };
  return enqueueTrace.tracePromise(() => send(written(ctx.headers)), ctx);
}

/** The headers as a subscriber left them, less what `enqueue` itself would refuse. */
function written(headers: Record<string, string>): [string, string][] {
  return Object.entries(headers).filter(
    ([name, value]) => headerValueAllowed(value) && headerNameAllowed(name),
  );
}
