/**
 * One consumer over several sources (`consume([s1, s2, …], …)`) with in-memory sources: one cap
 * shared by all, round-robin hand-out of the free slots, each message settled on its own
 * source, one source's failure leaving the others running. Against real Redis streams:
 * redis.multi-source.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { coded } from '../../src/internal/options.js';
import { MemorySource } from '../fixtures/brokers/memory-source.js';
import { deferred, flush } from '../helpers.js';

const filled = (n: number, tag: string) => {
  const s = new MemorySource();
  for (let i = 0; i < n; i++) s.push(`"${tag}${i}"`);
  return s;
};

describe('consume() over several sources', () => {
  it('rejects an empty list, a non-source in the list and a source given twice', () => {
    const s = new MemorySource();
    expect(() => consume([], () => {}, { concurrency: 1 })).toThrow(/Invalid argument "source"/);
    expect(() => consume([s, {} as never], () => {}, { concurrency: 1 })).toThrow(TypeError);
    expect(() => consume([s, s], () => {}, { concurrency: 1 })).toThrow(/each given once/);
  });

  it('shares one concurrency: the fetches together never ask for more than the free slots', async () => {
    const sources = [filled(10, 'a'), filled(10, 'b'), filled(10, 'c')];
    const gate = deferred<void>();
    const c = consume(sources, () => gate.promise, { concurrency: 4 });
    await flush();
    const asked = sources.map((s) => s.asked.reduce((x, y) => x + y, 0));
    expect(asked.reduce((x, y) => x + y, 0)).toBe(4);
    expect(Math.min(...asked)).toBeGreaterThanOrEqual(1); // every source got some
    expect(c.stats()).toMatchObject({ held: 4, running: 4 });
    gate.resolve();
    while (sources.some((s) => s.ops('ack').length < 10)) await flush();
    const report = await c.close();
    expect(report.stats).toMatchObject({ acked: 30, peakHeld: 4 });
    expect(sources.map((s) => s.closed)).toEqual([true, true, true]);
  });

  it('a source with a big backlog does not starve the others: sources with work hold equal parts of the cap', async () => {
    const big = filled(200, 'big');
    const small = [filled(10, 's1'), filled(10, 's2'), filled(10, 's3')];
    const order: string[] = [];
    const c = consume<string>(
      [big, ...small],
      async (k) => {
        order.push(k);
        await flush();
      },
      { concurrency: 4 },
    );
    while (order.length < 230) await flush();
    await c.close();
    const lastSmall = Math.max(...order.map((k, i) => (k.startsWith('s') ? i : -1)));
    // 30 small messages among the first ~40 starts: each source gets a quarter while all have work.
    expect(lastSmall).toBeLessThan(48);
  });

  it('each message is acked on its own source; close releases and closes every source', async () => {
    const a = filled(2, 'a');
    const b = filled(2, 'b');
    const gate = deferred<void>();
    const c = consume([a, b], () => gate.promise, { concurrency: 2 });
    await flush();
    const drained = c.drain();
    gate.resolve();
    await drained;
    for (const s of [a, b]) {
      expect(s.calls.every((x) => x.id.includes(s === a ? '-"a' : '-"b'))).toBe(true);
      expect(s.closed).toBe(true);
    }
    expect(a.ops('ack').length + b.ops('ack').length).toBe(2);
  });

  it("one source's failing fetch does not stop the others; a misuse error stops that source only", async () => {
    const broken = new MemorySource();
    broken.fetchError = coded(new TypeError('the X source is closed'), 'ERR_INVALID_STATE');
    const flaky = filled(3, 'f');
    flaky.fetchError = new Error('connection reset');
    const good = filled(3, 'g');
    const errors: string[] = [];
    let handled = 0;
    const all = deferred<void>();
    const c = consume([broken, flaky, good], () => void (++handled === 6 && all.resolve()), {
      concurrency: 3,
      onError: (e, op) => errors.push(`${op}: ${e.message}`),
    });
    await all.promise;
    expect(c.closed).toBe(false);
    await c.close();
    expect(errors.sort()).toEqual(['fetch: connection reset', 'fetch: the X source is closed']);
    expect(broken.asked).toHaveLength(1); // not asked again after the misuse
  });

  it('when every source failed with a misuse error, the consumer drains itself', async () => {
    const sources = [new MemorySource(), new MemorySource()];
    for (const s of sources) s.fetchError = coded(new TypeError('closed'), 'ERR_INVALID_STATE');
    const c = consume(sources, () => {}, { concurrency: 2, onError: () => {} });
    const report = await c.done;
    expect(report.stats.errors).toBe(2);
  });

  it('batches over several sources: one batch may mix sources, each message settles on its own', async () => {
    const a = filled(3, 'a');
    const b = filled(3, 'b');
    const sizes: number[] = [];
    const c = consume([a, b], (items) => void sizes.push(items.length), {
      concurrency: 6,
      batch: { size: 6 },
    });
    while (a.ops('ack').length + b.ops('ack').length < 6) await flush();
    await c.close();
    expect(sizes.reduce((x, y) => x + y, 0)).toBe(6);
    expect(a.ops('ack')).toHaveLength(3);
    expect(b.ops('ack')).toHaveLength(3);
  });
});
