import { execFile } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  adaptive,
  type JobSettledMessage,
  type JobTraceContext,
  Pool,
  type PoolLimitMessage,
  type PoolStateMessage,
  pipeline,
  runPool,
  SLUICE_JOB,
  SLUICE_JOB_ACCEPTED,
  SLUICE_JOB_RETRIED,
  SLUICE_JOB_SETTLED,
  SLUICE_POOL_LIMIT,
  SLUICE_POOL_STATE,
  ThreadPool,
} from '../../src/index.js';
import {
  acceptedChannel,
  jobTrace,
  poolLimitChannel,
  poolStateChannel,
  retriedChannel,
  settledChannel,
} from '../../src/observability/channels.js';
import { deferred } from '../helpers.js';

const run = promisify(execFile);

type Event = { event: string; name: string; kind: string; index: number; job: unknown };

/** Subscribes to every sluice channel; `stop()` unsubscribes. Records `event` per message. */
function listen() {
  const events: Event[] = [];
  const messages: Record<string, unknown[]> = {};
  const on = (event: string) => (message: unknown) => {
    const m = message as Event;
    events.push({ event, name: m.name, kind: m.kind, index: m.index, job: m.job });
    const list = messages[event] ?? [];
    list.push(message);
    messages[event] = list;
  };
  const plain = {
    [SLUICE_JOB_ACCEPTED]: on('accepted'),
    [SLUICE_JOB_RETRIED]: on('retried'),
    [SLUICE_JOB_SETTLED]: on('settled'),
  };
  for (const [name, fn] of Object.entries(plain)) diagnostics.subscribe(name, fn);
  const trace = {
    start: on('start'),
    end: on('end'),
    asyncStart: on('asyncStart'),
    asyncEnd: on('asyncEnd'),
    error: on('error'),
  };
  const tc = diagnostics.tracingChannel(SLUICE_JOB);
  tc.subscribe(trace);
  const stop = () => {
    for (const [name, fn] of Object.entries(plain)) diagnostics.unsubscribe(name, fn);
    tc.unsubscribe(trace);
  };
  /** Each job's event names in order, by index. */
  const byJob = (name: string) => {
    const jobs = new Map<number, string[]>();
    for (const e of events.filter((e) => e.name === name)) {
      jobs.set(e.index, [...(jobs.get(e.index) ?? []), e.event]);
    }
    return jobs;
  };
  return { events, messages, stop, byJob };
}

const ATTEMPT = ['start', 'end', 'asyncStart', 'asyncEnd'];
const FAILED_ATTEMPT = ['start', 'end', 'error', 'asyncStart', 'asyncEnd'];
const PLAIN = ['accepted', ...ATTEMPT, 'settled'];
const RETRIED = ['accepted', ...FAILED_ATTEMPT, 'retried', ...ATTEMPT, 'settled'];

/** Fails odd jobs on their first run. */
const flaky = () => {
  const seen = new Set<number>();
  return (n: number) => {
    if (n % 2 === 1 && !seen.has(n)) {
      seen.add(n);
      throw new Error(`first run of ${n}`);
    }
    return n * 10;
  };
};

let subscription: ReturnType<typeof listen> | undefined;
/** Listens until the end of the test. */
function subscribe() {
  subscription = listen();
  return subscription;
}
afterEach(() => {
  subscription?.stop();
  subscription = undefined;
  vi.restoreAllMocks();
});

