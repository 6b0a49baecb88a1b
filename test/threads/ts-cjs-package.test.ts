import { describe, expect, it } from 'vitest';
import { ThreadPool } from '../../src/index.js';

describe('ThreadPool: .ts module in a CommonJS package', () => {
  it('loads a .ts worker beside a package.json without "type": "module" (was: "Cannot require() ES Module")', async () => {
    const pool = await ThreadPool.create<number, number>(
      new URL('../fixtures/threads/cjs-package/triple.ts', import.meta.url),
      { threads: 1 },
    );
    try {
      expect(await pool.run(14)).toBe(42);
    } finally {
      await pool.drain();
    }
  });
});
