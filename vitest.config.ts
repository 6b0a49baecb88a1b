import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    // Before any file: the four shared brokers must answer, else one message naming the missing
    // ones and how to start them (test/global-setup.ts).
    globalSetup: ['test/global-setup.ts'],
    // Tests that stop and restart a broker run afterwards, one file at a time, each against
    // private servers it starts itself (vitest.restart.config.ts).
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
