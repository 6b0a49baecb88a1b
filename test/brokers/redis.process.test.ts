/** consume() over Redis Streams with child processes: issue 5 items 3 (SIGKILL), 4 (two processes), 5 (SIGTERM). */
import { redisSource } from '../../src/brokers/redis.js';
import { processCases } from '../fixtures/brokers/consumer-process-cases.js';
import { redisAdmin, uniqueStream } from '../fixtures/brokers/redis-helpers.js';

const admin = await redisAdmin();

processCases({
  name: 'redis',
  unique: (tag) => uniqueStream(tag),
  fill: (stream, items) => {
    admin.track(stream, `${stream}:dead`);
    return items.length > 0
      ? admin.fill(stream, items)
      : admin.client.sendCommand(['XGROUP', 'CREATE', stream, 'g', '0', 'MKSTREAM']);
  },
  unacked: async (stream) => (await admin.pending(stream)) + (await admin.lag(stream)),
  deadLetters: async (stream) => (await admin.deadLetters(stream)).length,
  source: (stream, claimIdle) =>
    redisSource({ stream, group: 'g', ...(claimIdle ? { claimIdle } : {}) }),
  childConfig: (stream, claimIdle) => ({
    broker: 'redis',
    name: stream,
    ...(claimIdle ? { claimIdle } : {}),
  }),
  cleanup: () => admin.cleanup(),
});
