/**
 * `sluice/otel`: OpenTelemetry tracing and metrics for every sluice pool, stage and consumer,
 * and trace context carried through every broker. `@opentelemetry/api` is an optional peer; the
 * core never imports it — this subpath subscribes to the core's `node:diagnostics_channel`
 * events (`sluice:job`, `sluice:enqueue`, accepted / retried / settled).
 *
 * - **A span per job attempt** (Pool, ThreadPool, runPool, pipeline stages, consume()), active
 *   while the worker runs: spans the worker starts are its children. Its parent is the context
 *   the job was accepted in (the `submit` caller's). Attributes `sluice.pool.name`,
 *   `sluice.pool.kind`, `sluice.job.index`, `sluice.job.attempt`, `sluice.job.wait_ms` (from
 *   acceptance to this attempt's start: a retry's includes the earlier attempts and backoff),
 *   `sluice.job.outcome`; a failed attempt records its exception, status ERROR and `error.type`.
 * - **`enqueue` on every broker** opens a PRODUCER span `send <destination>` and injects its
 *   context into the message headers through the propagator (W3C `traceparent` with the
 *   default global one).
 * - **A consume() job is the messaging "process" span** (kind CONSUMER, `process <destination>`,
 *   `messaging.system`, `messaging.destination.name`, `messaging.operation.type` = `process`,
 *   `messaging.message.id`, `messaging.consumer.group.name`, `sluice.message.delivery_count`),
 *   child of (and linked to) the producer's context extracted from the message headers; a batch
 *   links every message's producer instead.
 * - **Metrics** through a Meter, with the names and attributes of sluice/prometheus once
 *   exported to Prometheus: `sluice.jobs` {pool, outcome}, `sluice.jobs.accepted` {pool},
 *   `sluice.job.retries` {pool}, histograms `sluice.job.wait` and `sluice.job.run` (seconds).
 *
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import {
  type MeterProvider,
  metrics,
  propagation,
  type TextMapPropagator,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { invalidOption, optionalBoolean, optionsObject } from '../internal/options.js';
import { type JobTraceContext, SLUICE_JOB } from '../observability/channels.js';
import { type EnqueueTraceContext, SLUICE_ENQUEUE } from '../observability/enqueue-channel.js';
import { feedJobMetrics } from '../observability/job-metrics-feed.js';
import { contextStore } from './context-store.js';
import { EnqueueSpans } from './enqueue-spans.js';
import { JobSpans } from './job-spans.js';
import { JobMetrics } from './metrics.js';

/** Options of {@link instrumentSluice}. */
export interface SluiceOtelOptions {
  /** Where spans go. @default the global tracer provider (`trace.getTracerProvider()`) */
  tracerProvider?: TracerProvider;
  /** Where metrics go. @default the global meter provider (`metrics.getMeterProvider()`) */
  meterProvider?: MeterProvider;
  /**
   * Writes the producer's context into message headers and reads it back.
   * @default the global propagator (`propagation`), looked up at each use
   */
  propagator?: TextMapPropagator;
  /** Spans for jobs, enqueues and messages. @default true */
  traces?: boolean;
  /** Job metrics through the Meter. @default true */
  metrics?: boolean;
}

/** What {@link instrumentSluice} returns. */
export interface SluiceInstrumentation extends Disposable {
  /** Stops instrumenting (unsubscribes everything). Spans already open still end. Idempotent. */
  close(): void;
}

/** The instrumentation scope's name on every tracer and meter sluice/otel creates. */
export const INSTRUMENTATION_NAME = 'sluice' as const;

/** The global propagator, resolved at each call (so one registered later is used). */
const globalPropagator: TextMapPropagator = {
  inject: (ctx, carrier, setter) => propagation.inject(ctx, carrier, setter),
  extract: (ctx, carrier, getter) => propagation.extract(ctx, carrier, getter),
  fields: () => propagation.fields(),
};

/**
 * Instruments every sluice object in the process, from now on (jobs accepted before are not
 * traced), until `close()`. Call it once, after the OpenTelemetry SDK is set up (or pass the
 * providers). Needs an AsyncLocalStorage-based context manager
 * (`@opentelemetry/context-async-hooks`, which the Node SDK registers) for spans started inside
 * a worker to become the job span's children.
 *
 * While it is on, each job attempt runs in the async context its job was accepted in (for every
 * AsyncLocalStorage, not only OpenTelemetry's), so a queued job's span is the child of its
 * submitter's span rather than of whichever job freed its slot.
 *
 * @throws TypeError `ERR_INVALID_OPTION` for an option of the wrong type.
 * @example
 * ```ts
 * import { instrumentSluice } from 'sluice/otel';
 * const otel = instrumentSluice(); // the global tracer/meter providers and propagator
 * await enqueue({ client, stream: 'jobs' }, job); // traceparent goes into the message
 * // … later
 * otel.close();
 * ```
 */
export function instrumentSluice(options?: SluiceOtelOptions): SluiceInstrumentation {
  const o = optionsObject<SluiceOtelOptions>('options', options) ?? {};
  const traces = optionalBoolean('traces', o.traces) ?? true;
  const metered = optionalBoolean('metrics', o.metrics) ?? true;
  hasMethods('tracerProvider', o.tracerProvider, ['getTracer']);
  hasMethods('meterProvider', o.meterProvider, ['getMeter']);
  hasMethods('propagator', o.propagator, ['inject', 'extract']);
  const propagator = o.propagator ?? globalPropagator;
  const undo: (() => void)[] = [];
  const jobTrace = diagnostics.tracingChannel(SLUICE_JOB);
  if (traces) {
    const tracer = (o.tracerProvider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION_NAME);
    const jobs = new JobSpans(tracer, propagator);
    const jobStore = contextStore();
    jobTrace.start.bindStore(jobStore, (ctx) => jobs.start(ctx as JobTraceContext));
    const jobHandlers = {
      error: (ctx: unknown) => jobs.error(ctx as JobTraceContext),
      asyncEnd: (ctx: unknown) => jobs.end(ctx as JobTraceContext),
    };
    jobTrace.subscribe(jobHandlers as never);
    const enqueueTrace = diagnostics.tracingChannel(SLUICE_ENQUEUE);
    const sends = new EnqueueSpans(tracer, propagator);
    const sendStore = contextStore();
    enqueueTrace.start.bindStore(sendStore, (ctx) => sends.start(ctx as EnqueueTraceContext));
    const sendHandlers = {
      error: (ctx: unknown) => sends.error(ctx as EnqueueTraceContext),
      asyncEnd: (ctx: unknown) => sends.end(ctx as EnqueueTraceContext),
    };
    enqueueTrace.subscribe(sendHandlers as never);
    undo.push(() => {
      jobTrace.start.unbindStore(jobStore);
      jobTrace.unsubscribe(jobHandlers as never);
      enqueueTrace.start.unbindStore(sendStore);
      enqueueTrace.unsubscribe(sendHandlers as never);
    });
  }
  if (metered) {
    const meter = (o.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_NAME);
    undo.push(feedJobMetrics(new JobMetrics(meter)));
  }
  const close = (): void => {
    for (const step of undo.splice(0)) step();
  };
  return { close, [Symbol.dispose]: close };
}

/** Refuses an option that is given but lacks one of `methods`. */
function hasMethods(name: string, value: unknown, methods: readonly string[]): void {
  if (value == null) return;
  const missing = methods.find(
    (m) => typeof (value as Record<string, unknown> | undefined)?.[m] !== 'function',
  );
  if (missing !== undefined) invalidOption(name, value, `an object with a ${missing}() method`);
}
