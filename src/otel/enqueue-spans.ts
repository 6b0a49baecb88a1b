/**
 * A producer span per `enqueue`, from the `sluice:enqueue` tracing channel, whose context is
 * injected into the message headers (through the propagator): the consumer's span continues
 * from it. Internal to sluice/otel.
 *
 * @module
 */
import {
  type Context,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapPropagator,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { EnqueueTraceContext } from '../observability/enqueue-channel.js';
import { headerSetter } from './carrier.js';

export class EnqueueSpans {
  readonly #tracer: Tracer;
  readonly #propagator: TextMapPropagator;
  readonly #spans = new WeakMap<EnqueueTraceContext, Span>();

  constructor(tracer: Tracer, propagator: TextMapPropagator) {
    this.#tracer = tracer;
    this.#propagator = propagator;
  }

  /**
   * The `start` store's transform: opens the `send` span under the caller's context, writes its
   * context into the headers, and returns it to activate while the broker client sends.
   */
  start(ctx: EnqueueTraceContext): Context {
    const active = context.active();
    const span = this.#tracer.startSpan(
      `send ${ctx.destination}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': ctx.system,
          'messaging.destination.name': ctx.destination,
          'messaging.operation.type': 'send',
          'messaging.operation.name': 'send',
        },
      },
      active,
    );
    this.#spans.set(ctx, span);
    const sending = trace.setSpan(active, span);
    this.#propagator.inject(sending, ctx.headers, headerSetter);
    return sending;
  }

  error(ctx: EnqueueTraceContext): void {
    const span = this.#spans.get(ctx);
    if (span === undefined) return;
    const error = ctx.error instanceof Error ? ctx.error : new Error(String(ctx.error));
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    span.setAttribute('error.type', error.name);
  }

  end(ctx: EnqueueTraceContext): void {
    const span = this.#spans.get(ctx);
    if (span === undefined) return;
    this.#spans.delete(ctx);
    const id = ctx.result?.id;
    if (id !== undefined) span.setAttribute('messaging.message.id', id);
    if (ctx.result?.deduplicated === true) span.setAttribute('sluice.enqueue.deduplicated', true);
    span.end();
  }
}
