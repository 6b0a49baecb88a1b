import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    // Tests that stop and start a real broker run afterwards, one file at a time
    // (vitest.restart.config.ts), so they never pull a server from under another test.
    exclude: [...configDefaults.exclude, '**/*.restart.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Broker and child-process tests: separate processes per file.
    pool: 'forks',
    // An unhandled rejection anywhere fails the run (vitest's default; stated here on purpose).
    dangerouslyIgnoreUnhandledErrors: false,
    passWithNoTests: false,
  },
});
