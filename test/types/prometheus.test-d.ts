/**
 * Type tests, checked by `npm run typecheck:types`, never run: collectMetrics' options and
 * result, and the shapes of the rate, announcement and message events.
 */
import { Registry } from 'prom-client';
import { expectTypeOf } from 'vitest';
import type {
  JobRateLimitedMessage,
  MessageOutcome,
  MessageSettledMessage,
  PoolCreatedMessage,
  PoolSnapshot,
} from '../../src/index.js';
import { collectMetrics, type MetricsCollection } from '../../src/prometheus/index.js';

export function collectMetricsTakesARegistryNamesAndBuckets(): void {
  const metrics = collectMetrics({
    registry: new Registry(),
    pools: ['thumbnails', 'orders'],
    buckets: { wait: [0.01, 0.1, 1], run: [0.1, 1, 10] },
  });
  expectTypeOf(metrics).toEqualTypeOf<MetricsCollection>();
  expectTypeOf(metrics.close).returns.toEqualTypeOf<void>();
  expectTypeOf(collectMetrics()).toEqualTypeOf<MetricsCollection>();
  // @ts-expect-error pools are names, not pools
  collectMetrics({ pools: [1] });
}

export function eventShapes(
  rate: JobRateLimitedMessage,
  created: PoolCreatedMessage,
  message: MessageSettledMessage,
): void {
  expectTypeOf(rate.gate).toEqualTypeOf<'rate' | 'key'>();
  expectTypeOf(rate.waitMs).toEqualTypeOf<number | undefined>();
  expectTypeOf(created.snapshot).returns.toEqualTypeOf<PoolSnapshot>();
  expectTypeOf(created.snapshot().stats.running).toEqualTypeOf<number>();
  expectTypeOf(message.outcome).toEqualTypeOf<MessageOutcome>();
  expectTypeOf<MessageOutcome>().toEqualTypeOf<
    'acked' | 'retried' | 'deadLettered' | 'released' | 'canceled' | 'leaseLost' | 'unsettled'
  >();
}
