/**
 * The batch settle path: a source with `ackMany` gets one call per batch outcome for the
 * messages that succeeded (per source), and the consumer still counts, reports and frees each
 * message on its own. Over an in-memory source; the real brokers are in
 * fixtures/brokers/batch-cases.ts.
 */
import { describe, expect, it } from 'vitest';
import { type BatchItem, consume } from '../../src/brokers/consumer.js';
import type { BrokerMessage } from '../../src/brokers/source.js';
import { LeaseLostError } from '../../src/errors.js';
import { delegate } from '../fixtures/brokers/consumer-harness.js';
import { MemorySource } from '../fixtures/brokers/memory-source.js';
import { deferred, flush } from '../helpers.js';

/** A MemorySource with `ackMany`; `reply` decides what each call resolves with (default: all acked). */
class ManySource extends MemorySource {
  readonly many: string[][] = [];
  reply: (
    messages: readonly BrokerMessage[],
  ) => Promise<readonly (Error | undefined)[] | undefined> = async () => undefined;
  ackMany = (messages: readonly BrokerMessage[]) => {
    this.many.push(messages.map((m) => m.id));
    return this.reply(messages);
  };
}

const pushN = (s: MemorySource, n: number, from = 0) => {
  for (let i = from; i < from + n; i++) s.push(JSON.stringify(i));
};

/** A batch handler failing the items whose payload is in `bad`. */
const failing =
  (bad: Set<number>) =>
  (items: readonly BatchItem<number>[]): Map<BatchItem<number>, true | Error> =>
    new Map(items.map((i) => [i, bad.has(i.payload) ? new Error(`bad ${i.payload}`) : true]));

