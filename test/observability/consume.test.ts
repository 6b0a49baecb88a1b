// consume() publishes its jobs and state under its name, over the in-memory source.
import diagnostics from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import {
  consume,
  type JobSettledMessage,
  type PoolStateMessage,
  SLUICE_JOB_SETTLED,
  SLUICE_POOL_STATE,
} from '../../src/index.js';
import { MemorySource } from '../fixtures/brokers/memory-source.js';
import { flush } from '../helpers.js';

describe('consume() events', () => {
  it('every handled message settles on sluice:job:settled under the consumer name; close → drained', async () => {
    const settled: JobSettledMessage[] = [];
    const states: PoolStateMessage[] = [];
    const onSettled = (m: unknown) => settled.push(m as JobSettledMessage);
    const onState = (m: unknown) => states.push(m as PoolStateMessage);
    diagnostics.subscribe(SLUICE_JOB_SETTLED, onSettled);
    diagnostics.subscribe(SLUICE_POOL_STATE, onState);
    try {
      const s = new MemorySource();
      s.push('1', '2', '3');
      const c = consume(s, () => {}, { concurrency: 2, name: 'orders' });
      while (s.ops('ack').length < 3) await flush();
      await c.close();
      expect(settled.map((m) => [m.name, m.kind, m.outcome])).toEqual([
        ['orders', 'consume', 'succeeded'],
        ['orders', 'consume', 'succeeded'],
        ['orders', 'consume', 'succeeded'],
      ]);
      expect(states.map((m) => [m.name, m.kind, m.state])).toEqual([
        ['orders', 'consume', 'closing'],
        ['orders', 'consume', 'drained'],
      ]);
    } finally {
      diagnostics.unsubscribe(SLUICE_JOB_SETTLED, onSettled);
      diagnostics.unsubscribe(SLUICE_POOL_STATE, onState);
    }
  });

  it('refuses an empty name at once', () => {
    expect(() => consume(new MemorySource(), () => {}, { concurrency: 1, name: '' })).toThrow(
      /name/,
    );
  });
});
