/**
 * Type tests, checked by `npm run typecheck:types`, never run: `instrumentSluice` takes the
 * OpenTelemetry SDK's providers and propagators as they come (no cast), and its handle is
 * disposable.
 */
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { expectTypeOf } from 'vitest';
import {
  INSTRUMENTATION_NAME,
  instrumentSluice,
  type SluiceInstrumentation,
} from '../../src/otel/index.js';

export function sdkProviders(): void {
  const otel = instrumentSluice({
    tracerProvider: new BasicTracerProvider(),
    meterProvider: new MeterProvider(),
    propagator: new W3CTraceContextPropagator(),
    traces: true,
    metrics: false,
  });
  expectTypeOf(otel).toEqualTypeOf<SluiceInstrumentation>();
  expectTypeOf(otel.close).toEqualTypeOf<() => void>();
  expectTypeOf(otel).toMatchTypeOf<Disposable>();
  expectTypeOf(instrumentSluice()).toEqualTypeOf<SluiceInstrumentation>();
  expectTypeOf(INSTRUMENTATION_NAME).toEqualTypeOf<'sluice'>();
  // @ts-expect-error: a tracer is not a tracer provider
  instrumentSluice({ tracerProvider: new BasicTracerProvider().getTracer('x') });
}
