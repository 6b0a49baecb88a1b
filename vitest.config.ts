import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    // Before any file: the four shared brokers must answer, else one message naming the missing
    // ones and how to start them (test/global-setup.ts). Then sluice's dist/ and the doc-index
    // example's dist/, which some tests run, are rebuilt if a source is newer (test/build-setup.ts).
    globalSetup: ['test/global-setup.ts', 'test/build-setup.ts'],
    // Tests that stop and restart a broker run afterwards, one file at a time, each against
    // private servers it starts itself (vitest.restart.config.ts).
    exclude: [...configDefaults.exclude, '**/*.restart.test.ts'],
    // Generous: the CLI tests spawn several node processes each, which takes seconds apiece on a
    // loaded 2-core machine; a hang still fails, only later.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Broker and child-process tests: separate processes per file.
    pool: 'forks',
    // Two files at a time even on 2 cores (vitest would use one): most files wait on brokers
    // and child processes, so overlapping them keeps `npm test` well under 8 minutes here.
    maxWorkers: 2,
    // An unhandled rejection anywhere fails the run (vitest's default; stated here on purpose).
    dangerouslyIgnoreUnhandledErrors: false,
    passWithNoTests: false,
  },
});