describe('job lifecycle on diagnostics_channel', () => {
  it('Pool: accepted → start/end → (error, retried →) … asyncEnd → settled for every job', async () => {
    const sub = subscribe();
    const pool = new Pool(flaky(), {
      concurrency: 2,
      queueSize: 10,
      retry: { attempts: 2, backoff: () => 1 },
      name: 'fetchers',
    });
    for (let n = 0; n < 6; n++) pool.trySubmit(n);
    await pool.drain();
    const jobs = sub.byJob('fetchers');
    expect([...jobs.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    for (const [index, events] of jobs) {
      expect(events, `job ${index}`).toEqual(index % 2 === 1 ? RETRIED : PLAIN);
    }
    expect(new Set(sub.events.map((e) => e.kind))).toEqual(new Set(['pool']));
    const settled = sub.messages.settled as JobSettledMessage<number>[];
    const one = settled.find((m) => m.index === 1) as JobSettledMessage<number>;
    expect(one).toMatchObject({ job: 1, outcome: 'succeeded', error: undefined, attempts: 2 });
    expect(one.totalMs).toBeGreaterThanOrEqual(0);
    const retried = sub.messages.retried as { attempt: number; delayMs: number; error: Error }[];
    expect(retried.map((m) => [m.attempt, m.delayMs, m.error.message]).sort()).toEqual([
      [1, 1, 'first run of 1'],
      [1, 1, 'first run of 3'],
      [1, 1, 'first run of 5'],
    ]);
  });

  it('one context object per attempt, carrying attempt, wait, duration and error', async () => {
    const sub = subscribe();
    const pool = new Pool(flaky(), { concurrency: 1, retry: { attempts: 2, backoff: () => 0 } });
    await pool.run(1);
    const starts = sub.messages.start as JobTraceContext<number>[];
    const ends = sub.messages.asyncEnd as JobTraceContext<number>[];
    expect(starts).toHaveLength(2);
    expect(ends[0]).toBe(starts[0]);
    expect(ends[1]).toBe(starts[1]);
    expect(starts.map((c) => c.attempt)).toEqual([1, 2]);
    expect(starts[0]?.error?.message).toBe('first run of 1');
    expect(starts[1]?.error).toBeUndefined();
    for (const c of starts) {
      expect(c).toMatchObject({ name: 'pool', kind: 'pool', index: 0, job: 1 });
      expect(c.waitMs).toBeGreaterThanOrEqual(0);
      expect(c.durationMs).toBeGreaterThanOrEqual(0);
    }
  });

  it('a failed job settles with its outcome and error', async () => {
    const sub = subscribe();
    const boom = new Error('boom');
    const pool = new Pool(
      () => {
        throw boom;
      },
      { concurrency: 1 },
    );
    await pool.submit(0).then((t) => t.result);
    expect(sub.messages.settled).toEqual([
      expect.objectContaining({ outcome: 'failed', error: boom, attempts: 1 }),
    ]);
  });

  it('runPool: the same lifecycle, named by its name option (default run-pool)', async () => {
    const sub = subscribe();
    const opts = { concurrency: 2, retry: { attempts: 2, backoff: () => 1 }, name: 'crawl' };
    for await (const _ of runPool([0, 1, 2, 3], flaky(), opts)) {
      /* drain */
    }
    const jobs = sub.byJob('crawl');
    expect(jobs.size).toBe(4);
    for (const [index, events] of jobs) {
      expect(events, `job ${index}`).toEqual(index % 2 === 1 ? RETRIED : PLAIN);
    }
    for await (const _ of runPool([7], (n: number) => n, { concurrency: 1 })) {
      /* drain */
    }
    expect(sub.byJob('run-pool').get(0)).toEqual(PLAIN);
    expect(sub.events.find((e) => e.name === 'run-pool')).toMatchObject({
      kind: 'run-pool',
      job: 7,
    });
  });

  it('pipeline stages publish under their stage names with the stage value as job', async () => {
    const sub = subscribe();
    const p = pipeline([1, 2, 3])
      .stage('double', (n: number) => n * 2, { concurrency: 2 })
      .stage('inc', (n: number) => n + 1, { concurrency: 1 });
    for await (const _ of p) {
      /* drain */
    }
    for (const stage of ['double', 'inc']) {
      const jobs = sub.byJob(stage);
      expect(jobs.size, stage).toBe(3);
      for (const events of jobs.values()) expect(events).toEqual(PLAIN);
    }
    const incJobs = sub.events.filter((e) => e.name === 'inc' && e.event === 'accepted');
    expect(incJobs.map((e) => e.job).sort()).toEqual([2, 4, 6]);
    expect(new Set(sub.events.map((e) => e.kind))).toEqual(new Set(['stage']));
  });

  it('ThreadPool: every job, named thread-pool by default', async () => {
    const sub = subscribe();
    const url = new URL('../fixtures/threads/double.ts', import.meta.url);
    const named = new ThreadPool<number, number>(url, { threads: 1, name: 'doublers' });
    const plain = new ThreadPool<number, number>(url, { threads: 1 });
    expect(await Promise.all([named.run(1), named.run(2), plain.run(3)])).toEqual([2, 4, 6]);
    await Promise.all([named.drain(), plain.drain()]);
    expect([...sub.byJob('doublers').values()]).toEqual([PLAIN, PLAIN]);
    expect([...sub.byJob('thread-pool').values()]).toEqual([PLAIN]);
    expect(sub.events.find((e) => e.name === 'doublers')?.kind).toBe('thread-pool');
  });
});

describe('the name option', () => {
  it.each([[''], [5]])('refuses %j at construction', (name) => {
    expect(() => new Pool((n: number) => n, { concurrency: 1, name } as never)).toThrow(/name/);
    expect(() => runPool([1], (n: number) => n, { concurrency: 1, name } as never)).toThrow(/name/);
    expect(
      () =>
        new ThreadPool(new URL('../fixtures/threads/double.ts', import.meta.url), {
          name,
        } as never),
    ).toThrow(/name/);
  });
});

describe('pool state on sluice:pool:state', () => {
  function states() {
    const seen: PoolStateMessage[] = [];
    const fn = (m: unknown) => seen.push(m as PoolStateMessage);
    diagnostics.subscribe(SLUICE_POOL_STATE, fn);
    return { seen, stop: () => diagnostics.unsubscribe(SLUICE_POOL_STATE, fn) };
  }

  it('open → closing → drained on drain, once each', async () => {
    const s = states();
    try {
      const gate = deferred<void>();
      const pool = new Pool(() => gate.promise, { concurrency: 1, name: 'p' });
      pool.trySubmit(1);
      const drained = pool.drain();
      expect(s.seen).toEqual([{ name: 'p', kind: 'pool', previous: 'open', state: 'closing' }]);
      gate.resolve();
      await drained;
      await pool.drain();
      pool.close();
      expect(s.seen.map((m) => m.state)).toEqual(['closing', 'drained']);
    } finally {
      s.stop();
    }
  });

  it('open → aborted on abort, and a ThreadPool reports as thread-pool', async () => {
    const s = states();
    try {
      const pool = new Pool(() => new Promise(() => {}), { concurrency: 1 });
      pool.trySubmit(1);
      await pool.abort();
      // abort() closes first, then cancels.
      expect(s.seen).toEqual([
        { name: 'pool', kind: 'pool', previous: 'open', state: 'closing' },
        { name: 'pool', kind: 'pool', previous: 'closing', state: 'aborted' },
      ]);
      const threads = new ThreadPool(new URL('../fixtures/threads/double.ts', import.meta.url), {
        threads: 1,
      });
      await threads.drain();
      expect(s.seen.slice(2).map((m) => [m.kind, m.state])).toEqual([
        ['thread-pool', 'closing'],
        ['thread-pool', 'drained'],
      ]);
    } finally {
      s.stop();
    }
  });
});

describe('runPool and stage state on sluice:pool:state', () => {
  function states() {
    const seen: string[] = [];
    const fn = (m: unknown) => {
      const { name, previous, state } = m as PoolStateMessage;
      seen.push(`${name}:${previous}>${state}`);
    };
    diagnostics.subscribe(SLUICE_POOL_STATE, fn);
    return { seen, stop: () => diagnostics.unsubscribe(SLUICE_POOL_STATE, fn) };
  }

  it('runPool: open → drained at the end; breaking out or an abort → aborted', async () => {
    const s = states();
    try {
      for await (const _ of runPool([1, 2], (n: number) => n, { concurrency: 1, name: 'a' })) {
        /* drain */
      }
      for await (const _ of runPool([1, 2], (n: number) => n, { concurrency: 1, name: 'b' })) {
        break;
      }
      const controller = new AbortController();
      const it = runPool([1, 2], () => new Promise(() => {}), {
        concurrency: 1,
        name: 'c',
        signal: controller.signal,
      });
      const first = it.next();
      controller.abort();
      await first;
      expect(s.seen).toEqual(['a:open>drained', 'b:open>aborted', 'c:open>aborted']);
    } finally {
      s.stop();
    }
  });

  it.each([
    ['lean', {}],
    ['full', { timeout: 60_000 }],
  ] as const)(
    'runPool (%s engine) given a signal aborted before it starts: open → aborted, nothing run',
    async (engine, extra) => {
      const s = states();
      try {
        const ran: number[] = [];
        const name = `pre-${engine}`;
        const it = runPool(
          [1, 2],
          (n: number) => {
            ran.push(n);
            return n;
          },
          { concurrency: 1, name, signal: AbortSignal.abort(), ...extra },
        );
        expect(await it.next()).toEqual({ done: true, value: undefined });
        expect(ran).toEqual([]);
        expect(s.seen).toEqual([`${name}:open>aborted`]);
      } finally {
        s.stop();
      }
    },
  );

  it('stages: each drained when the pipeline ends; all aborted by an abort', async () => {
    const s = states();
    try {
      const p = pipeline([1, 2])
        .stage('one', (n: number) => n, { concurrency: 1 })
        .stage('two', (n: number) => n, { concurrency: 1 });
      for await (const _ of p) {
        /* drain */
      }
      expect(s.seen.sort()).toEqual(['one:open>drained', 'two:open>drained']);
      s.seen.length = 0;
      const q = pipeline([1, 2])
        .stage('x', () => new Promise(() => {}), { concurrency: 1 })
        .stage('y', (n: unknown) => n, { concurrency: 1 });
      const it = q[Symbol.asyncIterator]();
      const first = it.next();
      await q.abort();
      await first.catch(() => {});
      expect(s.seen.sort()).toEqual(['x:open>aborted', 'y:open>aborted']);
    } finally {
      s.stop();
    }
  });
});

describe('adaptive limit moves on sluice:pool:limit', () => {
  function limits() {
    const seen: PoolLimitMessage[] = [];
    const fn = (m: unknown) => seen.push(m as PoolLimitMessage);
    diagnostics.subscribe(SLUICE_POOL_LIMIT, fn);
    return { seen, stop: () => diagnostics.unsubscribe(SLUICE_POOL_LIMIT, fn) };
  }
  const overload = () => Object.assign(new Error('busy'), { status: 503 });
  const clock = () => 0;
  // Drops only: run times measured on the real clock would make latency cuts a matter of luck.
  const AIMD = { name: 'aimd', tolerance: Number.POSITIVE_INFINITY } as const;

  it('Pool: one message per move, as in its history, with name, previous, limit and reason', async () => {
    const s = limits();
    try {
      const limit = adaptive({ min: 1, max: 4, algorithm: AIMD, now: clock });
      const pool = new Pool(
        async (n: number) => {
          if (n === 3) throw overload();
          return n;
        },
        { concurrency: limit, name: 'fetcher' },
      );
      for (const n of [0, 1, 2, 3]) await (await pool.submit(n)).result;
      pool.resize(limit.limit + 1);
      await pool.drain();
      const moves = s.seen.map(({ previous, limit: to, reason }) => ({
        from: previous,
        to,
        reason,
      }));
      expect(moves).toEqual(limit.history.map(({ from, to, reason }) => ({ from, to, reason })));
      expect(moves[0]).toEqual({ from: 1, to: 2, reason: 'probe' });
      expect(moves.map((m) => m.reason)).toContain('drop');
      expect(moves.at(-1)?.reason).toBe('manual');
      expect(s.seen[0]).toMatchObject({ name: 'fetcher', kind: 'pool', min: 1, max: 4, at: 0 });
    } finally {
      s.stop();
    }
  });

  it('runPool and stages publish under their name and kind; a limit used alone publishes nothing', async () => {
    const s = limits();
    try {
      const alone = adaptive({ min: 1, max: 4, algorithm: AIMD, now: clock });
      alone.onSample({ rtt: 1, inflight: 1, dropped: false });
      expect(alone.limit).toBe(2);
      expect(s.seen).toEqual([]);
      const jobs = [1, 2, 3, 4];
      for await (const _ of runPool(jobs, (n: number) => n, {
        concurrency: adaptive({ min: 1, max: 2, algorithm: AIMD, now: clock }),
        name: 'crawl',
      })) {
        /* drain */
      }
      const p = pipeline(jobs).stage('embed', (n: number) => n, {
        concurrency: adaptive({ min: 1, max: 2, algorithm: AIMD, now: clock }),
      });
      for await (const _ of p) {
        /* drain */
      }
      expect(s.seen.map((m) => `${m.kind}:${m.name}:${m.previous}>${m.limit}`)).toEqual([
        'run-pool:crawl:1>2',
        'stage:embed:1>2',
      ]);
    } finally {
      s.stop();
    }
  });
});

describe('cost and isolation', () => {
  it('publishes nothing when no one subscribes', async () => {
    const channels = [
      acceptedChannel,
      retriedChannel,
      settledChannel,
      poolStateChannel,
      poolLimitChannel,
      jobTrace.start,
      jobTrace.end,
      jobTrace.asyncStart,
      jobTrace.asyncEnd,
      jobTrace.error,
    ];
    for (const c of channels) expect(c.hasSubscribers).toBe(false);
    const spies = channels.map((c) => vi.spyOn(c, 'publish'));
    const pool = new Pool(flaky(), { concurrency: 2, retry: { attempts: 2, backoff: () => 0 } });
    for (let n = 0; n < 4; n++) pool.trySubmit(n);
    await pool.drain();
    for await (const _ of runPool([1, 2], flaky(), {
      concurrency: 1,
      retry: { attempts: 2, backoff: () => 0 },
    })) {
      /* drain */
    }
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });

  it('a job accepted before anyone listened publishes nothing later; the next ones do', async () => {
    const gate = deferred<void>();
    const pool = new Pool((n: number) => gate.promise.then(() => n), { concurrency: 2 });
    const early = await pool.submit(1);
    const sub = subscribe();
    const late = await pool.submit(2);
    gate.resolve();
    await Promise.all([early.result, late.result]);
    expect([...sub.byJob('pool').entries()]).toEqual([[1, PLAIN]]);
  });

  it('runPool: jobs pulled before anyone listened publish nothing later; those pulled after do, in the same run', async () => {
    const gates = [deferred<void>(), deferred<void>(), deferred<void>(), deferred<void>()];
    const it = runPool([0, 1, 2, 3], (n: number) => gates[n]?.promise.then(() => n), {
      concurrency: 2,
      buffer: 0,
      name: 'mid-run',
    });
    const first = it.next();
    await Promise.resolve();
    // Jobs 0 and 1 run unobserved; a subscriber arrives; jobs 2 and 3 are pulled after it.
    const sub = subscribe();
    gates[0]?.resolve();
    gates[1]?.resolve();
    const values = [((await first).value as { value: number }).value];
    gates[2]?.resolve();
    gates[3]?.resolve();
    for await (const r of it) values.push((r as { value: number }).value);
    expect(values.sort()).toEqual([0, 1, 2, 3]);
    expect([...sub.byJob('mid-run').entries()].sort()).toEqual([
      [2, PLAIN],
      [3, PLAIN],
    ]);
  });

  it('a throwing subscriber breaks no job: Node rethrows its error on nextTick as uncaught', async () => {
    const script = fileURLToPath(
      new URL('../fixtures/observability/throwing-subscriber.ts', import.meta.url),
    );
    const { stdout } = await run(process.execPath, ['--import', 'tsx', script]);
    expect(JSON.parse(stdout)).toEqual({
      first: { ok: true, job: 1, index: 0, value: 2 },
      second: 3,
      // Subscribers after the throwing one still receive every message.
      later: [0, 1],
      uncaught: ['Error: subscriber bug', 'Error: subscriber bug'],
    });
  });
});
