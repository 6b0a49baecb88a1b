import { defineConfig } from 'vitest/config';

// Broker restart tests: each file starts private servers of its own (redis-server, nats-server,
// initdb + postgres, a second RabbitMQ node) on free ports, stops and restarts them, and removes
// them; the machine's shared brokers are never touched. One file at a time, so that starting a
// RabbitMQ node (seconds of CPU) does not overlap another file's outage.
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
