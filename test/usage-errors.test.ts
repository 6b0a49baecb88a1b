/**
 * Misuse of the API (a bad argument, an option of the wrong type, a call at the wrong time) throws
 * a standard TypeError/RangeError with a stable `code`, as Node's own APIs do, synchronously and
 * before any work starts. Bad option *values* per constructor are covered in each class's tests.
 */
import { describe, expect, it } from 'vitest';
import {
  adaptive,
  Channel,
  Pool,
  pipeline,
  runPool,
  shutdownOn,
  ThreadPool,
} from '../src/index.js';
import { fixture } from './threads/helpers.js';

const codeOf = (fn: () => unknown): { name: string; code: unknown; message: string } => {
  try {
    fn();
  } catch (error) {
    const e = error as Error & { code?: unknown };
    return { name: e.name, code: e.code, message: e.message };
  }
  throw new Error('expected a throw');
};

describe('usage errors carry a stable code', () => {
  const double = async (x: number) => x * 2;
  const cases: [string, () => unknown, string, RegExp][] = [
    [
      'runPool: jobs not iterable',
      () => runPool(42 as never, double, { concurrency: 1 }),
      'ERR_INVALID_ARGUMENT',
      /"jobs".*got 42/,
    ],
    [
      'runPool: ordered "yes"',
      () => runPool([1], double, { concurrency: 1, ordered: 'yes' as never }),
      'ERR_INVALID_OPTION',
      /"ordered": expected a boolean, got "yes"/,
    ],
    [
      'runPool: worker not a function',
      () => runPool([1], 'x' as never, { concurrency: 1 }),
      'ERR_INVALID_ARGUMENT',
      /Invalid argument "worker": expected a function, got "x"/,
    ],
    [
      'Pool: worker not a function',
      () => new Pool(5 as never, { concurrency: 1 }),
      'ERR_INVALID_ARGUMENT',
      /Invalid argument "worker"/,
    ],
    [
      'Pool: the options object passed as the worker',
      // @ts-expect-error: the options object where the worker belongs, as a JavaScript caller may pass it
      () => new Pool({ concurrency: 2 }),
      'ERR_INVALID_ARGUMENT',
      /^Invalid argument "worker": expected a function, got an object \{ concurrency: 2 \}$/,
    ],
    [
      'Pool.resize(0)',
      () => new Pool(double, { concurrency: 1 }).resize(0),
      'ERR_INVALID_ARGUMENT',
      /Invalid argument "concurrency": expected a positive integer, got 0/,
    ],
    [
      'Channel capacity -1',
      () => new Channel(-1),
      'ERR_INVALID_ARGUMENT',
      /Invalid argument "capacity"/,
    ],
    [
      'pipeline: source not iterable',
      () => pipeline(null as never),
      'ERR_INVALID_ARGUMENT',
      /"source".*got null/,
    ],
    [
      'stage: empty name',
      () => pipeline([1]).stage('', double, { concurrency: 1 }),
      'ERR_INVALID_ARGUMENT',
      /"name"/,
    ],
    [
      'stage: duplicate name',
      () =>
        pipeline([1]).stage('a', double, { concurrency: 1 }).stage('a', double, { concurrency: 1 }),
      'ERR_INVALID_ARGUMENT',
      /no other stage of this pipeline has, got "a"/,
    ],
    [
      'stage: worker not a function',
      () => pipeline([1]).stage('a', 7 as never, { concurrency: 1 }),
      'ERR_INVALID_ARGUMENT',
      /"a\.worker".*got 7/,
    ],
    [
      'stage: concurrency 0',
      () => pipeline([1]).stage('a', double, { concurrency: 0 }),
      'ERR_INVALID_OPTION',
      /"a\.concurrency".*got 0/,
    ],
    [
      'pipeline: no stages',
      () => pipeline([1])[Symbol.asyncIterator](),
      'ERR_INVALID_STATE',
      /at least one stage/,
    ],
    [
      'shutdownOn: no signals',
      () => shutdownOn([], () => {}),
      'ERR_INVALID_ARGUMENT',
      /"signals": .*, got \[\]$/,
    ],
    [
      'shutdownOn: unknown signal',
      () => shutdownOn(['SIGNOPE' as NodeJS.Signals], () => {}),
      'ERR_INVALID_ARGUMENT',
      /got "SIGNOPE"/,
    ],
    [
      'shutdownOn: drain not a function',
      () => shutdownOn(['SIGTERM'], 'x' as never),
      'ERR_INVALID_ARGUMENT',
      /"drain"/,
    ],
    [
      'ThreadPool: module of the wrong type',
      () => new ThreadPool(42 as never),
      'ERR_INVALID_ARGUMENT',
      /"module".*got 42/,
    ],
    [
      'ThreadPool: module not a file: URL',
      () => new ThreadPool(new URL('https://example.com/w.js')),
      'ERR_INVALID_ARGUMENT',
      /file: URL/,
    ],
    [
      'ThreadPool: resourceLimits not an object',
      () => new ThreadPool(fixture('double.ts'), { resourceLimits: 5 as never }),
      'ERR_INVALID_OPTION',
      /"resourceLimits".*got 5/,
    ],
  ];
  it.each(cases)('%s', (_, fn, code, message) => {
    const thrown = codeOf(fn);
    expect(thrown.name).toMatch(/^(TypeError|RangeError)$/);
    expect(thrown.code).toBe(code);
    expect(thrown.message).toMatch(message);
  });

  it('a value in a message is shown readably, cut when long, and never breaks the message', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const shown = (value: unknown) =>
      codeOf(() => new Pool(() => 1, { concurrency: value as number })).message.replace(
        /^Invalid option "concurrency": expected a positive integer, got /,
        '',
      );
    expect(shown(Symbol('n'))).toBe('Symbol(n)');
    expect(shown(2n)).toBe('2n');
    expect(shown([1, 2])).toBe('[ 1, 2 ]');
    expect(shown(() => 2)).toBe('[Function (anonymous)]');
    expect(shown(circular)).toBe('an object <ref *1> { self: [Circular *1] }');
    expect(shown('9'.repeat(1000))).toBe(`"${'9'.repeat(60)}"… (length 1000)`);
    expect(shown(Object.create(null))).toBe('an object [Object: null prototype] {}');
  });

  it('a thrown non-Error object is named by its contents in the failed result', async () => {
    const failed = await new Pool(
      () => {
        throw { status: 503 };
      },
      { concurrency: 1 },
    )
      .run(1)
      .catch((e: unknown) => e as Error);
    expect(failed.message).toBe('job failed with a non-Error value: an object { status: 503 }');
  });

  it('an optional option given as null means its default, as undefined does', async () => {
    const pool = new Pool(double, {
      concurrency: 1,
      timeout: null as never,
      signal: null as never,
    });
    expect(await pool.run(2)).toBe(4);
    const results = [];
    for await (const r of runPool([1], double, { concurrency: 1, ordered: null as never })) {
      results.push(r);
    }
    expect(results).toMatchObject([{ ok: true, value: 2 }]);
  });

  it('null means the default for names, per-call options, adaptive limits and their algorithms too', async () => {
    const none = null as never;
    const named = new Pool(double, { concurrency: 1, name: none });
    expect(await named.run(2, { priority: none, signal: none, timeout: none } as never)).toBe(4);
    const results = [];
    for await (const r of runPool([1], double, { concurrency: 1, name: none })) results.push(r);
    expect(results).toMatchObject([{ ok: true, value: 2 }]);
    await using threads = new ThreadPool<number, number>(fixture('double.ts'), {
      threads: 1,
      name: none,
    });
    expect(await threads.run(3, { transfer: none })).toBe(6);
    const limit = adaptive({ min: 2, max: 4, initial: none, history: none });
    expect(limit.limit).toBe(2);
    for (const algorithm of [
      { name: 'gradient', tolerance: none, smoothing: none, longWindow: none },
      { name: 'aimd', backoff: none, tolerance: none, window: none },
    ] as const) {
      expect(adaptive({ min: 1, max: 4, algorithm }).limit).toBe(1);
    }
  });

  it('a pipeline iterated twice, or extended after iteration: ERR_INVALID_STATE', async () => {
    const p = pipeline([1]).stage('a', async (x: number) => x, { concurrency: 1 });
    for await (const _ of p) break;
    expect(codeOf(() => p[Symbol.asyncIterator]()).code).toBe('ERR_INVALID_STATE');
    expect(codeOf(() => p.stage('b', async (x: number) => x, { concurrency: 1 })).code).toBe(
      'ERR_INVALID_STATE',
    );
  });

  it('ThreadPool submit: a bad transfer list fails that call only', async () => {
    await using pool = new ThreadPool<unknown, unknown>(fixture('double.ts'), { threads: 1 });
    const notArray = await pool.submit({}, { transfer: 'x' as never }).catch((e: unknown) => e);
    expect(notArray).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_OPTION' });
    const notObject = await pool
      .submit(3, { transfer: [new ArrayBuffer(1)] })
      .catch((e: unknown) => e);
    expect(notObject).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARGUMENT' });
    expect(await pool.run(4)).toBe(8);
  });

  it.each([
    ['Pool', () => new Pool(async (x: number) => x * 2, { concurrency: 1 })],
    ['ThreadPool', () => new ThreadPool<number, number>(fixture('double.ts'), { threads: 1 })],
  ] as const)(
    "%s run/submit/trySubmit refuse a per-call timeout (the pool's applies to every job) naming option and value, rather than ignoring it",
    async (_kind, make) => {
      await using pool = make();
      const refused = {
        name: 'TypeError',
        code: 'ERR_INVALID_OPTION',
        message: expect.stringMatching(/^Invalid option "timeout": .*got 50$/),
      };
      const opts = { timeout: 50 } as never;
      await expect(pool.run(1, opts)).rejects.toMatchObject(refused);
      await expect(pool.submit(1, opts)).rejects.toMatchObject(refused);
      expect(() => pool.trySubmit(1, opts)).toThrow(expect.objectContaining(refused));
      expect(pool.stats()).toMatchObject({ submitted: 0 });
      expect(await pool.run(4, { timeout: undefined } as never)).toBe(8);
    },
  );
});

