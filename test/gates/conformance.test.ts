/**
 * One conformance suite for the gates (`retry`, `rate`, `key`/`perKey`, `priority`): every case
 * runs against every pool kind, with the same option names and the same meaning.
 */
import { describe, expect, it } from 'vitest';
import {
  type GateOptions,
  Pool,
  pipeline,
  type Result,
  runPool,
  ThreadPool,
} from '../../src/index.js';
import scripted, { type ScriptedJob, type ScriptedResult } from '../fixtures/gates/scripted.js';
import { maxInWindow, recordStarts } from '../helpers.js';

const MODULE = new URL('../fixtures/gates/scripted.ts', import.meta.url);

type Options = GateOptions<ScriptedJob> & { concurrency: number; buffer?: number; name?: string };
type Outcome = Result<ScriptedJob, ScriptedResult>;

interface Kind {
  name: string;
  /** Whether submission priority is honoured by this kind (see the README's gate table). */
  priority: boolean;
  run(jobs: ScriptedJob[], opts: Options): Promise<Outcome[]>;
}

const byPriority = (job: ScriptedJob) => job.priority;

const kinds: Kind[] = [
  {
    name: 'Pool',
    priority: true,
    async run(jobs, opts) {
      const pool = new Pool(scripted, { ...opts, queueSize: jobs.length });
      const tasks = jobs.map((job) => pool.trySubmit(job, { priority: job.priority }));
      const results = await Promise.all(tasks.map((t) => t?.result as Promise<Outcome>));
      await pool.drain();
      return results;
    },
  },
  {
    name: 'runPool',
    priority: true,
    async run(jobs, opts) {
      const out: Outcome[] = [];
      for await (const r of runPool(jobs, scripted, { ...opts, priority: byPriority })) out.push(r);
      return out;
    },
  },
  {
    // Without `priority` a lone `rate` takes the engine's rate-only path (no gates' queue).
    name: 'runPool without a priority function',
    priority: false,
    async run(jobs, opts) {
      const out: Outcome[] = [];
      for await (const r of runPool(jobs, scripted, opts)) out.push(r);
      return out;
    },
  },
  {
    name: 'pipeline stage',
    priority: true,
    async run(jobs, opts) {
      const out: Outcome[] = [];
      const { name = 'work', ...rest } = opts;
      const p = pipeline(jobs).stage(name, scripted, { ...rest, priority: byPriority });
      for await (const r of p) out.push(r as Outcome);
      return out;
    },
  },
  {
    name: 'ThreadPool',
    priority: true,
    async run(jobs, opts) {
      const pool = new ThreadPool<ScriptedJob, ScriptedResult>(MODULE, {
        threads: opts.concurrency,
        queueSize: jobs.length,
        retry: opts.retry,
        rate: opts.rate,
        key: opts.key,
        perKey: opts.perKey,
        name: opts.name,
      });
      try {
        // Every thread loaded first: a start gate sees the hand-over to a thread, and a thread
        // still loading its module would start what it was handed later, all at once.
        await warmUp(pool, opts.concurrency);
        // The first job goes alone, and the rest once it runs: "the pool is busy" as in the
        // other kinds, where the first job starts at its submit.
        const [first, ...rest] = jobs.map((job) => ({ job, priority: job.priority }));
        const tasks = [pool.trySubmit(first!.job, { priority: first!.priority })];
        let done = false;
        void tasks[0]?.result.then(() => {
          done = true;
        });
        while (!done && pool.stats().running === 0) {
          await new Promise((resolve) => setImmediate(resolve));
        }
        for (const { job, priority } of rest) tasks.push(pool.trySubmit(job, { priority }));
        return await Promise.all(tasks.map((t) => t?.result as Promise<Outcome>));
      } finally {
        await pool.drain();
      }
    },
  },
];

async function warmUp(pool: ThreadPool<ScriptedJob, ScriptedResult>, threads: number) {
  await pool.ready;
  const warm = script(threads * 2, () => ({ holdMs: 20, key: 'warm', keySlot: 7 }));
  const tasks = warm.map((job) => pool.submit(job));
  await Promise.all((await Promise.all(tasks)).map((t) => t.result));
  // The warm-up used the rate's window: wait it out.
  await new Promise((resolve) => setTimeout(resolve, 350));
}

/** Jobs with their shared counters; `spec` fills in each job's script. */
function script(n: number, spec: (id: number) => Partial<ScriptedJob> = () => ({})): ScriptedJob[] {
  const keys = 8;
  const shared = new Int32Array(new SharedArrayBuffer(4 * (n + keys + 1)));
  return Array.from({ length: n }, (_, id) => ({
    id,
    failTimes: 0,
    key: 'k0',
    keySlot: 0,
    priority: 0,
    holdMs: 0,
    shared,
    jobs: n,
    ...spec(id),
  }));
}

