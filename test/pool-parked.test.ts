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
});
