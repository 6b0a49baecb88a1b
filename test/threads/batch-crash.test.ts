// A thread that dies in the middle of a batch of 64: for a crash at every position, every job
// runs once and settles once, the jobs after the crash run elsewhere with their true outcome,
// the jobs before it report their true outcome (or, when the thread was killed from outside
// with their results still in it, the documented WorkerCrashedError), and the pool carries on.
//
// These tests start a thread about 200 times, so they run sluice's build (dist/, kept fresh by
// test/build-setup.ts): a ThreadPool imported from src/ starts each thread through tsx's loader,
// which costs about 0.4 s a start here. The other thread tests cover starting from source.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WorkerCrashedError } from '../../dist/errors.js';
import type { Result } from '../../dist/result.js';
import { BatchSize, MAX_BATCH } from '../../dist/threads/batch-size.js';
import { ThreadPool } from '../../dist/threads/pool.js';
import { type Sent, Thread } from '../../dist/threads/thread.js';
import { fixture } from './helpers.js';

type How = 'exit' | 'async-throw' | 'oom';

interface CrashJob {
  i: number;
  sab: SharedArrayBuffer;
  crashAt: number;
  how: How;
}

const BATCH = 64;
/** The message a job gets when it finished but its result died with its thread. */
const LOST = /after job \d+ finished but before its result left the thread/;

/** Jobs per message sent to a thread, in order. */
let sends: number[] = [];

