import { getEventListeners } from 'node:events';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AbortError, Channel, ChannelClosedError } from '../src/index.js';

import { flush } from './helpers.js';

describe('Channel: buffered and unbuffered', () => {
  it('buffers up to capacity and delivers FIFO', async () => {
    const ch = new Channel<number>(3);
    expect(ch.trySend(1)).toBe(true);
    expect(ch.trySend(2)).toBe(true);
    expect(ch.trySend(3)).toBe(true);
    expect(ch.trySend(4)).toBe(false);
    expect(ch.length).toBe(3);
    expect(await ch.receive()).toEqual({ done: false, value: 1 });
    expect(ch.tryReceive()).toEqual({ done: false, value: 2 });
    expect(ch.tryReceive()).toEqual({ done: false, value: 3 });
    expect(ch.tryReceive()).toBeUndefined();
  });

  it('unbuffered: send completes only when a receiver takes the value (rendezvous)', async () => {
    const ch = new Channel<string>(0);
    expect(ch.trySend('x')).toBe(false);
    let sent = false;
    const sending = ch.send('a').then(() => {
      sent = true;
    });
    await flush();
    expect(sent).toBe(false);
    expect(ch.length).toBe(0);
    expect(await ch.receive()).toEqual({ done: false, value: 'a' });
    await sending;
    expect(sent).toBe(true);
  });

  it('unbuffered: a waiting receiver takes a trySend at once', async () => {
    const ch = new Channel<number>();
    const r = ch.receive();
    expect(ch.trySend(7)).toBe(true);
    expect(await r).toEqual({ done: false, value: 7 });
  });

  it('send waits while full and resumes in FIFO order as room opens', async () => {
    const ch = new Channel<number>(1);
    await ch.send(1);
    const order: number[] = [];
    const s2 = ch.send(2).then(() => order.push(2));
    const s3 = ch.send(3).then(() => order.push(3));
    await flush();
    expect(order).toEqual([]);
    expect((await ch.receive()).value).toBe(1);
    await s2;
    expect(order).toEqual([2]);
    expect((await ch.receive()).value).toBe(2);
    await s3;
    expect((await ch.receive()).value).toBe(3);
    expect(order).toEqual([2, 3]);
  });

  it('many producers and consumers at once: every value arrives exactly once', async () => {
    const ch = new Channel<number>(4);
    const producers = Array.from({ length: 5 }, (_, p) =>
      (async () => {
        for (let i = 0; i < 200; i++) await ch.send(p * 1000 + i);
      })(),
    );
    const seen: number[] = [];
    const consumers = Array.from({ length: 3 }, () =>
      (async () => {
        for await (const v of ch) seen.push(v);
      })(),
    );
    await Promise.all(producers);
    ch.close();
    await Promise.all(consumers);
    expect(seen.length).toBe(1000);
    expect(new Set(seen).size).toBe(1000);
  });

  it('for await ends after close once the buffer is empty', async () => {
    const ch = new Channel<number>(10);
    for (let i = 0; i < 5; i++) await ch.send(i);
    ch.close();
    const got: number[] = [];
    for await (const v of ch) got.push(v);
    expect(got).toEqual([0, 1, 2, 3, 4]);
  });

  it('rejects a bad capacity at construction, naming the option and value', () => {
    expect(() => new Channel(-1)).toThrow(RangeError);
    expect(() => new Channel(-1)).toThrow(/"capacity".*-1/);
    expect(() => new Channel(1.5)).toThrow(/"capacity".*1\.5/);
    expect(() => new Channel(Number.NaN)).toThrow(RangeError);
    expect(() => new Channel('4' as unknown as number)).toThrow(TypeError);
    expect(new Channel(Number.POSITIVE_INFINITY).capacity).toBe(Number.POSITIVE_INFINITY);
  });

  it('a null capacity means the default, unbuffered, as an omitted one (null is a default everywhere)', async () => {
    const ch = new Channel<number>(null);
    expect(ch.capacity).toBe(0);
    expect(new Channel().capacity).toBe(0);
    // Unbuffered: no room for a send until a receiver comes.
    expect(ch.trySend(1)).toBe(false);
    const received = ch.receive();
    expect(ch.trySend(2)).toBe(true);
    expect(await received).toEqual({ value: 2, done: false });
  });
});

describe('Channel: close', () => {
  it('is idempotent; later sends reject with ChannelClosedError; trySend throws', async () => {
    const ch = new Channel<number>(1);
    ch.close();
    ch.close();
    expect(ch.closed).toBe(true);
    await expect(ch.send(1)).rejects.toBeInstanceOf(ChannelClosedError);
    await expect(ch.send(1)).rejects.toMatchObject({ code: 'ERR_CHANNEL_CLOSED' });
    expect(() => ch.trySend(1)).toThrow(ChannelClosedError);
  });

  it('sends waiting at close reject; receivers still get every value buffered before close', async () => {
    const ch = new Channel<number>(2);
    await ch.send(1);
    await ch.send(2);
    const waiting = ch.send(3);
    ch.close();
    await expect(waiting).rejects.toBeInstanceOf(ChannelClosedError);
    expect(await ch.receive()).toEqual({ done: false, value: 1 });
    expect(await ch.receive()).toEqual({ done: false, value: 2 });
    expect(await ch.receive()).toEqual({ done: true, value: undefined });
    expect(ch.tryReceive()).toEqual({ done: true, value: undefined });
  });

  it('receivers waiting on an empty channel get done at close', async () => {
    const ch = new Channel<number>(2);
    const r1 = ch.receive();
    const r2 = ch.receive();
    ch.close();
    expect(await r1).toEqual({ done: true, value: undefined });
    expect(await r2).toEqual({ done: true, value: undefined });
  });
});

