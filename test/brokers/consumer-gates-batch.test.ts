/**
 * The scheduler gates of `consume()` with a batch handler and with several sources, over
 * in-memory sources: with `batch`, `key`/`perKey`/`priority` are refused, `rate` counts batch
 * starts and `retry` settles each message; over several sources every gate spans them all.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { MemorySource } from '../fixtures/brokers/memory-source.js';
import { type Deferred, deferred, flush } from '../helpers.js';

const pushN = (s: MemorySource, n: number, from = 0) => {
  for (let i = from; i < from + n; i++) s.push(JSON.stringify(i));
};

afterEach(() => {
  vi.useRealTimers();
});

describe('consume() gates with batch', () => {
  it('refuses key, perKey and priority together with batch, naming the option', () => {
    const s = new MemorySource();
    const batch = { size: 2 };
    const cases = [
      { key: () => 'k' },
      { perKey: { concurrency: 1 } },
      { priority: () => 1 },
    ] as const;
    for (const gate of cases) {
      const name = Object.keys(gate)[0] as string;
      let thrown: unknown;
      try {
        consume(s, () => {}, { concurrency: 4, batch, ...gate } as never);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toMatchObject({ code: 'ERR_INVALID_OPTION' });
      expect((thrown as Error).message).toContain(`"${name}"`);
    }
    expect(s.asked).toEqual([]); // refused before anything was fetched
  });

  it('rate counts batch starts: one batch of two per interval, not one message', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const s = new MemorySource();
    pushN(s, 6);
    const batches: number[][] = [];
    const c = consume<number>(s, (items) => void batches.push(items.map((i) => i.payload)), {
      concurrency: 6,
      batch: { size: 2 },
      rate: { limit: 1, interval: 1000 },
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(batches).toEqual([[0, 1]]);
    await vi.advanceTimersByTimeAsync(999);
    expect(batches).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(batches).toEqual([
      [0, 1],
      [2, 3],
    ]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(batches).toHaveLength(3);
    const report = await c.close();
    expect(report.stats).toMatchObject({ acked: 6, batches: 3 });
  });

  it('retry applies per message: retryIf false dead-letters that message, the others retry', async () => {
    const s = new MemorySource();
    pushN(s, 3);
    const retryIf = vi.fn((error: Error) => error.message !== 'fatal');
    const c = consume<number>(
      s,
      (items) =>
        new Map(items.map((item) => [item, new Error(item.payload === 1 ? 'fatal' : 'again')])),
      {
        concurrency: 4,
        batch: { size: 3 },
        retry: { attempts: 3, backoff: { initial: 10 }, retryIf },
        onError: () => {},
      },
    );
    while (s.calls.length < 3) await flush();
    await c.close();
    expect(s.ops('deadLetter').map((call) => call.error)).toEqual(['fatal']);
    expect(s.ops('retry').map((call) => call.error)).toEqual(['again', 'again']);
    expect(retryIf).toHaveBeenCalledTimes(3);
  });
});

describe('consume() gates over several sources', () => {
  it('key spans the sources: two messages of one key never run at once, from whichever source', async () => {
    const a = new MemorySource();
    const b = new MemorySource();
    for (let i = 0; i < 4; i++) {
      a.push(JSON.stringify({ key: 'same', i }));
      b.push(JSON.stringify({ key: 'same', i: i + 4 }));
    }
    let running = 0;
    let peak = 0;
    const gates: Deferred<void>[] = [];
    const c = consume<{ key: string; i: number }>(
      [a, b],
      async () => {
        running++;
        peak = Math.max(peak, running);
        const gate = deferred<void>();
        gates.push(gate);
        await gate.promise;
        running--;
      },
      { concurrency: 8, key: (payload) => payload.key },
    );
    for (let n = 0; n < 8; n++) {
      while (gates.length <= n) await flush();
      await flush();
      expect(running).toBe(1);
      gates[n]?.resolve();
    }
    const report = await c.close();
    expect(peak).toBe(1);
    expect(report.stats.acked).toBe(8);
    expect(a.ops('ack')).toHaveLength(4);
    expect(b.ops('ack')).toHaveLength(4);
  });
});
