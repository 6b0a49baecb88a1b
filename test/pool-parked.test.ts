import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AbortError, Pool, PoolClosedError } from '../src/index.js';
import { deferred, flush } from './helpers.js';

/**
 * run() calls that wait for room with nothing but a job are kept apart from the others (a lean
 * entry each); the two kinds must still be served, and refused, in the order they were made.
 */
describe('Pool: run() calls waiting for room', () => {
  it('start in the order they were made, with and without a signal, priority or submit', async () => {
    const gate = deferred<void>();
    const started: number[] = [];
    const pool = new Pool(
      async (n: number) => {
        started.push(n);
        if (n === 0) await gate.promise;
        return n * 10;
      },
      { concurrency: 1, queueSize: 0 },
    );
    const first = pool.run(0);
    await flush();
    const signal = new AbortController().signal;
    const outcomes = [
      pool.run(1),
      pool.run(2, { signal }),
      pool.run(3),
      pool.submit(4).then((task) => task.result.then((r) => (r.ok ? r.value : -1))),
      pool.run(5, { priority: 2 }),
      pool.run(6),
      pool.run(7),
    ];
    gate.resolve();
    expect(await first).toBe(0);
    expect(await Promise.all(outcomes)).toEqual([10, 20, 30, 40, 50, 60, 70]);
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await pool.drain();
  });

  it('are rejected by close() in the order they were made, each exactly once', async () => {
    const gate = deferred<void>();
    const pool = new Pool(async () => gate.promise, { concurrency: 1, queueSize: 0 });
    const running = pool.run(0);
    await flush();
    const aborter = new AbortController();
    const order: string[] = [];
    const settle = (name: string, p: Promise<unknown>) =>
      p.then(
        () => order.push(`${name} ok`),
        (error: Error) => order.push(`${name} ${error.name}`),
      );
    const waits = [
      settle('a', pool.run(1)),
      settle('b', pool.run(2, { signal: aborter.signal })),
      settle('c', pool.run(3)),
      settle('d', pool.run(4, { signal: new AbortController().signal })),
      settle('e', pool.run(5)),
    ];
    aborter.abort();
    await flush();
    pool.close();
    await Promise.all(waits);
    expect(order).toEqual([
      `b ${new AbortError('x').name}`,
      `a ${new PoolClosedError('x').name}`,
      `c ${new PoolClosedError('x').name}`,
      `d ${new PoolClosedError('x').name}`,
      `e ${new PoolClosedError('x').name}`,
    ]);
    gate.resolve();
    await running;
    await pool.drain();
  });

  /** How a call is made: a lean run(), a run() with a signal or a priority, or a submit(). */
  type Kind = 'run' | 'signal' | 'priority' | 'submit';
  const calls = fc.array(
    fc.record({
      kind: fc.constantFrom<Kind>('run', 'signal', 'priority', 'submit'),
      fails: fc.boolean(),
    }),
    { minLength: 1, maxLength: 12 },
  );

  /**
   * Makes call `i` of `kind`; pushes its outcome to `settled` when it settles: the run's, or the
   * submit's own or, with `outcome`, its task's (which settles some ticks later).
   */
  function call(
    pool: Pool<number, number>,
    kind: Kind,
    i: number,
    settled: string[],
    outcome = false,
  ) {
    const signal = new AbortController().signal;
    const made: Promise<unknown> =
      kind !== 'submit'
        ? pool.run(i, kind === 'signal' ? { signal } : kind === 'priority' ? { priority: 1 } : {})
        : outcome
          ? pool.submit(i).then((task) =>
              task.result.then((r) => {
                if (r.ok) return r.value;
                throw r.error;
              }),
            )
          : pool.submit(i);
    return made.then(
      (value) => settled.push(`${i}=${value}`),
      (error: Error) => settled.push(`${i}:${error.message}`),
    );
  }

  it('of every kind start in the order they were made, each with its own outcome', async () => {
    await fc.assert(
      fc.asyncProperty(calls, async (specs) => {
        const gate = deferred<void>();
        const started: number[] = [];
        const pool = new Pool(
          async (n: number) => {
            started.push(n);
            if (n === -1) await gate.promise;
            if (n >= 0 && specs[n]?.fails) throw new Error(`job ${n} failed`);
            return n * 10;
          },
          { concurrency: 1, queueSize: 0 },
        );
        const first = pool.run(-1);
        await flush();
        const settled: string[] = [];
        const waits = specs.map((c, i) => call(pool, c.kind, i, settled, true));
        gate.resolve();
        await first;
        await Promise.all(waits);
        expect(started).toEqual([-1, ...specs.map((_, i) => i)]);
        const expected = specs.map((c, i) => (c.fails ? `${i}:job ${i} failed` : `${i}=${i * 10}`));
        const index = (entry: string) => Number.parseInt(entry, 10);
        expect([...settled].sort((a, b) => index(a) - index(b))).toEqual(expected);
        // The run() calls (jobs one at a time here) settle in order; a submit's task takes
        // more ticks to read, so only runs are compared.
        const runs = (entry: string) => specs[index(entry)]?.kind !== 'submit';
        expect(settled.filter(runs)).toEqual(expected.filter(runs));
        await pool.drain();
      }),
      { numRuns: 60 },
    );
  });

  it('of every kind are refused by close() in the order they were made', async () => {
    await fc.assert(
      fc.asyncProperty(calls, async (specs) => {
        const gate = deferred<void>();
        const pool = new Pool(async (_: number) => gate.promise.then(() => 0), {
          concurrency: 1,
          queueSize: 0,
        });
        const running = pool.run(-1);
        await flush();
        const settled: string[] = [];
        const waits = specs.map((c, i) => call(pool, c.kind, i, settled));
        pool.close();
        await Promise.all(waits);
        const closed = 'pool closed while the submit was waiting for room';
        expect(settled).toEqual(specs.map((_, i) => `${i}:${closed}`));
        gate.resolve();
        expect(await running).toBe(0);
        await pool.drain();
      }),
      { numRuns: 60 },
    );
  });
});
