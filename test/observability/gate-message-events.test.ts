// Rate waits, pool announcements and consume()'s message outcomes on diagnostics_channel.
import diagnostics from 'node:diagnostics_channel';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BrokerMessage } from '../../src/brokers/source.js';
import {
  consume,
  type JobRateLimitedMessage,
  type MessageDeadLetteredMessage,
  type MessageLeaseLostMessage,
  type MessageSettledMessage,
  Pool,
  type PoolCreatedMessage,
  pipeline,
  runPool,
  SLUICE_JOB_RATE_LIMITED,
  SLUICE_MESSAGE_DEAD_LETTERED,
  SLUICE_MESSAGE_LEASE_LOST,
  SLUICE_MESSAGE_SETTLED,
  SLUICE_POOL_CREATED,
  ThreadPool,
} from '../../src/index.js';
import { MemorySource } from '../fixtures/brokers/memory-source.js';
import { deferred, flush } from '../helpers.js';

const stops: (() => void)[] = [];

/** Records every message of `channel` until the test ends. */
function record<T>(channel: string): T[] {
  const seen: T[] = [];
  const on = (m: unknown) => seen.push(m as T);
  diagnostics.subscribe(channel, on);
  stops.push(() => diagnostics.unsubscribe(channel, on));
  return seen;
}

afterEach(() => {
  for (const stop of stops.splice(0)) stop();
  vi.useRealTimers();
});

describe('rate-limited events', () => {
  it('a pool rate publishes one wait (with its ms) when it holds the queue back, not one per job', async () => {
    vi.useFakeTimers();
    const waits = record<JobRateLimitedMessage>(SLUICE_JOB_RATE_LIMITED);
    const pool = new Pool((x: number) => x, {
      concurrency: 4,
      rate: { limit: 2, interval: 1000 },
      name: 'api',
    });
    const tasks = [1, 2, 3, 4].map((x) => pool.trySubmit(x));
    await vi.advanceTimersByTimeAsync(0);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toMatchObject({ name: 'api', kind: 'pool', gate: 'rate', key: undefined });
    expect(waits[0]?.waitMs).toBeGreaterThan(0);
    expect(waits[0]?.waitMs).toBeLessThanOrEqual(1000);
    await vi.advanceTimersByTimeAsync(1000);
    await Promise.all(tasks.map((t) => t?.result));
    expect(pool.stats().succeeded).toBe(4);
    await pool.drain();
  });

  it('a per-key rate publishes its wait with the key', async () => {
    vi.useFakeTimers();
    const waits = record<JobRateLimitedMessage>(SLUICE_JOB_RATE_LIMITED);
    const pool = new Pool((job: { tenant: string }) => job.tenant, {
      concurrency: 4,
      key: (job) => job.tenant,
      perKey: { concurrency: 4, rate: { limit: 1, interval: 500 } },
      name: 'tenants',
    });
    const a = pool.trySubmit({ tenant: 'a' });
    const b = pool.trySubmit({ tenant: 'a' });
    await vi.advanceTimersByTimeAsync(0);
    expect(waits.map((w) => [w.name, w.gate, w.key])).toEqual([['tenants', 'key', 'a']]);
    expect(waits[0]?.waitMs).toBeGreaterThan(0);
    await vi.advanceTimersByTimeAsync(500);
    expect((await a?.result)?.ok).toBe(true);
    expect((await b?.result)?.ok).toBe(true);
    await pool.drain();
  });

  it('runPool publishes its rate waits under its name', async () => {
    vi.useFakeTimers();
    const waits = record<JobRateLimitedMessage>(SLUICE_JOB_RATE_LIMITED);
    const results = runPool([1, 2, 3], (x) => x, {
      concurrency: 3,
      rate: { limit: 1, interval: 100 },
      name: 'crawl',
    });
    const done = (async () => {
      let n = 0;
      for await (const _ of results) n++;
      return n;
    })();
    await vi.advanceTimersByTimeAsync(300);
    expect(await done).toBe(3);
    expect(waits.length).toBeGreaterThanOrEqual(1);
    expect(
      waits.every((w) => w.name === 'crawl' && w.kind === 'run-pool' && w.gate === 'rate'),
    ).toBe(true);
  });
});