describe('consume() with batch over a source with ackMany', () => {
  it('a mixed batch acks exactly the ok messages in one ackMany call; the failed ones are retried, then dead-lettered, once each', async () => {
    const s = new ManySource();
    pushN(s, 6);
    const c = consume<number>(s, failing(new Set([1, 4])), {
      concurrency: 6,
      maxDeliveries: 1,
      batch: { size: 6 },
      onError: () => {},
    });
    while (c.stats().acked + c.stats().deadLettered < 6) await flush();
    const report = await c.close();
    expect(s.many).toEqual([['m0-0', 'm2-2', 'm3-3', 'm5-5']]);
    expect(s.ops('ack')).toEqual([]);
    expect(s.ops('deadLetter').map((x) => x.id)).toEqual(['m1-1', 'm4-4']);
    expect(report.stats).toMatchObject({
      acked: 4,
      deadLettered: 2,
      retried: 0,
      held: 0,
      errors: 0,
    });

    const r = new ManySource();
    pushN(r, 3);
    const d = consume<number>(r, failing(new Set([0])), {
      concurrency: 3,
      maxDeliveries: 2,
      batch: { size: 3 },
      backoff: { initial: 1, max: 1, jitter: 0 },
    });
    while (d.stats().acked + d.stats().retried < 3) await flush();
    await d.close();
    expect(r.many).toEqual([['m1-1', 'm2-2']]);
    expect(r.ops('retry').map((x) => x.id)).toEqual(['m0-0']);
  });

  it('a batch with one ok message acks it with ack, not ackMany', async () => {
    const s = new ManySource();
    pushN(s, 2);
    const c = consume<number>(s, failing(new Set([0])), {
      concurrency: 2,
      maxDeliveries: 1,
      batch: { size: 2 },
      onError: () => {},
    });
    while (c.stats().acked + c.stats().deadLettered < 2) await flush();
    await c.close();
    expect(s.many).toEqual([]);
    expect(s.ops('ack').map((x) => x.id)).toEqual(['m1-1']);
  });

  it("ackMany's per-message refusal (LeaseLostError) counts leaseLost and reports that message; the others count as acked", async () => {
    const s = new ManySource();
    s.reply = async (messages) =>
      messages.map((m) => (m.id === 'm1-1' ? new LeaseLostError(m.id, 'ack') : undefined));
    pushN(s, 3);
    const errors: [string, string | undefined][] = [];
    const c = consume<number>(s, () => undefined, {
      concurrency: 3,
      batch: { size: 3 },
      onError: (_e, op, m) => errors.push([op, m?.id]),
    });
    while (c.stats().acked < 2) await flush();
    const report = await c.close();
    expect(s.many).toEqual([['m0-0', 'm1-1', 'm2-2']]);
    expect(errors).toEqual([['ack', 'm1-1']]);
    expect(report.stats).toMatchObject({ acked: 2, leaseLost: 1, errors: 1, held: 0 });
  });

  it('ackMany rejecting (or throwing, or resolving the wrong number of results) acks none: each message is reported once and its slot frees', async () => {
    for (const kind of ['reject', 'throw', 'short'] as const) {
      const s = new ManySource();
      const broken = new Error('connection reset');
      s.reply = (messages) => {
        if (kind === 'throw') throw broken;
        if (kind === 'reject') return Promise.reject(broken);
        return Promise.resolve(messages.slice(1).map(() => undefined));
      };
      pushN(s, 4);
      const errors: [string, string | undefined, string][] = [];
      const c = consume<number>(s, () => undefined, {
        concurrency: 4,
        batch: { size: 4 },
        onError: (e, op, m) => errors.push([op, m?.id, e.message]),
      });
      while (c.stats().errors < 4) await flush();
      expect(c.stats().held).toBe(0);
      const report = await c.close();
      expect(errors.map(([op, id]) => `${op} ${id}`)).toEqual([
        'ack m0-0',
        'ack m1-1',
        'ack m2-2',
        'ack m3-3',
      ]);
      if (kind === 'short') expect(errors[0]![2]).toMatch(/ackMany resolved with 3 results for 4/);
      else expect(errors[0]![2]).toBe('connection reset');
      expect(report.stats).toMatchObject({ acked: 0, errors: 4, leaseLost: 0, held: 0 });
    }
  });

  it('ackMany resolving with an array whose reading throws (a Proxy), or with an entry whose code getter throws, is counted per message and reported, never thrown', async () => {
    const trap = () => {
      throw new Error('trap');
    };
    for (const kind of ['proxy-array', 'hostile-entry'] as const) {
      const s = new ManySource();
      s.reply = async (messages) =>
        kind === 'proxy-array'
          ? new Proxy(
              messages.map(() => undefined),
              { get: trap },
            )
          : messages.map(() => new Proxy(new Error('refused'), { get: trap }));
      pushN(s, 4);
      const errors: string[] = [];
      const c = consume<number>(s, () => undefined, {
        concurrency: 4,
        batch: { size: 4 },
        onError: (_e, op, m) => errors.push(`${op} ${m?.id}`),
      });
      while (c.stats().errors < 4) await flush();
      expect(c.stats().held).toBe(0);
      const report = await c.close();
      expect(errors).toEqual(['ack m0-0', 'ack m1-1', 'ack m2-2', 'ack m3-3']);
      expect(report.stats).toMatchObject({ acked: 0, unsettled: 4, errors: 4, held: 0 });
    }
  });

  it('an ackMany that empties its messages array (splice) still has each message counted acked', async () => {
    const s = new ManySource();
    s.reply = async (messages) => {
      (messages as BrokerMessage[]).splice(0);
      return undefined;
    };
    pushN(s, 4);
    const c = consume<number>(s, () => undefined, { concurrency: 4, batch: { size: 4 } });
    while (c.stats().acked < 4) await flush();
    const report = await c.close();
    expect(report.stats).toMatchObject({ acked: 4, errors: 0, held: 0 });
  });

  it('the slots of an ackMany free only once it settles: held counts the batch until then', async () => {
    const s = new ManySource();
    const gate = deferred<undefined>();
    s.reply = () => gate.promise;
    pushN(s, 4);
    const c = consume<number>(s, () => undefined, { concurrency: 4, batch: { size: 4 } });
    while (s.many.length === 0) await flush();
    for (let i = 0; i < 5; i++) await flush();
    expect(c.stats()).toMatchObject({ held: 4, acked: 0 });
    expect(s.asked.length).toBe(1); // no fetch while every slot waits for the ack
    gate.resolve(undefined);
    while (c.stats().acked < 4) await flush();
    expect(c.stats().held).toBe(0);
    await c.close();
  });

  it('an item whose lease a heartbeat found lost is left out of ackMany (never acked); the rest are acked in one call', async () => {
    const s = new ManySource();
    s.heartbeatInterval = 5;
    s.heartbeat = async (m) => m.id !== 'm1-1';
    pushN(s, 3);
    const lost = deferred<void>();
    const c = consume<number>(
      s,
      async (items) => {
        const taken = items[1]!;
        await new Promise((resolve) => taken.signal.addEventListener('abort', resolve));
        lost.resolve();
      },
      { concurrency: 3, batch: { size: 3 } },
    );
    await lost.promise;
    while (c.stats().held > 0) await flush();
    const report = await c.close();
    expect(s.many).toEqual([['m0-0', 'm2-2']]);
    expect(s.ops('ack')).toEqual([]);
    expect(report.stats).toMatchObject({ acked: 2, leaseLost: 1 });
  });

  it('several sources: a batch spanning them acks with one ackMany per source; a source without ackMany gets ack per message', async () => {
    const a = new ManySource();
    const b = new ManySource();
    const plain = new MemorySource();
    pushN(a, 2);
    pushN(b, 2, 10);
    pushN(plain, 2, 20);
    const c = consume<number>([a, b, plain], () => undefined, {
      concurrency: 6,
      batch: { size: 6, maxWait: 1000 },
    });
    while (c.stats().acked < 6) await flush();
    const report = await c.close();
    expect(report.stats.batches).toBe(1);
    expect(a.many).toEqual([['m0-0', 'm1-1']]);
    expect(b.many).toEqual([['m0-10', 'm1-11']]);
    expect(plain.ops('ack').map((x) => x.id)).toEqual(['m0-20', 'm1-21']);
  });

  it('one message at a time: handlers that finish in the same turn are acked with one ackMany call; a failed one is retried on its own', async () => {
    const s = new ManySource();
    pushN(s, 5);
    const c = consume<number>(
      s,
      (n) => {
        if (n === 2) throw new Error('bad 2');
      },
      { concurrency: 5, maxDeliveries: 1, onError: () => {} },
    );
    while (c.stats().acked + c.stats().deadLettered < 5) await flush();
    const report = await c.close();
    expect(s.many).toEqual([['m0-0', 'm1-1', 'm3-3', 'm4-4']]);
    expect(s.ops('ack')).toEqual([]);
    expect(s.ops('deadLetter').map((x) => x.id)).toEqual(['m2-2']);
    expect(report.stats).toMatchObject({ acked: 4, deadLettered: 1, held: 0 });
  });

  it('the test helper delegate() forwards ackMany, except when it replaces ack (which then sees every ack)', async () => {
    const run = async (replaceAck: boolean) => {
      const s = new ManySource();
      pushN(s, 3);
      const acked: string[] = [];
      const source = delegate(
        s,
        replaceAck
          ? {
              ack: (m) => {
                acked.push(m.id);
                return s.ack(m);
              },
            }
          : {},
      );
      const c = consume<number>(source, () => undefined, {
        concurrency: 3,
        batch: { size: 3, maxWait: 1000 },
      });
      while (c.stats().acked < 3) await flush();
      await c.close();
      return { many: s.many, acked };
    };
    expect(await run(false)).toEqual({ many: [['m0-0', 'm1-1', 'm2-2']], acked: [] });
    expect(await run(true)).toEqual({ many: [], acked: ['m0-0', 'm1-1', 'm2-2'] });
  });
});
