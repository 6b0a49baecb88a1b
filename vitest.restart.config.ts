import { defineConfig } from 'vitest/config';

// Broker restart tests stop and start the real servers: run them alone, one file at a time.
export default defineConfig({
  test: {
    include: ['test/**/*.restart.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    passWithNoTests: false,
  },
});
