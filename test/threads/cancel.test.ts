import diagnostics from 'node:diagnostics_channel';
import { describe, expect, it, onTestFinished } from 'vitest';
import { AbortError, TimeoutError } from '../../src/errors.js';
import { SLUICE_JOB_SETTLED } from '../../src/index.js';
import type { ThreadPoolOptions } from '../../src/threads/types.js';
import { batchingOn, cellReaches, cellSet, jobsPool, latch, release } from './helpers.js';

/**
 * A one-thread pool that has measured tiny jobs, so jobs submitted together travel in one
 * batch, and two latches for them. When the test ends, pass or fail, both are released and the
 * pool drained.
 */
async function batchingPool(opts: ThreadPoolOptions) {
  const pool = jobsPool({ threads: 1, queueSize: 64, ...opts });
  const a = latch();
  const b = latch();
  onTestFinished(async () => {
    release(a.cells);
    release(b.cells);
    await pool.drain();
  });
  const [before] = await batchingOn(pool);
  return { pool, before, a, b };
}

describe('ThreadPool cancellation', () => {
  it("an abort() from a subscriber of the canceled jobs' settlement returns the first call's promise", async () => {
    const pool = jobsPool({ threads: 1, queueSize: 8, name: 'tp-nested-abort' });
    const nested: Promise<unknown>[] = [];
    let armed = false;
    const fn = (m: unknown) => {
      if (armed && (m as { name: string }).name === 'tp-nested-abort') {
        nested.push(pool.abort('from a subscriber'));
      }
    };
    diagnostics.subscribe(SLUICE_JOB_SETTLED, fn);
    onTestFinished(() => {
      diagnostics.unsubscribe(SLUICE_JOB_SETTLED, fn);
    });
    const tasks = [1, 2, 3].map((x) => pool.trySubmit({ kind: 'double', x }));
    armed = true;
    const outer = pool.abort('outer');
    expect(nested.length).toBeGreaterThan(0);
    for (const p of nested) expect(p).toBe(outer);
    expect(await outer).toMatchObject({ canceled: 3 });
    const results = await Promise.all(tasks.map((t) => t?.result));
    expect(results.every((r) => r?.ok === false && r.error instanceof AbortError)).toBe(true);
  });

  it('a job canceled by its signal right after submit leaves nothing queued or running for drain', async () => {
    const pool = jobsPool({ threads: 1, queueSize: 2 });
    const controller = new AbortController();
    const task = await pool.submit({ kind: 'double', x: 1 }, { signal: controller.signal });
    controller.abort();
    expect((await task.result).ok).toBe(false);
    await pool.drain();
    expect(pool.stats()).toMatchObject({ running: 0, queued: 0, canceled: 1 });
  });

  it('aborting a queued job removes it at once; it never runs', async () => {
    await using pool = jobsPool({ threads: 1, queueSize: 4 });
    const blocker = latch();
    const running = pool.run({ kind: 'block', sab: blocker.sab });
    await cellSet(blocker.cells, 0);
    const controller = new AbortController();
    const queued = latch();
    const task = await pool.submit(
      { kind: 'block', sab: queued.sab },
      { signal: controller.signal },
    );
    expect(pool.stats().queued).toBe(1);
    controller.abort('not needed');
    const result = await task.result;
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error).toBeInstanceOf(AbortError);
      expect(result.error.cause).toBe('not needed');
    }
    expect(pool.stats().queued).toBe(0);
    release(blocker.cells);
    expect(await running).toBe('released');
    expect(await pool.run({ kind: 'double', x: 1 })).toBe(2);
    expect(Atomics.load(queued.cells, 0)).toBe(0); // the canceled job never started
  });

  it('aborting a running job aborts ctx.signal inside the thread', async () => {
    await using pool = jobsPool({ threads: 1 });
    const before = await pool.run({ kind: 'thread-id' });
    const { sab, cells } = latch();
    const controller = new AbortController();
    const task = await pool.submit({ kind: 'wait-abort', sab }, { signal: controller.signal });
    await cellSet(cells, 0);
    controller.abort('stop');
    const result = await task.result;
    expect(!result.ok && result.error).toBeInstanceOf(AbortError);
    expect(await cellSet(cells, 1)).toBe(1); // the thread saw its signal abort
    expect(await pool.run({ kind: 'thread-id' })).toBe(before); // and was kept
  });

  it('a running job that ignores its signal costs its thread after the grace period', async () => {
    await using pool = jobsPool({ threads: 1, abortGrace: 20 });
    const before = await pool.run({ kind: 'thread-id' });
    const { sab, cells } = latch();
    const controller = new AbortController();
    const task = await pool.submit({ kind: 'block', sab }, { signal: controller.signal });
    await cellSet(cells, 0);
    controller.abort();
    expect((await task.result).ok).toBe(false);
    // The next job runs on a replacement thread: the blocked one was terminated.
    expect(await pool.run({ kind: 'thread-id' })).not.toBe(before);
  });

  it('one thread: t1 long, abort t2 (queued) then t1 (running): t3 runs and resolves', async () => {
    await using pool = jobsPool({ threads: 1, queueSize: 4, abortGrace: 20 });
    const l1 = latch();
    const c1 = new AbortController();
    const c2 = new AbortController();
    const t1 = await pool.submit({ kind: 'block', sab: l1.sab }, { signal: c1.signal });
    const t2 = await pool.submit({ kind: 'double', x: 2 }, { signal: c2.signal });
    const t3 = await pool.submit({ kind: 'double', x: 3 });
    await cellSet(l1.cells, 0);
    c2.abort();
    c1.abort();
    const [r1, r2, r3] = await Promise.all([t1.result, t2.result, t3.result]);
    expect(r1.ok).toBe(false);
    expect(r2.ok).toBe(false);
    expect(r3).toMatchObject({ ok: true, value: 6 });
  });

  it('a canceled job that ignores its signal gets its own grace period, even behind another one in its batch', async () => {
    const { pool, before, a, b } = await batchingPool({ abortGrace: 100 });
    const ca = new AbortController();
    const cb = new AbortController();
    // Submitted together, so they travel to the thread in one batch.
    const [ta, tb] = await Promise.all([
      pool.submit({ kind: 'block', sab: a.sab }, { signal: ca.signal }),
      pool.submit({ kind: 'block', sab: b.sab }, { signal: cb.signal }),
    ]);
    await cellSet(a.cells, 0);
    ca.abort(); // a ignores it: a's grace period starts
    // a ends, b starts in the same thread, and b is canceled, all before this side reads a's
    // result. Released in the same turn as the abort and waited for synchronously: a's grace
    // period cannot end first, however slow the machine.
    release(a.cells);
    expect(Atomics.wait(b.cells, 0, 0, 30_000)).not.toBe('timed-out'); // b was in a's batch
    cb.abort();
    expect((await ta.result).ok).toBe(false);
    expect((await tb.result).ok).toBe(false);
    // b never ends by itself: its thread is terminated at b's own deadline and replaced.
    expect(await pool.run({ kind: 'thread-id' })).not.toBe(before);
    expect(pool.stats()).toMatchObject({ running: 0, crashed: 0, canceled: 2 });
  });

  it('a grace period that ends late, after its job ended and the next one started, spares the next job', async () => {
    const abortGrace = 50;
    const { pool, before, a, b } = await batchingPool({ abortGrace });
    const ca = new AbortController();
    const [ta, tb] = await Promise.all([
      pool.submit({ kind: 'block', sab: a.sab }, { signal: ca.signal }),
      pool.submit({ kind: 'block', sab: b.sab }),
    ]);
    await cellSet(a.cells, 0);
    // In the turn of the abort (so a's grace period cannot end first, however slow the
    // machine): a ends, b starts, and the event loop stays blocked past a's grace deadline. The
    // loop's next turn runs timers before it reads the port, so a's grace timer fires while a's
    // result still waits there.
    ca.abort(); // a ignores it: a's grace period starts
    release(a.cells);
    expect(Atomics.wait(b.cells, 0, 0, 30_000)).not.toBe('timed-out');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, abortGrace * 3);
    expect((await ta.result).ok).toBe(false);
    release(b.cells);
    expect(await tb.result).toMatchObject({ ok: true, value: 'released' });
    expect(await pool.run({ kind: 'thread-id' })).toBe(before);
    expect(pool.stats()).toMatchObject({ crashed: 0, canceled: 1 });
  });

  it('cancel t1 (running) and submit t2 right away: t2 resolves', async () => {
    await using pool = jobsPool({ threads: 1, abortGrace: 20 });
    const l1 = latch();
    const c1 = new AbortController();
    const t1 = await pool.submit({ kind: 'block', sab: l1.sab }, { signal: c1.signal });
    await cellSet(l1.cells, 0);
    c1.abort();
    const t2 = await pool.submit({ kind: 'double', x: 21 });
    expect(await t2.result).toMatchObject({ ok: true, value: 42 });
    expect((await t1.result).ok).toBe(false);
  });

  it('cancel t1 that stops on its signal: t2 runs on the same thread', async () => {
    await using pool = jobsPool({ threads: 1 });
    const before = await pool.run({ kind: 'thread-id' });
    const l1 = latch();
    const c1 = new AbortController();
    const t1 = await pool.submit({ kind: 'wait-abort', sab: l1.sab }, { signal: c1.signal });
    await cellSet(l1.cells, 0);
    c1.abort();
    expect(await pool.run({ kind: 'thread-id' })).toBe(before);
    expect((await t1.result).ok).toBe(false);
  });
});