describe('pool created events', () => {
  it('a Pool, a pipeline stage and a consumer announce themselves with a snapshot reader', async () => {
    const created = record<PoolCreatedMessage>(SLUICE_POOL_CREATED);
    const gate = deferred<void>();
    const pool = new Pool(() => gate.promise, { concurrency: 2, name: 'p' });
    pool.trySubmit(1);
    pool.trySubmit(2);
    pool.trySubmit(3);
    const first = created.find((m) => m.name === 'p');
    expect(first?.kind).toBe('pool');
    const snap = first?.snapshot();
    expect(snap?.state).toBe('open');
    expect(snap?.stats).toMatchObject({ running: 2, queued: 1, concurrency: 2 });
    gate.resolve();
    await pool.drain();
    expect(first?.snapshot().state).toBe('drained');

    const out = pipeline([1, 2]).stage('double', (x: number) => x, { concurrency: 1 });
    for await (const _ of out) {
      // consume
    }
    const stage = created.find((m) => m.name === 'double');
    expect(stage?.kind).toBe('stage');
    expect(stage?.snapshot().state).toBe('drained');
    expect(stage?.snapshot().stats.succeeded).toBe(2);

    const source = new MemorySource();
    source.push('1');
    const consumer = consume(source, () => {}, { concurrency: 1, name: 'orders' });
    const announced = created.filter((m) => m.name === 'orders');
    expect(announced.map((m) => m.kind)).toEqual(['consume']);
    while (source.ops('ack').length < 1) await flush();
    expect(announced[0]?.snapshot().consumer?.acked).toBe(1);
    await consumer.close();
    expect(announced[0]?.snapshot().state).toBe('drained');
  });
});

describe('a ThreadPool announcement', () => {
  it('reads the ThreadPool’s own stats (threads as the limit), also when read at once', async () => {
    const early: number[] = [];
    const onCreated = (m: unknown) => {
      const message = m as PoolCreatedMessage;
      if (message.name === 'doubling') early.push(message.snapshot().stats.concurrency);
    };
    diagnostics.subscribe(SLUICE_POOL_CREATED, onCreated);
    stops.push(() => diagnostics.unsubscribe(SLUICE_POOL_CREATED, onCreated));
    const created = record<PoolCreatedMessage>(SLUICE_POOL_CREATED);
    const pool = new ThreadPool<number, number>(
      new URL('../fixtures/threads/double.ts', import.meta.url),
      { threads: 2, name: 'doubling' },
    );
    expect(await pool.run(21)).toBe(42);
    const announced = created.filter((m) => m.name === 'doubling');
    expect(announced.map((m) => m.kind)).toEqual(['thread-pool']);
    expect(announced[0]?.snapshot().stats).toMatchObject({ concurrency: 2, succeeded: 1 });
    // Read while the ThreadPool was still being built: its inner Pool's figures, no throw.
    expect(early).toHaveLength(1);
    await pool.drain();
    expect(announced[0]?.snapshot().state).toBe('drained');
  });
});

