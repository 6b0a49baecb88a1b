/**
 * Trace context through each of the four brokers, for real on loopback: a producer span →
 * `enqueue` → `consume` → the handler's span is in the producer's trace, under the consumer's
 * "process" span, which continues from the `send` span whose context went into the headers.
 */
import { type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import type { BrokerMessage } from '../../src/brokers/source.js';
import { instrumentSluice } from '../../src/otel/index.js';
import { amqpUnderTest } from '../fixtures/brokers/amqp-helpers.js';
import type { BrokerUnderTest } from '../fixtures/brokers/broker-under-test.js';
import { natsUnderTest } from '../fixtures/brokers/nats-helpers.js';
import { postgresUnderTest } from '../fixtures/brokers/postgres-helpers.js';
import { redisUnderTest } from '../fixtures/brokers/redis-helpers.js';
import { parentOf, setUpSdk } from '../fixtures/otel/sdk.js';

const sdk = setUpSdk();
const otel = instrumentSluice();
const tracer = trace.getTracer('test');
const brokers: BrokerUnderTest[] = [
  await redisUnderTest(),
  postgresUnderTest(),
  await amqpUnderTest(),
  await natsUnderTest(),
];
const systems = { redis: 'redis', postgres: 'postgresql', amqp: 'rabbitmq', nats: 'nats' };
beforeEach(() => sdk.exporter.reset());
afterAll(async () => {
  otel.close();
  for (const broker of brokers) await broker.cleanup();
});

/** A promise and its resolve function. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe.each(brokers)('trace context over $name', (broker) => {
  it('the handler span is in the producer trace: producer → send → process → handler', async () => {
    const queue = broker.unique('otel');
    const source = await broker.source(queue, { fetchWait: 200 });
    const handled = deferred<BrokerMessage>();
    const consumer = consume(
      source,
      async (_payload, { message }) => {
        // A span the handler starts: a child of the active (process) span.
        await tracer.startActiveSpan('handler', async (span: Span) => {
          await Promise.resolve();
          span.end();
        });
        handled.resolve(message);
      },
      { concurrency: 2, name: `orders-${broker.name}` },
    );
    await tracer.startActiveSpan('producer', async (span: Span) => {
      await broker.enqueue(queue, { n: 1 }, { headers: { tenant: 'acme' } });
      span.end();
    });
    const message = await handled.promise;
    await consumer.close(); // settles the job: its span has ended

    const producer = sdk.span('producer');
    const send = sdk
      .spans()
      .find((s) => s.name.startsWith('send ') && parentOf(s) === producer.spanContext().spanId);
    const process = sdk
      .spans()
      .find(
        (s) =>
          s.kind === SpanKind.CONSUMER &&
          s.attributes['sluice.pool.name'] === `orders-${broker.name}`,
      );
    const handler = sdk
      .spans()
      .find((s) => s.name === 'handler' && parentOf(s) === process?.spanContext().spanId);
    expect(send, 'send span').toBeDefined();
    expect(process, 'process span').toBeDefined();
    expect(handler, 'handler span').toBeDefined();
    if (!send || !process || !handler) return;

    const traceId = producer.spanContext().traceId;
    expect([send, process, handler].map((s) => s.spanContext().traceId)).toEqual([
      traceId,
      traceId,
      traceId,
    ]);
    expect(parentOf(process)).toBe(send.spanContext().spanId);
    expect(process.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(send.attributes).toMatchObject({
      'messaging.system': systems[broker.name],
      'messaging.operation.type': 'send',
    });
    expect(process.name).toBe(`process ${process.attributes['messaging.destination.name']}`);
    expect(process.attributes).toMatchObject({
      'messaging.system': systems[broker.name],
      'messaging.destination.name': send.attributes['messaging.destination.name'],
      'messaging.operation.type': 'process',
      'messaging.message.id': message.id,
      'sluice.message.delivery_count': 1,
      'sluice.pool.kind': 'consume',
      'sluice.job.outcome': 'succeeded',
    });
    // The producer's own headers arrive next to the injected trace context.
    expect(message.headers).toMatchObject({ tenant: 'acme' });
    expect(message.headers?.traceparent).toMatch(
      new RegExp(`^00-${traceId}-${send.spanContext().spanId}-01$`),
    );
  });

  it('a failing handler ends its process span with status ERROR, the exception and outcome failed', async () => {
    const queue = broker.unique('otelfail');
    const source = await broker.source(queue, { fetchWait: 200 });
    const failed = deferred<void>();
    const consumer = consume(
      source,
      () => {
        failed.resolve();
        throw Object.assign(new Error('no such order'), { code: 'E_ORDER' });
      },
      { concurrency: 1, maxDeliveries: 1, name: `fail-${broker.name}` },
    );
    await broker.enqueue(queue, { n: 2 });
    await failed.promise;
    await consumer.close();
    const process = sdk
      .spans()
      .find(
        (s) =>
          s.kind === SpanKind.CONSUMER &&
          s.attributes['sluice.pool.name'] === `fail-${broker.name}`,
      );
    expect(process?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'no such order' });
    expect(process?.attributes).toMatchObject({
      'sluice.job.outcome': 'failed',
      'error.type': 'E_ORDER',
    });
    expect(process?.events.map((e) => [e.name, e.attributes?.['exception.message']])).toEqual([
      ['exception', 'no such order'],
    ]);
    // No producer span around enqueue: the send span is a root, the process span its child.
    const send = sdk.spans().find((s) => s.kind === SpanKind.PRODUCER);
    expect(send && parentOf(send)).toBeUndefined();
    expect(process && parentOf(process)).toBe(send?.spanContext().spanId);
  });
});