/** Successful results in the order their runs started. */
function startOrder(results: Outcome[]): Extract<Outcome, { ok: true }>[] {
  return results
    .filter((r): r is Extract<Outcome, { ok: true }> => r.ok)
    .sort((a, b) => a.value.seq - b.value.seq);
}

const byId = (results: Outcome[]) => [...results].sort((a, b) => a.job.id - b.job.id);

describe.each(kinds)('gates on $name', (kind) => {
  it('retry: fails twice then succeeds → ok after 3 attempts; always failing → attempts runs, every error kept', async () => {
    const jobs = script(2, (id) => ({ failTimes: id === 0 ? 2 : 99 }));
    const [flaky, hopeless] = byId(
      await kind.run(jobs, { concurrency: 2, retry: { attempts: 3, backoff: () => 5 } }),
    );
    expect(flaky).toMatchObject({ ok: true, attempts: 3, value: { attempt: 3 } });
    expect(flaky?.errors).toHaveLength(2);
    expect(hopeless).toMatchObject({ ok: false, attempts: 3 });
    expect(hopeless?.errors?.map((e) => e.message)).toEqual([
      'job 1 failed run 1',
      'job 1 failed run 2',
      'job 1 failed run 3',
    ]);
  });

  it('retry: retryIf false → no retry', async () => {
    const jobs = script(1, () => ({ failTimes: 99 }));
    const [only] = await kind.run(jobs, {
      concurrency: 1,
      retry: { attempts: 5, retryIf: () => false },
    });
    expect(only).toMatchObject({ ok: false, attempts: 1 });
  });

  it('rate: no window of `interval` ms holds more than `limit` starts', async () => {
    const jobs = script(12);
    const name = `rate-${kind.name}`;
    const recorded = recordStarts(name);
    const t0 = Date.now();
    try {
      const results = await kind.run(jobs, {
        concurrency: 4,
        rate: { limit: 4, interval: 300 },
        name,
      });
      expect(results.every((r) => r.ok)).toBe(true);
    } finally {
      recorded.stop();
    }
    // The starts as the pool made them (main thread, the gate's turn; see recordStarts). The
    // window is narrowed by a GC pause's worth: without the gate all 12 start within a few ms.
    // The last 12: ThreadPool's run loads its threads with warm-up jobs first.
    const starts = recorded.starts.slice(-12);
    expect(starts).toHaveLength(12);
    expect(maxInWindow(starts, 300 - 50)).toBeLessThanOrEqual(4);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600 - 5);
  });

  it('key: never two jobs of one key at once; round-robin lets a small key through a hot one', async () => {
    const hotAndSmall = (id: number) => {
      const hot = id < 20;
      return { key: hot ? 'hot' : 'small', keySlot: hot ? 0 : 1, holdMs: 3 };
    };
    const jobs = script(24, hotAndSmall);
    const results = await kind.run(jobs, {
      concurrency: 2,
      // runPool and stages see `concurrency + buffer` jobs ahead: the window of per-key turns.
      buffer: 24,
      key: (job) => job.key,
      perKey: { concurrency: 1 },
    });
    expect(results.every((r) => r.ok && !r.value.overlapped)).toBe(true);
    // The turns on one slot: with two, each key could hold one, and the start order would follow
    // how long each thread's jobs take (a slow thread under load), not the round-robin.
    const oneSlot = await kind.run(script(24, hotAndSmall), {
      concurrency: 1,
      buffer: 24,
      key: (job) => job.key,
      perKey: { concurrency: 1 },
    });
    const order = startOrder(oneSlot).map((r) => r.job.key);
    // The four small jobs were submitted after all twenty hot ones, yet are done in turns.
    expect(order.lastIndexOf('small')).toBeLessThan(12);
  });

  it('priority: with the pool busy, higher priorities start first, FIFO within one', async (ctx) => {
    if (!kind.priority) ctx.skip();
    const jobs = script(6, (id) => ({
      priority: [0, 0, 0, 5, 5, 9][id] as number,
      holdMs: id === 0 ? 20 : 0,
    }));
    const results = await kind.run(jobs, { concurrency: 1, buffer: 10 });
    // Job 0 starts alone; the rest wait and go by priority.
    expect(startOrder(results).map((r) => r.job.id)).toEqual([0, 5, 3, 4, 1, 2]);
  });
});
