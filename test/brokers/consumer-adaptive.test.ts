/**
 * consume() with an adaptive `concurrency`, over the in-memory source: the cap on held messages
 * follows the limit, up and down. Handlers wait on latches; the limit runs on a virtual clock.
 */
import diagnostics from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import type { Consumer } from '../../src/brokers/consumer-types.js';
import { adaptive } from '../../src/gates/adaptive.js';
import { type PoolLimitMessage, SLUICE_POOL_LIMIT } from '../../src/observability/channels.js';
import { MemorySource } from '../fixtures/brokers/memory-source.js';
import { type Deferred, deferred, flush } from '../helpers.js';

const overloaded = () => Object.assign(new Error('busy'), { status: 503 });

/** A source whose fetches check the cap: asked + held <= the limit when the fetch starts. */
function checkedSource(limit: () => number, consumer: () => Consumer | undefined) {
  const s = new MemorySource();
  const fetch = s.fetch.bind(s);
  const violations: string[] = [];
  s.fetch = (max, signal) => {
    const held = consumer()?.stats().held ?? 0;
    if (held + max > limit()) violations.push(`asked ${max} with ${held} held, limit ${limit()}`);
    return fetch(max, signal);
  };
  return { s, violations };
}

describe('consume() with an adaptive concurrency', () => {
  it('fetches up to the limit as it grows, and nothing after a drop until held falls below it', async () => {
    const limit = adaptive({
      min: 1,
      max: 8,
      initial: 2,
      algorithm: { name: 'aimd', backoff: 0.5, tolerance: Number.POSITIVE_INFINITY },
      now: () => 0,
    });
    let c: Consumer | undefined;
    const { s, violations } = checkedSource(
      () => limit.limit,
      () => c,
    );
    for (let i = 0; i < 60; i++) s.push(JSON.stringify(i));
    const running: Deferred<void>[] = [];
    c = consume(
      s,
      () => {
        const d = deferred<void>();
        running.push(d);
        return d.promise;
      },
      { concurrency: limit, name: 'adaptive-consumer' },
    );
    await flush();
    expect(s.asked).toEqual([2]);
    // Slow start: each saturated success adds 1, and the freed slot plus the new one are fetched.
    while (limit.limit < 8) {
      running.shift()!.resolve();
      await flush();
      expect(c.stats().held).toBe(limit.limit);
    }
    expect(c.stats()).toMatchObject({ held: 8, running: 8, limit: { current: 8, min: 1, max: 8 } });

    // One overload failure halves the limit; the 7 messages still held keep running.
    const asked = s.asked.length;
    running.shift()!.reject(overloaded());
    await flush();
    expect(limit.limit).toBe(4);
    const heldAtDrop = c.stats().held;
    expect(heldAtDrop).toBe(7);
    expect(s.asked.length).toBe(asked); // nothing fetched while held >= the new limit
    // Each success frees one held message; the first fetch comes once held is below the limit.
    while (s.asked.length === asked) {
      expect(c.stats().held).toBeGreaterThanOrEqual(limit.limit);
      expect(c.stats().held).toBeLessThanOrEqual(limit.limit + heldAtDrop);
      running.shift()!.resolve();
      await flush();
    }
    expect(s.asked.at(-1)).toBe(1); // asked for the one free slot only
    expect(c.stats().held).toBe(limit.limit);

    while (running.length > 0) {
      running.shift()!.resolve();
      await flush();
    }
    const report = await c.close();
    expect(violations).toEqual([]);
    expect(report.stats.peakHeld).toBe(8);
    expect(report.stats.limit?.history.map((h) => h.reason)).toContain('drop');
    expect(s.ops('retry')).toHaveLength(1);
  });

  it('publishes its limit moves on sluice:pool:limit with the consumer name and kind', async () => {
    const seen: PoolLimitMessage[] = [];
    const onLimit = (m: unknown) => seen.push(m as PoolLimitMessage);
    diagnostics.subscribe(SLUICE_POOL_LIMIT, onLimit);
    try {
      const limit = adaptive({ min: 1, max: 3, algorithm: 'aimd', now: () => 0 });
      const s = new MemorySource();
      s.push('1', '2', '3', '4');
      const c = consume(s, () => {}, { concurrency: limit, name: 'orders' });
      while (s.ops('ack').length < 4) await flush();
      await c.close();
      expect(seen.length).toBeGreaterThan(0);
      expect(seen[0]).toMatchObject({ name: 'orders', kind: 'consume', previous: 1, limit: 2 });
      expect(seen.map((m) => m.limit)).toEqual(limit.history.map((h) => h.to));
    } finally {
      diagnostics.unsubscribe(SLUICE_POOL_LIMIT, onLimit);
    }
  });

  it('refuses an adaptive limit with batch, or one already used by another pool', () => {
    const s = new MemorySource();
    expect(() =>
      consume(s, () => {}, {
        concurrency: adaptive({ min: 1, max: 10 }),
        batch: { size: 2 },
      } as never),
    ).toThrow(/Invalid option "concurrency": expected a positive integer with `batch`/);
    const shared = adaptive({ min: 1, max: 10 });
    const first = consume(s, () => {}, { concurrency: shared });
    expect(() => consume(new MemorySource(), () => {}, { concurrency: shared })).toThrow(
      /an adaptive\(\) limit not used by another pool/,
    );
    return first.close();
  });
});
