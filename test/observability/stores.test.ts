// Stores bound to the sluice:job and sluice:enqueue tracing channels (what sluice/otel builds
// on), with no tracing library: a plain AsyncLocalStorage and a plain subscriber.
import { AsyncLocalStorage } from 'node:async_hooks';
import diagnostics from 'node:diagnostics_channel';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type EnqueueTraceContext,
  type JobTraceContext,
  Pool,
  runPool,
  SLUICE_ENQUEUE,
  SLUICE_JOB,
} from '../../src/index.js';
import { redisUnderTest } from '../fixtures/brokers/redis-helpers.js';

const jobTrace = diagnostics.tracingChannel<unknown, JobTraceContext>(SLUICE_JOB);

describe('a store bound to sluice:job start', () => {
  it('holds the attempt context inside the worker and everything it awaits; the submitter context is kept', async () => {
    const store = new AsyncLocalStorage<string>();
    const caller = new AsyncLocalStorage<string>();
    jobTrace.start.bindStore(store, (ctx) => `${ctx.name}#${ctx.index}/${ctx.attempt}`);
    try {
      const seen: (string | undefined)[][] = [];
      const pool = new Pool(
        async (_: number) => {
          const before = store.getStore();
          await new Promise((r) => setImmediate(r));
          seen.push([before, store.getStore(), caller.getStore()]);
        },
        { concurrency: 1, name: 'bound' },
      );
      await Promise.all([
        caller.run('first', () => pool.run(0)),
        caller.run('second', () => pool.run(1)),
      ]);
      await pool.drain();
      expect(seen).toEqual([
        ['bound#0/1', 'bound#0/1', 'first'],
        ['bound#1/1', 'bound#1/1', 'second'], // queued: still its own submitter's context
      ]);
      // The pool's callbacks never run inside a job's store.
      expect(store.getStore()).toBeUndefined();
      const got: (string | undefined)[] = [];
      for await (const r of runPool([1, 2], () => store.getStore(), { concurrency: 1 })) {
        got.push(r.ok ? r.value : undefined);
      }
      expect(got).toEqual(['run-pool#0/1', 'run-pool#1/1']);
    } finally {
      jobTrace.start.unbindStore(store);
    }
  });
});

const broker = await redisUnderTest();
afterAll(() => broker.cleanup());

describe('the sluice:enqueue tracing channel (Redis)', () => {
  it('a start subscriber adds headers the job carries; names enqueue refuses are dropped', async () => {
    const channel = diagnostics.tracingChannel<unknown, EnqueueTraceContext>(SLUICE_ENQUEUE);
    const events: string[] = [];
    const handlers = {
      start(ctx: EnqueueTraceContext) {
        events.push(`start ${ctx.system} ${ctx.destination} ${JSON.stringify(ctx.headers)}`);
        ctx.headers.traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
        ctx.headers['sluice-forged'] = 'x';
        (ctx.headers as Record<string, unknown>).count = 3;
      },
      asyncEnd(ctx: EnqueueTraceContext) {
        events.push(`asyncEnd ${ctx.result?.id === undefined ? 'no id' : 'id'}`);
      },
    };
    const queue = broker.unique('enqch');
    const source = await broker.source(queue, { fetchWait: 200 });
    channel.subscribe(handlers as never);
    try {
      await broker.enqueue(queue, { n: 1 }, { headers: { tenant: 'acme' } });
    } finally {
      channel.unsubscribe(handlers as never);
    }
    const [message] = await source.fetch(1, new AbortController().signal);
    await source.close();
    expect(events).toEqual([`start redis ${queue} {"tenant":"acme"}`, 'asyncEnd id']);
    expect(message?.headers).toEqual({
      tenant: 'acme',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
  });
});
