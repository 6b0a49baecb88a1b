import diagnostics from 'node:diagnostics_channel';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import {
  type JobStuckMessage,
  type JobZombieMessage,
  SLUICE_JOB_STUCK,
  SLUICE_JOB_ZOMBIE,
  TimeoutError,
} from '../../src/index.js';
import { cellSet, jobsPool, latch, release } from './helpers.js';

/** Resolves with the first message on `channel` whose pool is `name`. */
function next<M extends { name: string }>(channel: string, name: string): Promise<M> {
  return new Promise((resolve) => {
    const on = (message: unknown) => {
      if ((message as M).name !== name) return;
      diagnostics.unsubscribe(channel, on);
      resolve(message as M);
    };
    diagnostics.subscribe(channel, on);
    onTestFinished(() => {
      diagnostics.unsubscribe(channel, on);
    });
  });
}

describe('ThreadPool watchdog', () => {
  it('reports a job running on its thread past stuckAfter, and clears it when it returns', async () => {
    const pool = jobsPool({ name: 'tw-stuck', watchdog: { stuckAfter: 30 } });
    onTestFinished(async () => {
      await pool.abort();
    });
    const { sab, cells } = latch();
    const stuck = next<JobStuckMessage>(SLUICE_JOB_STUCK, 'tw-stuck');
    const task = await pool.submit({ kind: 'block', sab });
    await cellSet(cells, 0);
    const message = await stuck;
    expect(message).toMatchObject({ kind: 'thread-pool', index: 0, stuckAfter: 30 });
    expect(message.ageMs).toBeGreaterThanOrEqual(30);
    expect(pool.stats().stuck?.map((s) => s.index)).toEqual([0]);
    release(cells);
    expect(await task.result).toMatchObject({ ok: true, value: 'released' });
    expect(pool.stats().stuck).toEqual([]);
  });

  it('reports a timed-out job still running in its thread as a zombie until it returns', async () => {
    const pool = jobsPool({
      name: 'tw-zombie',
      timeout: 20,
      abortGrace: 60_000,
      watchdog: { stuckAfter: 60_000, zombieAfter: 30 },
    });
    onTestFinished(async () => {
      await pool.abort();
    });
    const { sab, cells } = latch();
    const zombie = next<JobZombieMessage>(SLUICE_JOB_ZOMBIE, 'tw-zombie');
    const task = await pool.submit({ kind: 'block', sab });
    const result = await task.result;
    expect(!result.ok && result.error).toBeInstanceOf(TimeoutError);
    const message = await zombie;
    expect(message).toMatchObject({ kind: 'thread-pool', index: 0, zombieAfter: 30 });
    expect(message.error).toBeInstanceOf(TimeoutError);
    expect(pool.stats().zombies?.map((z) => z.index)).toEqual([0]);
    release(cells);
    // The thread's late result arrives on the port: no longer a zombie.
    await vi.waitFor(() => expect(pool.stats().zombies).toEqual([]));
  });
});
