import { describe, expect, it } from 'vitest';
import * as channel from '../examples/basics/channel.js';
import * as pipelineExample from '../examples/basics/pipeline.js';
import * as poolService from '../examples/basics/pool-service.js';
import * as runPoolExample from '../examples/basics/run-pool.js';

describe('README examples run', () => {
  it('run-pool', async () => {
    expect(await runPoolExample.main()).toEqual({ ok: 25, failed: 5 });
  });
  it('pool-service', async () => {
    expect(await poolService.main()).toEqual({ succeeded: 90, failed: 10 });
  });
  it('channel', async () => {
    const r = await channel.main();
    expect(r.received).toBe(50);
    expect(r.maxBuffered).toBeLessThanOrEqual(4);
  });
  it('pipeline', async () => {
    const r = await pipelineExample.main();
    expect(r.stored).toBe(39);
    expect(r.failures).toEqual(['doc-13 failed in parse: corrupt document']);
    expect(r.bottleneck).toBe('embed');
  });
});