describe('a canceled job is stopped in its thread before its slot is reused', () => {
  it('the thread sees the abort within the abort() call, before a waiting submit can take the slot', async () => {
    await using pool = jobsPool({ threads: 1, queueSize: 0 });
    const { sab, cells } = latch();
    const controller = new AbortController();
    const canceled = await pool.submit({ kind: 'wait-abort', sab }, { signal: controller.signal });
    await cellSet(cells, 0);
    const waiting = pool.submit({ kind: 'double', x: 21 });
    controller.abort();
    // Block this thread: only a message posted during abort() itself can reach the thread now.
    const seen = Atomics.wait(cells, 1, 0, 30_000);
    expect(seen).not.toBe('timed-out');
    expect(Atomics.load(cells, 1)).toBe(1);
    const result = await canceled.result;
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toBeInstanceOf(AbortError);
    expect(await (await waiting).result).toMatchObject({ ok: true, value: 42 });
  });

  it('live worker functions in the threads never exceed threads while canceled jobs are replaced', async () => {
    // A long grace: the canceled jobs (which ignore their signal) are not terminated, so every
    // function that started is counted until it returns.
    await using pool = jobsPool({ threads: 2, queueSize: 2, abortGrace: 60_000 });
    const { sab, cells } = latch();
    const controllers = [new AbortController(), new AbortController()];
    const first = await Promise.all(
      controllers.map((c) => pool.submit({ kind: 'gauge', sab }, { signal: c.signal })),
    );
    expect(await cellReaches(cells, 0, 2, 10_000)).toBe(true);
    const later = Array.from({ length: 6 }, () => pool.submit({ kind: 'gauge', sab }));
    for (const c of controllers) c.abort();
    for (const task of first) expect((await task.result).ok).toBe(false);
    // The freed slots took waiting jobs; give the scheduler turns to hand them out.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(Atomics.load(cells, 0)).toBe(2);
    release(cells);
    for (const task of await Promise.all(later)) {
      expect(await task.result).toMatchObject({ ok: true, value: 'released' });
    }
    expect(Atomics.load(cells, 1)).toBe(2);
    // The canceled jobs' functions return too (their results are discarded): the gauge empties.
    const deadline = Date.now() + 10_000;
    for (let live = Atomics.load(cells, 0); live !== 0 && Date.now() < deadline; ) {
      Atomics.wait(cells, 0, live, 100);
      live = Atomics.load(cells, 0);
    }
    expect(Atomics.load(cells, 0)).toBe(0);
  });
});