describe('options bags and numbers are checked up front', () => {
  const double = async (x: number) => x * 2;
  const notAnObject = {
    code: 'ERR_INVALID_ARGUMENT',
    message: expect.stringMatching(/options object, got 5$/),
  };

  it('an options argument that is not an object is refused: promise-returning methods reject, the rest throw', async () => {
    const pool = new Pool(double, { concurrency: 1 });
    const ch = new Channel<number>(1);
    await using threads = new ThreadPool<number, number>(fixture('double.ts'), { threads: 1 });
    const rejecting: [string, () => Promise<unknown>][] = [
      ['Pool.submit', () => pool.submit(1, 5 as never)],
      ['Pool.run', () => pool.run(1, 5 as never)],
      ['Pool.drain', () => pool.drain(5 as never)],
      ['Channel.send', () => ch.send(1, 5 as never)],
      ['Channel.receive', () => ch.receive(5 as never)],
      ['ThreadPool.submit', () => threads.submit(1, 5 as never)],
      ['ThreadPool.drain', () => threads.drain(5 as never)],
    ];
    for (const [name, call] of rejecting) {
      await expect(call(), name).rejects.toMatchObject(notAnObject);
    }
    await expect(pool.drain('x' as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    const throwing: [string, () => unknown][] = [
      ['new Pool', () => new Pool(double, 5 as never)],
      ['Pool.trySubmit', () => pool.trySubmit(1, 5 as never)],
      ['runPool', () => runPool([1], double, 5 as never)],
      ['pipeline', () => pipeline([1], 5 as never)],
      ['stage', () => pipeline([1]).stage('a', double, 5 as never)],
      ['new ThreadPool', () => new ThreadPool(fixture('double.ts'), 5 as never)],
    ];
    for (const [name, call] of throwing) {
      expect(codeOf(call), name).toMatchObject(notAnObject);
    }
    // Nothing changed: the pool still takes jobs.
    expect(await pool.run(2)).toBe(4);
    expect(await threads.run(3)).toBe(6);
  });

  it('ThreadPool resourceLimits are checked at construction: known keys, positive finite MB', () => {
    const make = (resourceLimits: unknown) => () =>
      new ThreadPool(fixture('double.ts'), { threads: 1, resourceLimits: resourceLimits as never });
    expect(codeOf(make({ maxOldGenerationSizeMb: -5 }))).toMatchObject({
      name: 'RangeError',
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(/^Invalid option "resourceLimits.maxOldGenerationSizeMb"/),
    });
    expect(codeOf(make({ maxOldGenerationSizeMb: 'x' }))).toMatchObject({
      name: 'TypeError',
      code: 'ERR_INVALID_OPTION',
    });
    expect(codeOf(make({ maxOldGenSizeMb: 64 }))).toMatchObject({
      message: expect.stringMatching(/^Invalid option "resourceLimits.maxOldGenSizeMb"/),
    });
    expect(codeOf(make('x'))).toMatchObject({ code: 'ERR_INVALID_OPTION' });
  });

  it('a count past Number.MAX_SAFE_INTEGER is refused (Infinity is the way to unbound)', () => {
    expect(codeOf(() => new Pool(double, { concurrency: 2 ** 53 }))).toMatchObject({
      name: 'RangeError',
      code: 'ERR_INVALID_OPTION',
      message: expect.stringContaining(`<= ${Number.MAX_SAFE_INTEGER}`),
    });
    expect(codeOf(() => new Pool(double, { concurrency: 1 }).resize(2 ** 53))).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
    expect(codeOf(() => new Channel(2 ** 60))).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(
      () => new Pool(double, { concurrency: 1, queueSize: Number.POSITIVE_INFINITY }),
    ).not.toThrow();
  });

  it('the largest concurrency allowed is accepted: its default queueSize is capped, not refused', () => {
    const big = Number.MAX_SAFE_INTEGER;
    expect(new Pool(double, { concurrency: big }).stats().concurrency).toBe(big);
    expect(() => new Pool(double, { concurrency: adaptive({ min: 1, max: big }) })).not.toThrow();
  });
});

describe('misuse is reported one way per kind of call', () => {
  const double = async (x: number) => x * 2;
  const bad = { signal: 'not a signal' as unknown as AbortSignal };

  /** Calls `fn`, failing the test if it throws synchronously; returns what it returned. */
  const noSyncThrow = <T>(fn: () => T): T => {
    let out: T | undefined;
    expect(() => {
      out = fn();
    }).not.toThrow();
    return out as T;
  };

  it('a method that returns a promise rejects with the usage error, never throws', async () => {
    const pool = new Pool(double, { concurrency: 1 });
    const ch = new Channel<number>(1);
    await using threads = new ThreadPool<number, number>(fixture('double.ts'), { threads: 1 });
    const calls: [string, () => Promise<unknown>][] = [
      ['Pool.submit', () => pool.submit(1, bad)],
      ['Pool.run', () => pool.run(1, bad)],
      ['Pool.drain', () => pool.drain({ timeout: -1 })],
      ['Channel.send', () => ch.send(1, bad)],
      ['Channel.receive', () => ch.receive(bad)],
      ['ThreadPool.submit', () => threads.submit(1, bad)],
      ['ThreadPool.run', () => threads.run(1, bad)],
      ['ThreadPool.drain', () => threads.drain({ timeout: -1 })],
    ];
    for (const [name, call] of calls) {
      const promise = noSyncThrow(call);
      await expect(promise, name).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    }
    // Nothing happened: the pool still takes jobs (drain's bad timeout did not close it).
    expect(await pool.run(2)).toBe(4);
    expect(ch.length).toBe(0);
    expect(await threads.run(3)).toBe(6);
  });

  it('a synchronous method throws the usage error', () => {
    const pool = new Pool(double, { concurrency: 1 });
    expect(() => pool.trySubmit(1, bad)).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_OPTION' }),
    );
    expect(() => pool.resize(-1)).toThrow(
      expect.objectContaining({ name: 'RangeError', code: 'ERR_INVALID_ARGUMENT' }),
    );
  });
});
