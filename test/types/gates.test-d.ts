/**
 * Type tests, checked by `npm run typecheck:types`, never run: the gate options take the job's
 * own type on every pool kind, and results carry `attempts`/`errors`.
 */
import { expectTypeOf } from 'vitest';
import type { BrokerSource } from '../../src/brokers/source.js';
import {
  consume,
  type GateOptions,
  type PipelineResult,
  Pool,
  pipeline,
  type RateLimiter,
  type Result,
  rateLimiter,
  runPool,
  ThreadPool,
} from '../../src/index.js';

interface Order {
  tenant: string;
  amount: number;
}

export async function keyAndPriorityReadTheJobType(orders: Order[]): Promise<void> {
  const pool = new Pool((o: Order) => o.amount, {
    concurrency: 4,
    key: (o) => o.tenant,
    perKey: { concurrency: 2, rate: { limit: 10, interval: 1000 } },
    retry: { attempts: 3, backoff: (attempt, error) => attempt * 100 + error.message.length },
  });
  await pool.submit(orders[0] as Order, { priority: 5 });
  // @ts-expect-error: priority is a number
  await pool.submit(orders[0] as Order, { priority: 'high' });

  for await (const r of runPool(orders, (o) => o.amount, {
    concurrency: 4,
    priority: (o) => o.amount,
    key: (o) => o.tenant,
  })) {
    expectTypeOf(r).toEqualTypeOf<Result<Order, number>>();
    expectTypeOf(r.attempts).toEqualTypeOf<number | undefined>();
    expectTypeOf(r.errors).toEqualTypeOf<Error[] | undefined>();
  }

  const charged = pipeline(orders).stage('charge', (o: Order) => o.amount, { concurrency: 2 });
  for await (const r of charged) {
    expectTypeOf(r).toEqualTypeOf<PipelineResult<Order, number>>();
    expectTypeOf(r).toExtend<Result<Order, number>>();
    // A pipeline's failure always names its stage: no `undefined` to check.
    if (!r.ok) expectTypeOf(r.stage).toEqualTypeOf<string>();
  }

  pipeline(orders).stage('charge', (o: Order) => o.amount, {
    concurrency: 2,
    // @ts-expect-error: the key function must return a string
    key: (o: Order) => o.amount,
  });
}

export function rateTakesALimitOrALimiter(): void {
  const shared: RateLimiter = rateLimiter({ limit: 100, interval: 1000 });
  const custom: RateLimiter = { reserve: async () => 0 };
  new Pool(() => 1, { concurrency: 1, rate: shared });
  new Pool(() => 1, { concurrency: 1, rate: custom });
  new ThreadPool<Order, number>('./worker.js', { rate: { limit: 5, interval: 1000 } });
  // @ts-expect-error: a limit needs an interval
  new Pool(() => 1, { concurrency: 1, rate: { limit: 5 } });
  expectTypeOf<GateOptions<Order>['key']>().toEqualTypeOf<((job: Order) => string) | undefined>();
}

export function consumeTakesTheGatesOverPayloadAndMessage(source: BrokerSource): void {
  consume<Order>(source, (o) => o.amount, {
    concurrency: 8,
    retry: { attempts: 5, backoff: { initial: 100 }, retryIf: (e) => e.name !== 'TypeError' },
    key: (o, message) => `${o.tenant}:${message.id}`,
    priority: (o) => o.amount,
    rate: { limit: 50, interval: 1000 },
  });
}