describe('consume() message events', () => {
  it('publishes acked, retried, dead-lettered (malformed and at maxDeliveries) and released', async () => {
    const settled = record<MessageSettledMessage>(SLUICE_MESSAGE_SETTLED);
    const dead = record<MessageDeadLetteredMessage>(SLUICE_MESSAGE_DEAD_LETTERED);
    const source = new MemorySource();
    source.push(
      { id: 'ok', body: '"ok"', deliveryCount: 1 },
      { id: 'again', body: '"fail"', deliveryCount: 1 },
      { id: 'last', body: '"fail"', deliveryCount: 3 },
      { id: 'bad', body: '{not json', deliveryCount: 1 },
    );
    const consumer = consume(
      source,
      (payload: string) => {
        if (payload === 'fail') throw new Error('boom');
      },
      { concurrency: 4, name: 'jobs', maxDeliveries: 3 },
    );
    while (source.calls.length < 4) await flush();
    await consumer.close();
    const byId = Object.fromEntries(settled.map((m) => [m.id, m.outcome]));
    expect(byId).toEqual({
      ok: 'acked',
      again: 'retried',
      last: 'deadLettered',
      bad: 'deadLettered',
    });
    expect(settled.every((m) => m.name === 'jobs' && m.kind === 'consume')).toBe(true);
    expect(settled.find((m) => m.id === 'again')?.error?.message).toBe('boom');
    expect(dead.map((m) => [m.id, m.malformed, m.deliveryCount]).sort()).toEqual([
      ['bad', true, 1],
      ['last', false, 3],
    ]);
    const stats = consumer.stats();
    expect([stats.acked, stats.retried, stats.deadLettered]).toEqual([1, 1, 2]);
  });

  it('publishes released for messages handed back at a drain, canceled for those cut at its deadline', async () => {
    const settled = record<MessageSettledMessage>(SLUICE_MESSAGE_SETTLED);
    const source = new MemorySource();
    source.push('1', '2');
    const started = deferred<void>();
    const consumer = consume(
      source,
      (_: unknown, ctx) =>
        new Promise<void>((_resolve, reject) => {
          started.resolve();
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
        }),
      { concurrency: 2, name: 'slow', rate: { limit: 1, interval: 60_000 } },
    );
    await started.promise;
    await consumer.drain({ timeout: 0 });
    expect(settled.map((m) => m.outcome).sort()).toEqual(['canceled', 'released']);
    const stats = consumer.stats();
    expect([stats.released, stats.canceled]).toEqual([1, 1]);
  });

  it('publishes lease-lost when a heartbeat reports the loss, and nothing else for that message', async () => {
    const settled = record<MessageSettledMessage>(SLUICE_MESSAGE_SETTLED);
    const lost = record<MessageLeaseLostMessage>(SLUICE_MESSAGE_LEASE_LOST);
    vi.useFakeTimers();
    const source = new MemorySource();
    source.heartbeatInterval = 10;
    source.heartbeat = async (_m: BrokerMessage) => false;
    source.push({ id: 'x', body: '1', deliveryCount: 1 });
    const finish = deferred<void>();
    const consumer = consume(source, () => finish.promise, { concurrency: 1, name: 'leases' });
    await vi.advanceTimersByTimeAsync(10);
    finish.resolve();
    await vi.advanceTimersByTimeAsync(0);
    vi.useRealTimers();
    await consumer.close();
    expect(lost.map((m) => [m.name, m.id, m.detectedBy])).toEqual([['leases', 'x', 'heartbeat']]);
    expect(settled.map((m) => [m.id, m.outcome])).toEqual([['x', 'leaseLost']]);
    expect(source.ops('ack')).toEqual([]);
    expect(consumer.stats().leaseLost).toBe(1);
  });

  it('publishes lease-lost when the broker refuses the ack', async () => {
    const settled = record<MessageSettledMessage>(SLUICE_MESSAGE_SETTLED);
    const lost = record<MessageLeaseLostMessage>(SLUICE_MESSAGE_LEASE_LOST);
    const source = new MemorySource();
    source.ack = async () => {
      throw Object.assign(new Error('owned by another consumer'), { code: 'ERR_LEASE_LOST' });
    };
    source.push({ id: 'y', body: '1', deliveryCount: 1 });
    const consumer = consume(source, () => {}, {
      concurrency: 1,
      name: 'refused',
      onError: () => {},
    });
    while (consumer.stats().leaseLost < 1) await flush();
    await consumer.close();
    expect(lost.map((m) => [m.id, m.detectedBy])).toEqual([['y', 'settle']]);
    expect(settled.map((m) => [m.id, m.outcome])).toEqual([['y', 'leaseLost']]);
  });

  it('publishes unsettled, with the failure, when an ack fails for another reason (not a lost lease)', async () => {
    const settled = record<MessageSettledMessage>(SLUICE_MESSAGE_SETTLED);
    const lost = record<MessageLeaseLostMessage>(SLUICE_MESSAGE_LEASE_LOST);
    const failure = Object.assign(new Error('no reply'), { code: 'ERR_SETTLE_TIMEOUT' });
    const source = new MemorySource();
    source.ack = async () => {
      throw failure;
    };
    source.push({ id: 'z', body: '1', deliveryCount: 1 });
    const consumer = consume(source, () => {}, {
      concurrency: 1,
      name: 'outage',
      onError: () => {},
    });
    while (consumer.stats().unsettled < 1) await flush();
    await consumer.close();
    expect(settled.map((m) => [m.id, m.outcome, m.error])).toEqual([['z', 'unsettled', failure]]);
    expect(lost).toEqual([]);
  });
});
