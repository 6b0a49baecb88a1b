// Unit tests of the ThreadPool internals that need no thread.
import { describe, expect, it } from 'vitest';
import { JobFailedError } from '../../src/errors.js';
import { ParkedRuns } from '../../src/internal/parked-runs.js';
import { BatchSize, MAX_BATCH } from '../../src/threads/batch-size.js';
import { Fifo } from '../../src/threads/fifo.js';
import { describeThrown, deserializeError, serializeError } from '../../src/threads/messages.js';
import { SentList } from '../../src/threads/sent-list.js';
import { restartDelay } from '../../src/threads/startup.js';

class ParseError extends Error {
  line = 12;
}

describe('error serialization', () => {
  it('keeps class name, message, stack, plain props and the cause chain', () => {
    const original = new ParseError('bad token', { cause: new TypeError('inner') });
    const copy = deserializeError(structuredClone(serializeError(original)));
    expect(copy).toBeInstanceOf(Error);
    expect(copy.name).toBe('ParseError');
    expect(copy.message).toBe('bad token');
    expect(copy.stack).toBe(original.stack);
    expect((copy as ParseError).line).toBe(12);
    expect(copy.cause).toBeInstanceOf(TypeError);
    expect((copy.cause as Error).message).toBe('inner');
  });

  it('turns a thrown non-Error into JobFailedError, an unclonable one into its description', () => {
    const value = deserializeError(structuredClone(serializeError({ reason: 'x' })));
    expect(value).toBeInstanceOf(JobFailedError);
    expect(value.cause).toEqual({ reason: 'x' });
    expect(value.message).toBe("job failed with a non-Error value: an object { reason: 'x' }");
    const fn = deserializeError(structuredClone(serializeError(function parse() {})));
    expect(fn.cause).toBe('[Function: parse]');
  });

  it('an unclonable thrown object is described by its contents, not as [object Object]', () => {
    const thrown = { retry: () => 1, attempt: 2 };
    const copy = deserializeError(structuredClone(serializeError(thrown)));
    expect(copy.cause).toBe('an object { retry: [Function: retry], attempt: 2 }');
    const bare = Object.assign(Object.create(null), { retry: () => 1 });
    expect(() => serializeError(bare)).not.toThrow();
  });
});

describe('error serialization of values whose inspection throws', () => {
  const revoked = (): object => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    return proxy;
  };
  const trap = (): never => {
    throw new Error('trap');
  };
  const getterError = (): Error => {
    const error = new Error('unused');
    Object.defineProperty(error, 'message', { get: trap });
    Object.defineProperty(error, 'name', { get: trap });
    return error;
  };
  const hostile: [string, () => unknown][] = [
    ['a revoked Proxy', revoked],
    [
      'a Proxy whose traps throw',
      () => new Proxy(new Error('x'), { get: trap, getPrototypeOf: trap, ownKeys: trap }),
    ],
    ['an Error whose message and name getters throw', getterError],
    ['an Error whose cause is a revoked Proxy', () => new Error('outer', { cause: revoked() })],
    [
      'an Error whose constructor getter throws',
      () => Object.defineProperty(new Error('c'), 'constructor', { get: trap }),
    ],
  ];
  it.each(hostile)(
    '%s: serializes without throwing, to something postMessage-able that becomes an Error',
    (_, make) => {
      const data = serializeError(make());
      const copy = deserializeError(structuredClone(data));
      expect(copy).toBeInstanceOf(Error);
      expect(typeof copy.message).toBe('string');
    },
  );
  it('describeThrown never throws and names the value', () => {
    expect(describeThrown(revoked())).toMatch(/object/);
    expect(describeThrown(new TypeError('t'))).toBe('TypeError: t');
    const bad = new Error('b');
    Object.defineProperty(bad, 'toString', { value: trap });
    expect(typeof describeThrown(bad)).toBe('string');
  });
});

