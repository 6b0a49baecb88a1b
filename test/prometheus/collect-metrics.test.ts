// sluice/prometheus over real pools: every series counts what the pools' own stats() count.
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { consume, Pool, pipeline, runPool, TimeoutError } from '../../src/index.js';
import { collectMetrics, type MetricsCollection } from '../../src/prometheus/index.js';
import { MemorySource } from '../fixtures/brokers/memory-source.js';
import { deferred, flush } from '../helpers.js';
import { scrape } from './scrape.js';

const open: MetricsCollection[] = [];

function collect(options: Parameters<typeof collectMetrics>[0] = {}) {
  const registry = new Registry();
  const metrics = collectMetrics({ registry, ...options });
  open.push(metrics);
  return { registry, read: async () => scrape(await registry.metrics()) };
}

afterEach(() => {
  for (const m of open.splice(0)) m.close();
  vi.useRealTimers();
});

describe('collectMetrics', () => {
  it('counts a Pool’s jobs by outcome, retries, and one wait and run sample per start', async () => {
    const { read } = collect();
    const pool = new Pool(
      async (job: string, ctx) => {
        if (job === 'fail') throw new Error('no');
        if (job === 'slow')
          await new Promise((_r, reject) =>
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
          );
        return job;
      },
      {
        concurrency: 2,
        name: 'work',
        timeout: 50,
        retry: {
          attempts: 2,
          backoff: { initial: 1 },
          retryIf: (e) => !(e instanceof TimeoutError),
        },
      },
    );
    const jobs = ['ok', 'ok', 'fail', 'slow', 'ok'];
    const results = await Promise.all(jobs.map(async (j) => (await pool.submit(j)).result));
    await pool.drain();
    const stats = pool.stats();
    expect(results.filter((r) => r.ok)).toHaveLength(3);
    const s = await read();
    const count = (outcome: string) => s.value('sluice_jobs_total', { pool: 'work', outcome });
    expect(count('succeeded')).toBe(stats.succeeded);
    expect(count('failed')).toBe(stats.failed);
    expect(count('timed_out')).toBe(stats.timedOut);
    expect(count('canceled')).toBe(0);
    expect(count('crashed')).toBe(0);
    expect([stats.succeeded, stats.failed, stats.timedOut]).toEqual([3, 1, 1]);
    expect(s.value('sluice_jobs_accepted_total', { pool: 'work' })).toBe(5);
    expect(s.value('sluice_job_retries_total', { pool: 'work' })).toBe(stats.retried);
    expect(stats.retried).toBe(1);
    // Wait: one per job (first starts); run: one per attempt (5 jobs + 1 retry).
    expect(s.histogram('sluice_job_wait_seconds', 'work')?.count).toBe(5);
    expect(s.histogram('sluice_job_run_seconds', 'work')?.count).toBe(6);
    // Drained: the pool's gauges are gone.
    expect(s.value('sluice_jobs_running', { pool: 'work' })).toBeUndefined();
  });

  it('gauges read the live pools: running, queued, waiting on each gate, limit, utilization', async () => {
    const { read } = collect();
    const gate = deferred<void>();
    const a = new Pool(() => gate.promise, { concurrency: 2, name: 'busy' });
    const b = new Pool(() => gate.promise, { concurrency: 2, name: 'busy' });
    for (let i = 0; i < 3; i++) a.trySubmit(i);
    b.trySubmit(0);
    const s = await read();
    // Two pools of one name are summed.
    expect(s.value('sluice_jobs_running', { pool: 'busy' })).toBe(3);
    expect(s.value('sluice_jobs_queued', { pool: 'busy' })).toBe(1);
    expect(s.value('sluice_concurrency_limit', { pool: 'busy' })).toBe(4);
    expect(s.value('sluice_utilization_ratio', { pool: 'busy' })).toBe(0.75);
    for (const g of ['retry', 'rate', 'key']) {
      expect(s.value('sluice_jobs_waiting', { pool: 'busy', gate: g })).toBe(0);
    }
    gate.resolve();
    await Promise.all([a.drain(), b.drain()]);
    const after = await read();
    expect(after.value('sluice_jobs_running', { pool: 'busy' })).toBeUndefined();
    expect(after.value('sluice_jobs_total', { pool: 'busy', outcome: 'succeeded' })).toBe(4);
  });

  it('a rate gate: waits counted, jobs waiting on the rate shown', async () => {
    vi.useFakeTimers();
    const { read } = collect();
    const pool = new Pool((x: number) => x, {
      concurrency: 4,
      rate: { limit: 1, interval: 1000 },
      name: 'limited',
    });
    const tasks = [1, 2, 3].map((x) => pool.trySubmit(x));
    await vi.advanceTimersByTimeAsync(0);
    const s = await read();
    expect(s.value('sluice_rate_limited_total', { pool: 'limited', gate: 'rate' })).toBe(1);
    expect(s.value('sluice_rate_limited_seconds_total', { pool: 'limited', gate: 'rate' })).toBe(1);
    expect(s.value('sluice_jobs_waiting', { pool: 'limited', gate: 'rate' })).toBe(2);
    await vi.advanceTimersByTimeAsync(2000);
    await Promise.all(tasks.map((t) => t?.result));
    const end = await read();
    expect(end.value('sluice_rate_limited_total', { pool: 'limited', gate: 'rate' })).toBe(2);
    expect(end.value('sluice_jobs_total', { pool: 'limited', outcome: 'succeeded' })).toBe(3);
    await pool.drain();
  });

  it('pipeline stages and runPool count their jobs under their names', async () => {
    const { read } = collect();
    const out = pipeline([1, 2, 3, 4])
      .stage('parse', (x: number) => x, { concurrency: 2 })
      .stage(
        'check',
        (x: number) => {
          if (x === 3) throw new Error('bad');
          return x;
        },
        { concurrency: 1 },
      );
    for await (const _ of out) {
      // drain
    }
    for await (const _ of runPool([1, 2], (x) => x, { concurrency: 1, name: 'batch' })) {
      // drain
    }
    const s = await read();
    expect(s.value('sluice_jobs_total', { pool: 'parse', outcome: 'succeeded' })).toBe(4);
    expect(s.value('sluice_jobs_total', { pool: 'check', outcome: 'succeeded' })).toBe(3);
    expect(s.value('sluice_jobs_total', { pool: 'check', outcome: 'failed' })).toBe(1);
    expect(s.value('sluice_jobs_total', { pool: 'batch', outcome: 'succeeded' })).toBe(2);
    expect(s.histogram('sluice_job_run_seconds', 'check')?.count).toBe(4);
  });

  it('a consumer adds its messages by outcome and the messages it holds', async () => {
    const { read } = collect();
    const source = new MemorySource();
    source.push(
      { id: 'a', body: '"ok"', deliveryCount: 1 },
      { id: 'b', body: '"fail"', deliveryCount: 1 },
      { id: 'c', body: '"fail"', deliveryCount: 2 },
      { id: 'd', body: 'nope', deliveryCount: 1 },
    );
    const hold = deferred<void>();
    const consumer = consume(
      source,
      async (payload: string) => {
        if (payload === 'hold') await hold.promise;
        if (payload === 'fail') throw new Error('no');
      },
      { concurrency: 2, name: 'inbox', maxDeliveries: 2 },
    );
    while (source.calls.length < 4) await flush();
    source.push({ id: 'e', body: '"hold"', deliveryCount: 1 });
    while (consumer.stats().running < 1) await flush();
    const live = await read();
    expect(live.value('sluice_messages_held', { pool: 'inbox' })).toBe(1);
    expect(live.value('sluice_jobs_running', { pool: 'inbox' })).toBe(1);
    hold.resolve();
    await consumer.close();
    const stats = consumer.stats();
    const s = await read();
    const msgs = (outcome: string) => s.value('sluice_messages_total', { pool: 'inbox', outcome });
    expect(msgs('acked')).toBe(stats.acked);
    expect(msgs('retried')).toBe(stats.retried);
    expect(msgs('dead_lettered')).toBe(stats.deadLettered);
    expect(msgs('released')).toBe(0);
    expect(msgs('canceled')).toBe(0);
    expect(msgs('lease_lost')).toBe(0);
    expect([stats.acked, stats.retried, stats.deadLettered]).toEqual([2, 1, 2]);
    expect(msgs('unsettled')).toBe(0);
  });

  it('a consumer whose acks fail counts them as unsettled, as its stats do', async () => {
    const { read } = collect();
    const source = new MemorySource();
    source.ack = async () => {
      throw Object.assign(new Error('connection lost'), { code: 'ERR_NOT_CONNECTED' });
    };
    source.push({ id: 'a', body: '1', deliveryCount: 1 }, { id: 'b', body: '2', deliveryCount: 1 });
    const consumer = consume(source, () => {}, {
      concurrency: 1,
      name: 'outage',
      onError: () => {},
    });
    while (consumer.stats().unsettled < 2) await flush();
    await consumer.close();
    const s = await read();
    expect(s.value('sluice_messages_total', { pool: 'outage', outcome: 'unsettled' })).toBe(2);
    expect(s.value('sluice_messages_total', { pool: 'outage', outcome: 'acked' })).toBe(0);
  });

  it('pools: only the named pools are collected', async () => {
    const { read } = collect({ pools: ['kept'] });
    const kept = new Pool((x: number) => x, { concurrency: 1, name: 'kept' });
    const other = new Pool((x: number) => x, { concurrency: 1, name: 'other' });
    await kept.run(1);
    await other.run(1);
    const s = await read();
    expect(s.value('sluice_jobs_total', { pool: 'kept', outcome: 'succeeded' })).toBe(1);
    expect(s.value('sluice_jobs_total', { pool: 'other', outcome: 'succeeded' })).toBeUndefined();
    expect(s.value('sluice_concurrency_limit', { pool: 'other' })).toBeUndefined();
    await Promise.all([kept.drain(), other.drain()]);
  });

  it('buckets: overridden bounds are the histogram’s', async () => {
    const { read } = collect({ buckets: { run: [0.1, 1] } });
    const pool = new Pool((x: number) => x, { concurrency: 1, name: 'b' });
    await pool.run(1);
    const s = await read();
    const bounds = Object.keys(s.histogram('sluice_job_run_seconds', 'b')?.buckets ?? {});
    expect(bounds.sort()).toEqual(['+Inf', '0.1', '1']);
    expect(Object.keys(s.histogram('sluice_job_wait_seconds', 'b')?.buckets ?? {})).toHaveLength(
      18,
    );
    await pool.drain();
  });

  it('close() unregisters every metric and stops counting', async () => {
    const registry = new Registry();
    const metrics = collectMetrics({ registry });
    expect(registry.getMetricsAsArray().length).toBeGreaterThan(10);
    metrics.close();
    metrics.close();
    expect(registry.getMetricsAsArray()).toEqual([]);
    // Registering again works once closed.
    collectMetrics({ registry }).close();
  });

  it('refuses bad options, naming them', () => {
    const registry = new Registry();
    expect(() => collectMetrics({ registry, pools: ['a', ''] })).toThrow(/"pools"/);
    expect(() => collectMetrics({ registry, buckets: { wait: [1, 0.5] } })).toThrow(
      /"buckets.wait"/,
    );
    expect(() => collectMetrics({ registry: {} as Registry })).toThrow(/"registry"/);
    expect(registry.getMetricsAsArray()).toEqual([]);
  });
});