beforeEach(() => {
  // Whatever the machine's load, the 64 jobs released at once travel in one message, and jobs
  // count as tiny (so a thread holds two batches of 64).
  vi.spyOn(BatchSize.prototype, 'next').mockImplementation((waiting: number) =>
    Math.min(waiting, MAX_BATCH),
  );
  vi.spyOn(BatchSize.prototype, 'limit').mockReturnValue(MAX_BATCH);
  const send = Thread.prototype.send;
  vi.spyOn(Thread.prototype, 'send').mockImplementation(function (
    this: Thread<Sent>,
    batch: Sent[],
  ) {
    sends.push(batch.length);
    send.call(this, batch);
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** The outcome job `i` has when nothing goes wrong (see the fixture). */
function expectTrueOutcome(result: Result<CrashJob, number>, i: number): void {
  if (i % 5 === 0) {
    expect(result.ok).toBe(false);
    const error = (result as { error: Error }).error;
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toBe(`job ${i} failed`);
  } else {
    expect(result).toMatchObject({ ok: true, value: i * 10 });
  }
}

async function crashEveryPosition(how: How, exitCode: number): Promise<void> {
  await using pool = new ThreadPool<CrashJob, number>(fixture('batch-crash.js'), {
    threads: 1,
    queueSize: 2 * BATCH,
    // A small heap: the thread reaches its limit after a few allocations (a 32 MB heap took
    // three times as long to fill, 64 times over).
    ...(how === 'oom'
      ? { resourceLimits: { maxOldGenerationSizeMb: 12, maxYoungGenerationSizeMb: 4 } }
      : {}),
  });
  await pool.ready;
  let crashed = 0;
  for (let crashAt = 0; crashAt < BATCH; crashAt++) {
    const sab = new SharedArrayBuffer(4 * BATCH);
    const runs = new Int32Array(sab);
    pool.pause();
    const tasks = [];
    for (let i = 0; i < BATCH; i++) tasks.push(await pool.submit({ i, sab, crashAt, how }));
    sends = [];
    pool.resume();
    const results = await Promise.all(tasks.map((task) => task.result));
    expect(sends[0], `crash at ${crashAt}: the first message`).toBe(BATCH);
    for (let i = 0; i < BATCH; i++) {
      const result = results[i] as Result<CrashJob, number>;
      expect(runs[i], `crash at ${crashAt}: runs of job ${i}`).toBe(1);
      if (i === crashAt) {
        crashed++;
        const error = (result as { error: Error }).error;
        expect(error).toBeInstanceOf(WorkerCrashedError);
        expect((error as WorkerCrashedError).exitCode).toBe(exitCode);
        expect(error.message).toMatch(/died while running job/);
      } else if (i < crashAt && how === 'oom') {
        // Killed from outside: the results waiting in the thread died with it.
        crashed++;
        const error = (result as { error: Error }).error;
        expect(error).toBeInstanceOf(WorkerCrashedError);
        expect(error.message).toMatch(LOST);
        expect((error.cause as { code?: string }).code).toBe('ERR_WORKER_OUT_OF_MEMORY');
      } else {
        expectTrueOutcome(result, i);
      }
    }
  }
  // Every job settled once, and the pool still runs jobs.
  const stats = pool.stats();
  expect(stats.crashed).toBe(crashed);
  expect(stats.succeeded + stats.failed + stats.crashed).toBe(BATCH * BATCH);
  expect(stats).toMatchObject({ running: 0, queued: 0 });
  const sab = new SharedArrayBuffer(4 * BATCH);
  expect(await pool.run({ i: 1, sab, crashAt: -1, how })).toBe(10);
}

describe('ThreadPool: a thread dying in the middle of a batch of 64', () => {
  // Each test kills and restarts a thread 64 times: on a loaded machine a restart takes seconds.
  it('process.exit() at every position: only the exiting job fails, every other job reports its true outcome', {
    timeout: 600_000,
  }, async () => {
    await crashEveryPosition('exit', 7);
  });

  it('an asynchronous throw at every position: only the job running then fails, every other job reports its true outcome', {
    timeout: 600_000,
  }, async () => {
    await crashEveryPosition('async-throw', 1);
  });

  it('running out of memory at every position: the job running then fails, the finished ones before it fail as documented, the rest run elsewhere', {
    timeout: 600_000,
  }, async () => {
    await crashEveryPosition('oom', 1);
  });
});

describe('ThreadPool with its default bounded queue: a thread dying while it holds two batches', () => {
  it('process.exit() in the middle of a stream of awaited runs: only the exiting job fails, each job runs and settles once, the pool carries on', {
    timeout: 120_000,
  }, async () => {
    const N = 600;
    await using pool = new ThreadPool<CrashJob, number>(fixture('batch-crash.js'), { threads: 1 });
    await pool.ready;
    // Warm up: the first results make the jobs count as tiny, so the queue admits two batches.
    // (Jobs whose i is a multiple of 5 throw: the warm-up leaves them out.)
    const warm = new SharedArrayBuffer(4 * BATCH);
    await Promise.all(
      [1, 2, 3, 4, 6, 7, 8, 9].map((i) => pool.run({ i, sab: warm, crashAt: -1, how: 'exit' })),
    );
    sends = [];
    for (const crashAt of [0, 63, 64, 200, 599]) {
      const sab = new SharedArrayBuffer(4 * N);
      const runs = new Int32Array(sab);
      const outcomes = await Promise.all(
        range(N).map((i) =>
          pool.run({ i, sab, crashAt, how: 'exit' }).then(
            (value): Result<CrashJob, number> => ({
              ok: true,
              job: undefined as never,
              index: i,
              value,
            }),
            (error: Error): Result<CrashJob, number> => ({
              ok: false,
              job: undefined as never,
              index: i,
              error,
            }),
          ),
        ),
      );
      for (let i = 0; i < N; i++) {
        expect(runs[i], `crash at ${crashAt}: runs of job ${i}`).toBe(1);
        const result = outcomes[i] as Result<CrashJob, number>;
        if (i === crashAt) {
          const error = (result as { error: Error }).error;
          expect(error).toBeInstanceOf(WorkerCrashedError);
          expect((error as WorkerCrashedError).exitCode).toBe(7);
        } else {
          expectTrueOutcome(result, i);
        }
      }
    }
    // The default queue (2) did not hold batching back: full batches went out.
    expect(Math.max(...sends)).toBe(BATCH);
    const stats = pool.stats();
    expect(stats.crashed).toBe(5);
    expect(stats.succeeded + stats.failed + stats.crashed).toBe(8 + 5 * N);
    expect(stats).toMatchObject({ running: 0, queued: 0 });
  });
});

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
