/**
 * The job events both metrics exports count (sluice/prometheus, sluice/otel), read once from the
 * core's channels and handed on as plain calls, so the two agree on what each series means.
 * Internal.
 *
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import type { Outcome } from '../stats.js';
import {
  type JobAcceptedMessage,
  type JobRetriedMessage,
  type JobSettledMessage,
  type JobTraceContext,
  SLUICE_JOB,
  SLUICE_JOB_ACCEPTED,
  SLUICE_JOB_RETRIED,
  SLUICE_JOB_SETTLED,
} from './channels.js';

/** What a metrics export does with each job event; `pool` is the pool's `name`. */
export interface JobMetricsSink {
  accepted(pool: string): void;
  /** A failed attempt whose retry was scheduled (the backoff starts). */
  retried(pool: string): void;
  settled(pool: string, outcome: Outcome): void;
  /**
   * Seconds from acceptance to the first attempt's start: queue and gate wait. A retry's wait
   * (earlier attempts, backoff) is not queue wait, so later attempts are not reported.
   */
  waited(pool: string, seconds: number): void;
  /** Seconds one attempt ran. */
  ran(pool: string, seconds: number): void;
}

/** Subscribes `sink` to the job channels; returns the unsubscribe. */
export function feedJobMetrics(sink: JobMetricsSink): () => void {
  const plain: [string, (message: unknown) => void][] = [
    [SLUICE_JOB_ACCEPTED, (m) => sink.accepted((m as JobAcceptedMessage).name)],
    [SLUICE_JOB_RETRIED, (m) => sink.retried((m as JobRetriedMessage).name)],
    [
      SLUICE_JOB_SETTLED,
      (m) => {
        const { name, outcome } = m as JobSettledMessage;
        sink.settled(name, outcome);
      },
    ],
  ];
  const trace = diagnostics.tracingChannel(SLUICE_JOB);
  const onStart = (m: unknown) => {
    const ctx = m as JobTraceContext;
    if (ctx.attempt === 1 && ctx.waitMs !== undefined) sink.waited(ctx.name, ctx.waitMs / 1000);
  };
  // durationMs is set before asyncStart, the first event after the attempt ended.
  const onAsyncStart = (m: unknown) => {
    const ctx = m as JobTraceContext;
    if (ctx.durationMs !== undefined) sink.ran(ctx.name, ctx.durationMs / 1000);
  };
  for (const [name, fn] of plain) diagnostics.subscribe(name, fn);
  // The two trace events used, not all five (no work for the others).
  trace.start.subscribe(onStart);
  trace.asyncStart.subscribe(onAsyncStart);
  return () => {
    for (const [name, fn] of plain) diagnostics.unsubscribe(name, fn);
    trace.start.unsubscribe(onStart);
    trace.asyncStart.unsubscribe(onAsyncStart);
  };
}
