import { describe, expect, it } from 'vitest';
import { cellSet, jobsPool, latch, release } from './helpers.js';

describe('ThreadPool transfer', () => {
  it('moves ArrayBuffers listed in `transfer` to the thread: the sender’s copy is detached', async () => {
    await using pool = jobsPool();
    const buf = new ArrayBuffer(1 << 20);
    const result = pool.run({ kind: 'transfer-in', buf }, { transfer: [buf] });
    expect(await result).toBe(1 << 20); // the thread got all of it
    expect(buf.byteLength).toBe(0); // and this side no longer has it
  });

  it('moves buffers of many queued jobs without losing one (they are never batched)', async () => {
    await using pool = jobsPool({ threads: 2, queueSize: 64 });
    const sizes = Array.from({ length: 300 }, (_, i) => 1024 + i);
    const bufs = sizes.map((size) => new ArrayBuffer(size));
    // Tiny jobs first, so batching is on when the transfers arrive.
    await Promise.all(Array.from({ length: 500 }, (_, x) => pool.run({ kind: 'double', x })));
    const out = await Promise.all(
      bufs.map((buf) => pool.run({ kind: 'transfer-in', buf }, { transfer: [buf] })),
    );
    expect(out).toEqual(sizes);
    expect(bufs.every((buf) => buf.byteLength === 0)).toBe(true);
  });

  it('a job whose transfer list holds a detached buffer fails with ERR_DATA_CLONE; the thread goes on', async () => {
    const pool = jobsPool({ threads: 1 });
    const before = await pool.run({ kind: 'thread-id' });
    const view = new Uint8Array(64);
    expect(await pool.run({ kind: 'transfer-view', view }, { transfer: [view.buffer] })).toBe(64);
    // Submitted again: its buffer went to the thread with the first run.
    const error = await pool
      .run({ kind: 'transfer-view', view }, { transfer: [view.buffer] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(error).toHaveProperty('code', 'ERR_DATA_CLONE');
    expect(await pool.run({ kind: 'thread-id' })).toBe(before);
    expect(pool.stats()).toMatchObject({ failed: 1, crashed: 0, running: 0, queued: 0 });
    expect(await pool.drain()).toMatchObject({ canceled: 0 });
  });

  it('a transfer array the caller reuses for the next submit moves each queued job its own buffers', async () => {
    await using pool = jobsPool({ threads: 1, queueSize: 8 });
    // The thread is busy: the jobs below wait in the queue while the caller refills one array.
    const { sab, cells } = latch();
    const blocked = pool.run({ kind: 'block', sab });
    await cellSet(cells, 0);
    const transfer: ArrayBuffer[] = [];
    const sizes = [8, 9, 10, 11];
    const results: Promise<unknown>[] = [];
    for (const size of sizes) {
      const buf = new ArrayBuffer(size);
      transfer.length = 0;
      transfer.push(buf);
      results.push(pool.run({ kind: 'transfer-in', buf }, { transfer }));
    }
    release(cells);
    await blocked;
    // The list was read at dispatch: each job took the last job's buffer (moved with the first
    // to leave, so the others failed with ERR_DATA_CLONE) and had its own copied.
    expect(await Promise.all(results)).toEqual(sizes);
  });

  it('a bare ArrayBuffer transferred a second time fails with ERR_DATA_CLONE instead of arriving empty', async () => {
    await using pool = jobsPool({ threads: 1 });
    const buf = new ArrayBuffer(8);
    expect(await pool.run({ kind: 'transfer-in', buf }, { transfer: [buf] })).toBe(8);
    const error = await pool.run({ kind: 'transfer-in', buf }, { transfer: [buf] }).catch((e) => e);
    expect(error).toHaveProperty('code', 'ERR_DATA_CLONE');
    // Two jobs submitted together that list the same buffer: the first moves it, the second fails.
    const shared = new ArrayBuffer(16);
    const [a, b] = await Promise.allSettled([
      pool.run({ kind: 'transfer-in', buf: shared }, { transfer: [shared] }),
      pool.run({ kind: 'transfer-in', buf: shared }, { transfer: [shared] }),
    ]);
    expect(a).toEqual({ status: 'fulfilled', value: 16 });
    expect(b.status === 'rejected' && b.reason.code).toBe('ERR_DATA_CLONE');
    // An empty buffer that was never moved is not mistaken for a detached one.
    const empty = new ArrayBuffer(0);
    expect(await pool.run({ kind: 'transfer-in', buf: empty }, { transfer: [empty] })).toBe(0);
  });

  it('a result whose transfer list holds a detached buffer fails with ERR_DATA_CLONE; the thread stays', async () => {
    await using pool = jobsPool({ threads: 1 });
    const before = await pool.run({ kind: 'thread-id' });
    const error = await pool.run({ kind: 'transfer-out-detached' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(error).toHaveProperty('code', 'ERR_DATA_CLONE');
    expect(await pool.run({ kind: 'thread-id' })).toBe(before);
  });

  it('copies (does not detach) buffers that are not listed', async () => {
    await using pool = jobsPool();
    const buf = new ArrayBuffer(1024);
    expect(await pool.run({ kind: 'transfer-in', buf })).toBe(1024);
    expect(buf.byteLength).toBe(1024);
  });

  it('moves buffers the thread lists with ctx.transfer() back with the result', async () => {
    await using pool = jobsPool();
    const { sab, cells } = latch();
    const out = (await pool.run({ kind: 'transfer-out', size: 1 << 20, sab })) as Uint8Array;
    expect(out.byteLength).toBe(1 << 20);
    expect(out[0]).toBe(7);
    expect(await cellSet(cells, 1)).toBe(1); // 1 = the thread's buffer was detached
  });

  it('rejects `transfer` for a job that is not an object', async () => {
    await using pool = jobsPool();
    const buf = new ArrayBuffer(8);
    const submit = (pool.submit as (job: unknown, opts: unknown) => Promise<unknown>).bind(pool);
    await expect(submit(42, { transfer: [buf] })).rejects.toThrow(/"job": expected an object/);
    expect(buf.byteLength).toBe(8);
  });
});
