/**
 * What a `consume()` job's span is made of: OpenTelemetry's messaging conventions for a
 * "process" span (kind CONSUMER), continuing the producer's trace read from the message
 * headers. Internal to sluice/otel.
 *
 * @module
 */
import {
  type Attributes,
  type Context,
  type Link,
  ROOT_CONTEXT,
  type SpanContext,
  type TextMapPropagator,
  trace,
} from '@opentelemetry/api';
import { ConsumerJob } from '../brokers/consumer-job.js';
import type { BrokerMessage } from '../brokers/source.js';
import { headerGetter } from './carrier.js';

/** A consumer span's name, parent, links and attributes. */
export interface ConsumerSpanPlan {
  readonly name: string;
  /** The producer's context for one message (else `active`): its trace goes on. */
  readonly parent: Context;
  readonly links: Link[];
  readonly attributes: Attributes;
}

type AnyJob = ConsumerJob<unknown, BrokerMessage>;

/** The messages of a consume() job (one, or a batch); undefined for any other job. */
export function messagesOf(job: unknown): readonly AnyJob[] | undefined {
  if (job instanceof ConsumerJob) return [job as AnyJob];
  if (Array.isArray(job) && job.length > 0 && job[0] instanceof ConsumerJob) {
    return job as AnyJob[];
  }
  return undefined;
}

/**
 * Plans the span of one message, or of a batch: a batch has no single parent, so it starts in
 * `active` and links every message's producer (as the conventions say for batch processing).
 */
export function consumerSpan(
  jobs: readonly AnyJob[],
  active: Context,
  propagator: TextMapPropagator,
): ConsumerSpanPlan {
  const first = jobs[0] as AnyJob;
  const target = first.lane.source.messaging;
  const destination = target?.destination;
  const attributes: Attributes = {
    'messaging.system': target?.system ?? 'unknown',
    'messaging.operation.type': 'process',
    'messaging.operation.name': 'process',
  };
  if (destination !== undefined) attributes['messaging.destination.name'] = destination;
  if (target?.consumerGroup !== undefined) {
    attributes['messaging.consumer.group.name'] = target.consumerGroup;
  }
  const links: Link[] = [];
  let producer: SpanContext | undefined;
  for (const { message } of jobs) {
    const extracted = propagator.extract(ROOT_CONTEXT, message.headers, headerGetter);
    const sc = trace.getSpanContext(extracted);
    if (sc !== undefined && trace.isSpanContextValid(sc)) {
      producer ??= sc;
      links.push({ context: sc });
    }
  }
  if (jobs.length === 1) {
    attributes['messaging.message.id'] = first.message.id;
    attributes['messaging.message.body.size'] = first.message.body.byteLength;
    attributes['sluice.message.delivery_count'] = first.message.deliveryCount;
  } else {
    attributes['messaging.batch.message_count'] = jobs.length;
  }
  // One message with a producer: its trace (and baggage) goes on, extracted over `active`.
  const parent =
    jobs.length === 1 && producer !== undefined
      ? propagator.extract(active, first.message.headers, headerGetter)
      : active;
  return {
    name: destination === undefined ? 'process' : `process ${destination}`,
    parent,
    links,
    attributes,
  };
}
