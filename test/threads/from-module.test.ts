// ThreadPool.fromModule: create() with J and R read from the module's type (see test/types/).
import { describe, expect, expectTypeOf, it } from 'vitest';
import { WorkerStartupError } from '../../src/errors.js';
import { ThreadPool } from '../../src/threads/pool.js';
import { fixture } from './helpers.js';

describe('ThreadPool.fromModule', () => {
  it('starts a pool typed by its module that runs jobs once the module loaded', async () => {
    await using pool = await ThreadPool.fromModule<typeof import('../fixtures/threads/double.js')>(
      fixture('double.ts'),
      { threads: 1 },
    );
    expectTypeOf(pool).toEqualTypeOf<ThreadPool<number, number>>();
    expect(await pool.run(21)).toBe(42);
  });

  it('fails up front, as create() does, when the module has no function default export', async () => {
    await expect(
      ThreadPool.fromModule<{ default: (job: number) => number }>(fixture('no-default.ts'), {
        threads: 1,
      }),
    ).rejects.toBeInstanceOf(WorkerStartupError);
  });
});
