import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
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
  it('pool-service: SIGTERM while the producer waits for room stops producing and drains, exit 0', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/pool-service-child.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
      env: { ...process.env, JOB_MS: '500' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const lines: string[] = [];
    let full: () => void = () => {};
    const isFull = new Promise<void>((resolve) => {
      full = resolve;
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      if (line === 'full') full();
    });
    const exited = once(child, 'exit');
    await isFull; // 24 jobs held (8 running for 500 ms, 16 queued): the 25th submit waits
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(stderr).not.toMatch(/PoolClosedError/);
    expect(code).toBe(0);
    const last = JSON.parse(lines.at(-1)!) as { accepted: number; settled: number; code: number };
    expect(last.accepted).toBeGreaterThanOrEqual(24);
    expect(last.accepted).toBeLessThan(100); // it stopped producing
    expect(last.settled).toBe(last.accepted); // the drain finished every accepted job
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
