import { describe, expect, it } from 'vitest';
import { Pool } from '../../src/index.js';
import { deferred, flush } from '../helpers.js';

describe('priority', () => {
  it('with the pool saturated, a high-priority submit starts before earlier low ones; FIFO within a priority', async () => {
    const started: string[] = [];
    const gate = deferred<void>();
    const pool = new Pool(
      async (job: string) => {
        started.push(job);
        if (job === 'busy') await gate.promise;
        return job;
      },
      { concurrency: 1, queueSize: 10 },
    );
    await pool.submit('busy');
    await pool.submit('low1');
    await pool.submit('low2');
    await pool.submit('high1', { priority: 10 });
    await pool.submit('mid', { priority: 5 });
    await pool.submit('high2', { priority: 10 });
    await pool.submit('low3');
    gate.resolve();
    await pool.drain();
    expect(started).toEqual(['busy', 'high1', 'high2', 'mid', 'low1', 'low2', 'low3']);
  });

  it('a waiting submit keeps its priority once admitted', async () => {
    const started: string[] = [];
    const gate = deferred<void>();
    const pool = new Pool(
      async (job: string) => {
        started.push(job);
        if (job === 'busy') await gate.promise;
        return job;
      },
      { concurrency: 1, queueSize: 1 },
    );
    await pool.submit('busy');
    await pool.submit('low');
    const waiting = pool.submit('urgent', { priority: 1 }); // queue full: waits for room
    await flush();
    gate.resolve();
    await waiting;
    await pool.drain();
    expect(started).toEqual(['busy', 'low', 'urgent']);
  });

  it('a priority that is not a finite number is refused: submit rejects, trySubmit throws', async () => {
    const pool = new Pool((n: number) => n, { concurrency: 1 });
    await expect(pool.submit(1, { priority: Number.NaN })).rejects.toThrow(/"priority".*finite/);
    expect(() => pool.trySubmit(1, { priority: '1' as never })).toThrow(/"priority"/);
  });
});