describe('Channel: abort', () => {
  it('an aborted send rejects with AbortError, is not delivered, and removes its listener', async () => {
    const ch = new Channel<number>(0);
    const ac = new AbortController();
    const sending = ch.send(1, { signal: ac.signal });
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
    ac.abort('stop');
    await expect(sending).rejects.toBeInstanceOf(AbortError);
    await expect(sending).rejects.toMatchObject({ cause: 'stop' });
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    // The channel is consistent: the aborted value is gone, the next send pairs normally.
    expect(ch.tryReceive()).toBeUndefined();
    const next = ch.send(2);
    expect(await ch.receive()).toEqual({ done: false, value: 2 });
    await next;
  });

  it('an aborted receive rejects with AbortError and takes no value', async () => {
    const ch = new Channel<number>(1);
    const ac = new AbortController();
    const receiving = ch.receive({ signal: ac.signal });
    ac.abort();
    await expect(receiving).rejects.toBeInstanceOf(AbortError);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    expect(ch.trySend(5)).toBe(true);
    expect(ch.length).toBe(1);
    expect(await ch.receive()).toEqual({ done: false, value: 5 });
  });

  it('a completed send or receive removes its listener from the signal', async () => {
    const ch = new Channel<number>(0);
    const ac = new AbortController();
    const r = ch.receive({ signal: ac.signal });
    const s = ch.send(1, { signal: ac.signal });
    await Promise.all([r, s]);
    const r2 = ch.receive({ signal: ac.signal });
    await ch.send(2, { signal: ac.signal });
    await r2;
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('an already-aborted signal rejects at once, even when there is room', async () => {
    const ch = new Channel<number>(5);
    const signal = AbortSignal.abort('early');
    await expect(ch.send(1, { signal })).rejects.toBeInstanceOf(AbortError);
    await expect(ch.receive({ signal })).rejects.toBeInstanceOf(AbortError);
    expect(ch.length).toBe(0);
  });

  it('a signal shared by many waiting sends holds one listener, not one per send', async () => {
    const ch = new Channel<number>(0);
    const ac = new AbortController();
    const sends = Array.from({ length: 50 }, (_, i) => ch.send(i, { signal: ac.signal }));
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
    ac.abort();
    const outcomes = await Promise.allSettled(sends);
    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });
});

type Op =
  | { kind: 'send'; producer: number; abortAfter: number | undefined }
  | { kind: 'receive'; abortAfter: number | undefined }
  | { kind: 'tick' };

describe('Channel: property', () => {
  it('every value whose send resolved is received exactly once, per-producer order holds, nothing else arrives', async () => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({
        kind: fc.constant('send' as const),
        producer: fc.integer({ min: 0, max: 3 }),
        abortAfter: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
      }),
      fc.record({
        kind: fc.constant('receive' as const),
        abortAfter: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
      }),
      fc.constant({ kind: 'tick' as const }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 4 }),
        fc.array(op, { maxLength: 60 }),
        fc.integer({ min: 0, max: 60 }),
        async (capacity, ops, closeAt) => {
          const ch = new Channel<{ producer: number; seq: number }>(capacity);
          const sentOk: { producer: number; seq: number }[] = [];
          const received: { producer: number; seq: number }[] = [];
          const seqs = [0, 0, 0, 0];
          const pending: Promise<unknown>[] = [];
          const aborts: { controller: AbortController; at: number }[] = [];
          for (let step = 0; step < ops.length; step++) {
            if (step === closeAt) ch.close();
            for (const a of aborts) if (a.at === step) a.controller.abort();
            const o = ops[step] as Op;
            if (o.kind === 'tick') {
              await flush();
              continue;
            }
            const controller = new AbortController();
            if (o.abortAfter !== undefined) aborts.push({ controller, at: step + o.abortAfter });
            if (o.kind === 'send') {
              const v = { producer: o.producer, seq: (seqs[o.producer] as number)++ };
              pending.push(
                ch.send(v, { signal: controller.signal }).then(
                  () => sentOk.push(v),
                  () => undefined,
                ),
              );
            } else {
              pending.push(
                ch.receive({ signal: controller.signal }).then(
                  (r) => {
                    if (!r.done) received.push(r.value);
                  },
                  () => undefined,
                ),
              );
            }
          }
          ch.close();
          await flush();
          // Drain what is still buffered; every pending operation must settle after close.
          for (let r = ch.tryReceive(); r && !r.done; r = ch.tryReceive()) received.push(r.value);
          await Promise.all(pending);
          const key = (v: { producer: number; seq: number }) => `${v.producer}:${v.seq}`;
          expect(received.map(key).sort()).toEqual(sentOk.map(key).sort());
          for (let p = 0; p < 4; p++) {
            const order = received.filter((v) => v.producer === p).map((v) => v.seq);
            expect(order).toEqual([...order].sort((a, b) => a - b));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('Channel: iterator', () => {
  it('return() while next() waits ends that wait with done, and a later send is not swallowed', async () => {
    const ch = new Channel<number>(1);
    const it = ch[Symbol.asyncIterator]();
    const waiting = it.next();
    await it.return?.();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(ch.trySend(7)).toBe(true);
    expect(ch.tryReceive()).toEqual({ done: false, value: 7 });
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });
});