describe('Fifo', () => {
  const item = (n: number, priority = 0) => ({ n, priority });
  type Item = ReturnType<typeof item>;
  const drain = (fifo: Fifo<Item>) => {
    const out: number[] = [];
    for (let i = fifo.shift(); i !== undefined; i = fifo.shift()) out.push(i.n);
    return out;
  };

  it('is first in, first out, with taken-back items in front and removal from the middle', () => {
    const fifo = new Fifo<Item>();
    const items = Array.from({ length: 5 }, (_, i) => item(i));
    for (const i of items) fifo.push(i);
    expect(fifo.shift()?.n).toBe(0);
    fifo.unshiftAll([item(10), item(11)]);
    expect(fifo.remove(items[2] as Item)).toBe(true);
    expect(fifo.remove(item(99))).toBe(false);
    expect(fifo.find((i) => i.n > 10)?.n).toBe(11);
    expect(fifo.peek()?.n).toBe(10);
    expect(drain(fifo)).toEqual([10, 11, 1, 3, 4]);
    expect(fifo.length).toBe(0);
  });

  it('orders by priority, higher first, FIFO within one, also after items were shifted', () => {
    const fifo = new Fifo<Item>();
    fifo.push(item(0));
    fifo.push(item(1));
    expect(fifo.shift()?.n).toBe(0);
    fifo.push(item(2, 5));
    fifo.push(item(3));
    fifo.push(item(4, 9));
    fifo.push(item(5, 5));
    expect(drain(fifo)).toEqual([4, 2, 5, 1, 3]);
  });

  it('keeps first-in-first-out order while it wraps around and grows, with inserts and removals', () => {
    const fifo = new Fifo<Item>();
    const expected: number[] = [];
    let next = 0;
    // Pushes outpace shifts, so the ring wraps at every size it grows through.
    for (let round = 0; round < 200; round++) {
      for (let i = 0; i < 3; i++) {
        fifo.push(item(next));
        expected.push(next++);
      }
      expect(fifo.shift()?.n).toBe(expected.shift());
    }
    const middle = fifo.find((i) => i.n === (expected[100] as number)) as Item;
    expect(fifo.remove(middle)).toBe(true);
    expected.splice(100, 1);
    fifo.push(item(-1, 1));
    fifo.unshiftAll([item(-2), item(-3)]);
    expect(fifo.length).toBe(expected.length + 3);
    expect(drain(fifo)).toEqual([-2, -3, -1, ...expected]);
  });

  it('keeps memory proportional to its length over a long history', () => {
    const fifo = new Fifo<Item>();
    for (let i = 0; i < 10_000; i++) {
      fifo.push(item(i));
      expect(fifo.shift()?.n).toBe(i);
    }
    expect(fifo.length).toBe(0);
  });

  it('gives up a ring grown far past the usual queue once it empties', () => {
    const fifo = new Fifo<Item>();
    for (let i = 0; i < 20_000; i++) fifo.push(item(i));
    expect(fifo.backing).toBeGreaterThanOrEqual(20_000);
    expect(drain(fifo)).toHaveLength(20_000);
    expect(fifo.backing).toBeLessThanOrEqual(16);
    fifo.push(item(1));
    expect(fifo.shift()?.n).toBe(1);
  });
});

