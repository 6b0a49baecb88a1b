/**
 * Batch handlers (`consume(…, { batch: { size, maxWait } })`) over an in-memory source: how
 * batches are cut, how per-message outcomes settle, the held bound and the drain. The same
 * behaviour against the real brokers is in fixtures/brokers/batch-cases.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type BatchItem, consume } from '../../src/brokers/consumer.js';
import { MalformedMessageError } from '../../src/errors.js';
import { MemorySource } from '../fixtures/brokers/memory-source.js';
import { deferred, flush } from '../helpers.js';

const pushN = (s: MemorySource, n: number, from = 0) => {
  for (let i = from; i < from + n; i++) s.push(JSON.stringify(i));
};

afterEach(() => {
  vi.useRealTimers();
});

describe('consume() with batch', () => {
  it('rejects a bad batch option at once: size above concurrency, not an integer, a negative maxWait', () => {
    const s = new MemorySource();
    expect(() => consume(s, () => {}, { concurrency: 4, batch: { size: 5 } })).toThrow(
      /Invalid option "batch.size": expected an integer from 1 to concurrency \(4\), got 5/,
    );
    expect(() => consume(s, () => {}, { concurrency: 4, batch: { size: 0 } })).toThrow(
      /batch.size/,
    );
    expect(() => consume(s, () => {}, { concurrency: 4, batch: { size: 2, maxWait: -1 } })).toThrow(
      /batch.maxWait/,
    );
    expect(() => consume(s, () => {}, { concurrency: 4, batch: 3 as never })).toThrow(/"batch"/);
  });

  it('maxWait 0: a batch is what one fetch returned, cut at size', async () => {
    const s = new MemorySource();
    pushN(s, 10);
    const sizes: number[] = [];
    const all = deferred<void>();
    let seen = 0;
    const c = consume<number>(
      s,
      (items) => {
        sizes.push(items.length);
        seen += items.length;
        if (seen === 10) all.resolve();
      },
      { concurrency: 8, batch: { size: 4 } },
    );
    await all.promise;
    const report = await c.close();
    // The first fetch brought 8 (two full batches); the next brought the last 2.
    expect(sizes).toEqual([4, 4, 2]);
    expect(report.stats).toMatchObject({ acked: 10, batches: 3 });
    expect(s.ops('ack')).toHaveLength(10);
  });

  it('maxWait: a batch that does not fill is handed over maxWait ms after its first message; a full one at once', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const s = new MemorySource();
    const batches: number[][] = [];
    const c = consume<number>(s, (items) => void batches.push(items.map((i) => i.payload)), {
      concurrency: 10,
      batch: { size: 5, maxWait: 50 },
    });
    pushN(s, 2);
    await flush();
    await vi.advanceTimersByTimeAsync(49);
    expect(batches).toEqual([]);
    expect(c.stats().held).toBe(2); // waiting for its batch: held, counted against concurrency
    pushN(s, 1, 2);
    await flush();
    await vi.advanceTimersByTimeAsync(1);
    expect(batches).toEqual([[0, 1, 2]]); // 50 ms after the first, with what came meanwhile
    pushN(s, 5, 3);
    await flush();
    expect(batches).toEqual([
      [0, 1, 2],
      [3, 4, 5, 6, 7],
    ]); // full: no wait
    await c.close();
  });

  it('per-message outcomes: true acks, an Error retries, a MalformedMessageError dead-letters, an unlisted item counts as failed', async () => {
    const s = new MemorySource();
    pushN(s, 4);
    const c = consume<number>(
      s,
      (items) =>
        new Map<BatchItem<number>, true | Error>([
          [items[0]!, true],
          [items[1]!, new Error('no room for 1')],
          [items[2]!, new MalformedMessageError('2 is not an order')],
          // items[3]: no outcome
        ]),
      { concurrency: 4, batch: { size: 4 } },
    );
    while (s.calls.length < 4) await flush();
    const report = await c.close();
    expect(s.ops('ack').map((x) => x.id)).toEqual(['m0-0']);
    expect(s.ops('retry').map((x) => [x.id, x.error])).toEqual([
      ['m1-1', 'no room for 1'],
      ['m3-3', expect.stringMatching(/returned outcomes without one for this message/)],
    ]);
    expect(s.ops('deadLetter').map((x) => [x.id, x.error])).toEqual([
      ['m2-2', '2 is not an order'],
    ]);
    expect(report.stats).toMatchObject({ acked: 1, retried: 2, deadLettered: 1, malformed: 1 });
  });

  it('a throwing batch handler fails every message; on its last delivery each is dead-lettered', async () => {
    const s = new MemorySource();
    s.push({ id: 'a', body: '1', deliveryCount: 1 }, { id: 'b', body: '2', deliveryCount: 2 });
    const c = consume(
      s,
      () => {
        throw new Error('database down');
      },
      { concurrency: 2, maxDeliveries: 2, batch: { size: 2 } },
    );
    while (s.calls.length < 2) await flush();
    await c.close();
    expect(s.calls.map((x) => `${x.op} ${x.id} ${x.error}`).sort()).toEqual([
      'deadLetter b database down',
      'retry a database down',
    ]);
  });

  it('a return value that is neither undefined nor a Map fails every message with a TypeError ERR_INVALID_RETURN_VALUE', async () => {
    const s = new MemorySource();
    pushN(s, 2);
    const c = consume(s, () => [true, true] as never, { concurrency: 2, batch: { size: 2 } });
    while (s.calls.length < 2) await flush();
    await c.close();
    expect(s.ops('retry').map((x) => [x.error, x.code])).toEqual([
      [expect.stringMatching(/must return undefined .* or a Map/), 'ERR_INVALID_RETURN_VALUE'],
      [expect.stringMatching(/must return undefined .* or a Map/), 'ERR_INVALID_RETURN_VALUE'],
    ]);
  });

  it('an outcome that is neither true nor an Error fails its message with ERR_INVALID_RETURN_VALUE', async () => {
    const s = new MemorySource();
    pushN(s, 2);
    const c = consume(
      s,
      (items) => new Map(items.map((item, i) => [item, i === 0 ? true : ('yes' as never)])),
      { concurrency: 2, batch: { size: 2 } },
    );
    while (s.calls.length < 2) await flush();
    await c.close();
    expect(s.ops('ack')).toHaveLength(1);
    expect(s.ops('retry').map((x) => [x.error, x.code])).toEqual([
      [expect.stringMatching(/must be true .* or an Error/), 'ERR_INVALID_RETURN_VALUE'],
    ]);
  });

  it('a returned Map is read by its entries: overridden has/get that throw are not called, and both messages are acked', async () => {
    const s = new MemorySource();
    pushN(s, 2);
    class Hostile extends Map<unknown, unknown> {
      override has(): boolean {
        throw new Error('has');
      }
      override get(): unknown {
        throw new Error('get');
      }
    }
    const c = consume(s, (items) => new Hostile(items.map((item) => [item, true])) as never, {
      concurrency: 2,
      batch: { size: 2 },
    });
    while (s.calls.length < 2) await flush();
    await c.close();
    expect(s.ops('ack')).toHaveLength(2);
  });

  it('a returned value or outcome whose inspection throws (a Proxy of a Map, throwing traps) fails those messages with ERR_INVALID_RETURN_VALUE, never the process', async () => {
    const trap = () => {
      throw new Error('trap');
    };
    const returns: ((items: BatchItem<unknown>[]) => unknown)[] = [
      (items) => new Proxy(new Map(items.map((item) => [item, true])), {}),
      () => new Proxy({}, { getPrototypeOf: trap }),
      (items) => new Map(items.map((item) => [item, new Proxy({}, { getPrototypeOf: trap })])),
    ];
    for (const answer of returns) {
      const s = new MemorySource();
      pushN(s, 2);
      const c = consume(s, answer as never, { concurrency: 2, batch: { size: 2 } });
      while (s.calls.length < 2) await flush();
      await c.close();
      expect(s.ops('retry').map((x) => x.code)).toEqual([
        'ERR_INVALID_RETURN_VALUE',
        'ERR_INVALID_RETURN_VALUE',
      ]);
    }
  });

  it('a handler that empties, shortens or adds to its items array (splice in chunks, pop, push) still has every message of the batch settled', async () => {
    const edits: [string, (items: BatchItem<unknown>[]) => void][] = [
      ['splice', (items) => void items.splice(0)],
      ['pop', (items) => void items.pop()],
      ['push', (items) => void items.push({ payload: 9 } as never)],
      [
        'length = 0',
        (items) => {
          items.length = 0;
        },
      ],
    ];
    for (const [label, edit] of edits) {
      const s = new MemorySource();
      pushN(s, 4);
      const c = consume(s, (items) => void edit(items as BatchItem<unknown>[]), {
        concurrency: 4,
        batch: { size: 4 },
      });
      while (s.ops('ack').length < 4) await flush();
      const report = await c.close();
      expect({ label, acked: s.ops('ack').length }).toEqual({ label, acked: 4 });
      expect(report.stats).toMatchObject({ acked: 4, held: 0 });
    }
  });

  it('held stays within concurrency with batches running; after the first, a fetch asks for one batch at most, never more than the free slots', async () => {
    const s = new MemorySource();
    pushN(s, 30);
    const gates = [deferred<void>(), deferred<void>(), deferred<void>()];
    let n = 0;
    const c = consume(s, () => gates[n++]!.promise, {
      concurrency: 6,
      batch: { size: 3 },
    });
    await flush();
    // The first fetch asks for every free slot (RabbitMQ takes it as its prefetch).
    expect(s.asked).toEqual([6]);
    expect(c.stats()).toMatchObject({ held: 6, running: 2, batches: 2 });
    gates[0]!.resolve();
    while (s.asked.length < 2) await flush();
    expect(s.asked).toEqual([6, 3]); // the 3 acked messages freed 3 slots: one more batch
    gates[1]!.resolve();
    gates[2]!.resolve();
    while (s.asked.length < 4) await flush();
    // Later fetches ask for one batch at most (batches run out of step).
    expect(Math.max(...s.asked.slice(1))).toBe(3);
    for (const g of gates) g.resolve();
    while (s.ops('ack').length < 9) await flush();
    const report = await c.close();
    expect(report.stats.peakHeld).toBe(6);
    expect(Math.max(...s.asked)).toBeLessThanOrEqual(6);
  });

  it('drain: a running batch finishes and is acked; a batch still filling is released, never started', async () => {
    const s = new MemorySource();
    pushN(s, 3);
    const gate = deferred<void>();
    const started: number[] = [];
    const c = consume<number>(
      s,
      async (items) => {
        started.push(...items.map((i) => i.payload));
        await gate.promise;
      },
      { concurrency: 6, batch: { size: 3, maxWait: 60_000 } },
    );
    await flush();
    pushN(s, 2, 3); // the next batch waits to fill (60 s)
    while (c.stats().held < 5) await flush();
    const drained = c.drain();
    await flush();
    gate.resolve();
    const report = await drained;
    expect(started).toEqual([0, 1, 2]);
    expect(s.ops('ack')).toHaveLength(3);
    expect(s.ops('release')).toHaveLength(2);
    expect(report).toMatchObject({ completed: 3, released: 2, canceled: 0 });
  });

  it("one item's lost lease aborts that item's signal and drops its outcome; the rest of the batch is acked", async () => {
    const s = new MemorySource();
    s.heartbeatInterval = 5;
    s.heartbeat = async (m) => !m.id.endsWith('-1');
    pushN(s, 3);
    const lost = deferred<void>();
    const c = consume<number>(
      s,
      async (items) => {
        const taken = items.find((i) => i.payload === 1)!;
        await new Promise((resolve) => taken.signal.addEventListener('abort', resolve));
        expect(items.filter((i) => i.signal.aborted)).toEqual([taken]);
        lost.resolve();
      },
      { concurrency: 3, batch: { size: 3 } },
    );
    await lost.promise;
    while (c.stats().held > 0) await flush();
    const report = await c.close();
    expect(s.ops('ack')).toHaveLength(2);
    expect(s.ops('retry')).toHaveLength(0);
    expect(report.stats.leaseLost).toBe(1);
  });

  it("every item's signal of a large batch aborts with the batch, through one listener on the batch's signal (no MaxListenersExceededWarning)", async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const s = new MemorySource();
      pushN(s, 40);
      let signals: AbortSignal[] = [];
      const c = consume(
        s,
        (items) => {
          signals = items.map((item) => item.signal);
          return new Promise<void>((r) => signals[0]?.addEventListener('abort', () => r()));
        },
        { concurrency: 40, timeout: 10, batch: { size: 40 } },
      );
      while (s.calls.length < 40) await flush();
      await c.close();
      await new Promise((resolve) => setImmediate(resolve));
      expect(signals).toHaveLength(40);
      expect(signals.every((signal) => signal.aborted)).toBe(true);
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('timeout applies to the batch call: a batch past it fails every message (retried)', async () => {
    const s = new MemorySource();
    pushN(s, 2);
    const c = consume(
      s,
      (_items, { signal }) => new Promise<void>((r) => signal.addEventListener('abort', () => r())),
      {
        concurrency: 2,
        timeout: 10,
        batch: { size: 2 },
      },
    );
    while (s.calls.length < 2) await flush();
    await c.close();
    expect(s.ops('retry').map((x) => x.error)).toEqual([
      expect.stringMatching(/timed out/i),
      expect.stringMatching(/timed out/i),
    ]);
  });
});
