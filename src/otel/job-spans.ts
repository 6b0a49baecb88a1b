/**
 * A span per job attempt, from the `sluice:job` tracing channel: started (and made the active
 * context) by the channel's `start` store while the worker runs, ended at `asyncEnd`. A
 * `consume()` job's span is the messaging "process" span (see consumer-spans.ts). Internal to
 * sluice/otel.
 *
 * @module
 */
import {
  type Attributes,
  type Context,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapPropagator,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { JobTraceContext } from '../observability/channels.js';
import { outcomeOf } from '../stats.js';
import { consumerSpan, messagesOf } from './consumer-spans.js';
import { OUTCOME } from './outcome.js';

/** The spans of the attempts running now, by their channel context. */
export class JobSpans {
  readonly #tracer: Tracer;
  readonly #propagator: TextMapPropagator;
  readonly #spans = new WeakMap<JobTraceContext, Span>();

  constructor(tracer: Tracer, propagator: TextMapPropagator) {
    this.#tracer = tracer;
    this.#propagator = propagator;
  }

  /**
   * The `start` store's transform: opens the attempt's span under the active context (the job's
   * acceptance context, or for a message its producer's) and returns the context to activate.
   */
  start(ctx: JobTraceContext): Context {
    const active = context.active();
    const attributes: Attributes = {
      'sluice.pool.name': ctx.name,
      'sluice.pool.kind': ctx.kind,
      'sluice.job.index': ctx.index,
      'sluice.job.attempt': ctx.attempt,
    };
    if (ctx.waitMs !== undefined) attributes['sluice.job.wait_ms'] = ctx.waitMs;
    const messages = ctx.kind === 'consume' ? messagesOf(ctx.job) : undefined;
    let span: Span;
    let parent = active;
    if (messages === undefined) {
      span = this.#tracer.startSpan(
        `sluice.job ${ctx.name}`,
        { kind: SpanKind.INTERNAL, attributes },
        active,
      );
    } else {
      const plan = consumerSpan(messages, active, this.#propagator);
      parent = plan.parent;
      span = this.#tracer.startSpan(
        plan.name,
        {
          kind: SpanKind.CONSUMER,
          attributes: { ...plan.attributes, ...attributes },
          links: plan.links,
        },
        parent,
      );
    }
    this.#spans.set(ctx, span);
    return trace.setSpan(parent, span);
  }

  /** The attempt failed: the error goes on its span. */
  error(ctx: JobTraceContext): void {
    const span = this.#spans.get(ctx);
    const error = ctx.error;
    if (span === undefined || error === undefined) return;
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    const code = (error as { code?: unknown }).code;
    span.setAttribute('error.type', typeof code === 'string' ? code : error.name);
  }

  /** The attempt settled: its outcome, then the span ends. */
  end(ctx: JobTraceContext): void {
    const span = this.#spans.get(ctx);
    if (span === undefined) return;
    this.#spans.delete(ctx);
    span.setAttribute('sluice.job.outcome', OUTCOME[outcomeOf(ctx.error)]);
    span.end();
  }
}