describe('SentList', () => {
  it('is first in, first out; takeFrom removes a match and everything after it', () => {
    const list = new SentList<number>();
    for (let i = 0; i < 6; i++) list.push(i);
    expect(list.shift()).toBe(0);
    expect(list.first()).toBe(1);
    expect(list.find((n) => n > 2)).toBe(3);
    expect(list.includes(0)).toBe(false);
    expect(list.includes(4)).toBe(true);
    expect(list.takeFrom((n) => n === 9)).toEqual([]);
    expect(list.takeFrom((n) => n === 3)).toEqual([3, 4, 5]);
    expect([list.shift(), list.shift(), list.shift()]).toEqual([1, 2, undefined]);
    expect(list.length).toBe(0);
  });

  it('keeps memory proportional to what is in it when it never runs empty', () => {
    // A thread that always holds a second batch: 64 in, 64 out, never empty.
    const list = new SentList<number>();
    let next = 0;
    let expected = 0;
    for (let i = 0; i < 64; i++) list.push(next++);
    for (let round = 0; round < 500; round++) {
      for (let i = 0; i < 64; i++) list.push(next++);
      for (let i = 0; i < 64; i++) expect(list.shift()).toBe(expected++);
      expect(list.length).toBe(64);
      expect(list.backing).toBeLessThanOrEqual(2 * 1024 + 128);
    }
  });

  it('starts again at the front of the same array once it empties, holding nothing reported', () => {
    // A thread at the end of each batch: 64 in, all 64 out, 200 times.
    const list = new SentList<{ n: number }>();
    let next = 0;
    for (let round = 0; round < 200; round++) {
      for (let i = 0; i < 64; i++) list.push({ n: next++ });
      for (let i = 0; i < 64; i++) expect(list.shift()?.n).toBe(next - 64 + i);
      expect(list.length).toBe(0);
      expect(list.first()).toBeUndefined();
      expect(list.backing).toBeLessThanOrEqual(64);
    }
  });

  it('after takeFrom, finds and returns only what is still in it', () => {
    const list = new SentList<number>();
    for (let i = 0; i < 10; i++) list.push(i);
    list.shift();
    expect(list.takeFrom((n) => n === 6)).toEqual([6, 7, 8, 9]);
    expect(list.includes(7)).toBe(false);
    expect(list.find((n) => n >= 6)).toBeUndefined();
    list.push(20);
    list.push(21);
    expect(list.length).toBe(7);
    expect(list.includes(8)).toBe(false);
    expect(list.takeFrom((n) => n === 21)).toEqual([21]);
    const out: (number | undefined)[] = [];
    for (let n = list.shift(); n !== undefined; n = list.shift()) out.push(n);
    expect(out).toEqual([1, 2, 3, 4, 5, 20]);
    // Emptied by takeFrom: pushes start at the front again.
    list.push(30);
    expect(list.takeFrom((n) => n === 30)).toEqual([30]);
    expect(list.length).toBe(0);
    list.push(31);
    expect([list.first(), list.length]).toEqual([31, 1]);
  });
});

describe('ParkedRuns', () => {
  it('serves entries first in, first out, growing, wrapping and emptying many times', () => {
    // Runs of pushes and shifts across its growth and wrap-around, down to empty and up
    // again, against a plain array; entries are numbered in push order.
    const parked = new ParkedRuns<number, number>();
    const expected: number[] = [];
    let order = 0;
    for (const [pushes, shifts] of [
      [5000, 3000],
      [100, 2100],
      [3000, 1],
      [0, 2999],
      [1024, 1024],
      [2048, 1000],
    ] as const) {
      for (let i = 0; i < pushes; i++) {
        const n = order++;
        expect(parked.pushed).toBe(n);
        parked.push(n * 10, () => n);
        expected.push(n);
      }
      for (let i = 0; i < shifts; i++) {
        const want = expected.shift();
        if (want !== undefined) expect(parked.headSeq).toBe(want);
        expect(parked.shift()).toBe(want !== undefined);
        if (want === undefined) continue;
        expect([parked.job, parked.resolve(0)]).toEqual([want * 10, want]);
        parked.clearLast();
        expect([parked.job, parked.resolve(0)]).toEqual([undefined, undefined]);
      }
      expect(parked.length).toBe(expected.length);
      expect(parked.pushed).toBe(order);
      if (expected.length > 0) expect(parked.headSeq).toBe(expected[0]);
    }
  });
});

describe('BatchSize', () => {
  it('sends one job until a job was measured', () => {
    expect(new BatchSize().next(100, 2)).toBe(1);
    expect(new BatchSize().next(0, 2)).toBe(0);
  });

  it('batches tiny jobs up to MAX_BATCH, sharing the backlog among threads', () => {
    const size = new BatchSize();
    for (let i = 0; i < 50; i++) size.observe(0.002);
    expect(size.next(10_000, 2)).toBe(MAX_BATCH);
    expect(size.next(10, 2)).toBe(5);
  });

  it('sends long jobs one at a time', () => {
    const size = new BatchSize();
    for (let i = 0; i < 50; i++) size.observe(5);
    expect(size.next(10_000, 2)).toBe(1);
  });
});

describe('restart backoff', () => {
  it('doubles from 50 ms and stops at 2 s', () => {
    expect([1, 2, 3, 4, 10].map(restartDelay)).toEqual([50, 100, 200, 400, 2_000]);
  });
});