describe('ThreadPool timeouts', () => {
  it('a job past its timeout settles as TimeoutError and its signal aborts in the thread', async () => {
    await using pool = jobsPool({ threads: 1, timeout: 30 });
    const { sab, cells } = latch();
    const error = await pool.run({ kind: 'wait-abort', sab }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).timeout).toBe(30);
    expect(await cellSet(cells, 1)).toBe(1);
    expect(pool.stats().timedOut).toBe(1);
  });

  it('a timed-out job that ignores its signal costs its thread; later jobs are unaffected', async () => {
    await using pool = jobsPool({ threads: 1, timeout: 30, abortGrace: 20, queueSize: 4 });
    const before = await pool.run({ kind: 'thread-id' });
    const { sab } = latch();
    const timedOut = pool.run({ kind: 'block', sab }).catch((e: unknown) => e);
    const later = pool.run({ kind: 'thread-id' });
    expect(await timedOut).toBeInstanceOf(TimeoutError);
    expect(await later).not.toBe(before);
  });

  it('a job batched behind another gets its whole timeout from its own start', async () => {
    // Each hold is 0.6 of the limit: 0.8 s of slack before a late timer (a loaded machine)
    // would time a job out, while together they pass the limit whatever the lateness.
    const timeout = 2_000;
    const { pool, a, b } = await batchingPool({ timeout });
    const hold = (share: number) => new Promise((resolve) => setTimeout(resolve, timeout * share));
    // Submitted together, so they reach the thread in one batch: b's clock must wait for b.
    const first = pool.run({ kind: 'block', sab: a.sab });
    const second = pool.run({ kind: 'block', sab: b.sab });
    await cellSet(a.cells, 0);
    await hold(0.6);
    release(a.cells);
    await cellSet(b.cells, 0);
    await hold(0.6); // b has run 0.6 of its limit; the batch was handed over 1.2 limits ago
    release(b.cells);
    expect(await first).toBe('released');
    expect(await second).toBe('released');
    expect(pool.stats().timedOut).toBe(0);
  });

  it('counts from the job start, not its submission', async () => {
    // a and b each run for 60% of the timeout; c waits behind both (120% of it) yet does not
    // time out, because its clock starts when it reaches the thread. A limit of 2 s leaves each
    // hold 0.8 s of slack for timers running late on a loaded machine.
    const timeout = 2_000;
    await using pool = jobsPool({ threads: 1, timeout, queueSize: 4 });
    const a = latch();
    const b = latch();
    const first = pool.run({ kind: 'block', sab: a.sab });
    const second = pool.run({ kind: 'block', sab: b.sab });
    const queued = pool.run({ kind: 'double', x: 5 });
    const hold = () => new Promise((resolve) => setTimeout(resolve, timeout * 0.6));
    const started = performance.now();
    await cellSet(a.cells, 0);
    await hold();
    release(a.cells);
    await cellSet(b.cells, 0);
    await hold();
    release(b.cells);
    expect(await first).toBe('released');
    expect(await second).toBe('released');
    expect(await queued).toBe(10);
    expect(performance.now() - started).toBeGreaterThan(timeout);
  });
});
