/**
 * Model-based attack on Pool's start gates: random retry / rate / key+perKey configurations ×
 * random submit / trySubmit with priorities, keys and caller signals, jobs that fail some
 * attempts then succeed, fail, hang until canceled or wait for the model, time advancing on a
 * fake clock (performance.now included), pause / resume / resize / close / drain / abort.
 * Checked at every worker start: the concurrency limits (pool and key), the attempt count, the
 * priority order; at every acceptance: the bound; at the end: one settlement per job, the rate
 * windows on the fake clock, stats, hooks, no timers, no listeners, no key state left.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, it, vi } from 'vitest';
import { AbortError, Pool, type Result } from '../../src/index.js';
import { HOOKS } from '../../src/scheduler/hooks.js';
import {
  fakeClock,
  type GateConfig,
  gateConfig,
  gateOptions,
  HookLog,
  type JobBehaviour,
  jobBehaviour,
  KEYS,
  type Key,
} from './gate-model.js';
import { type GateRec, GateWorker } from './gate-worker.js';
import {
  abortListeners,
  flush,
  fuzzAssert,
  fuzzParams,
  runCommands,
  settlesWithin,
  testTimeout,
  UnhandledCounter,
  Violations,
} from './harness.js';

interface JobSpec {
  behaviour: JobBehaviour;
  key: Key;
  priority: number;
  signal: boolean;
  via: 'submit' | 'trySubmit';
}

type Command =
  | { t: 'submit'; job: JobSpec }
  | { t: 'settle'; pick: number; ok: boolean }
  | { t: 'abortJob'; pick: number }
  | { t: 'resize'; n: number }
  | { t: 'pause' }
  | { t: 'resume' }
  | { t: 'close' }
  | { t: 'drain'; timeout: number | undefined }
  | { t: 'abort' }
  | { t: 'advance'; ms: number }
  | { t: 'tick' };

const jobSpec: fc.Arbitrary<JobSpec> = fc.record({
  behaviour: jobBehaviour,
  key: fc.constantFrom(...KEYS),
  priority: fc.constantFrom(0, 0, 0, 1, 2, -1),
  signal: fc.boolean(),
  via: fc.constantFrom<JobSpec['via']>('submit', 'trySubmit'),
});

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 8, arbitrary: jobSpec.map((job): Command => ({ t: 'submit', job })) },
  {
    weight: 5,
    arbitrary: fc.record({ t: fc.constant('settle' as const), pick: fc.nat(7), ok: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('abortJob' as const), pick: fc.nat(7) }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('resize' as const), n: fc.integer({ min: 1, max: 4 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom<Command>(
      { t: 'pause' },
      { t: 'resume' },
      { t: 'resume' },
      { t: 'close' },
      { t: 'abort' },
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .option(fc.integer({ min: 1, max: 60 }), { nil: undefined })
      .map((timeout): Command => ({ t: 'drain', timeout })),
  },
  {
    weight: 5,
    arbitrary: fc.integer({ min: 1, max: 45 }).map((ms): Command => ({ t: 'advance', ms })),
  },
  { weight: 3, arbitrary: fc.constant<Command>({ t: 'tick' }) },
);

interface Job {
  id: number;
  key: Key;
}

interface Rec {
  id: number;
  spec: JobSpec;
  ac: AbortController | undefined;
  submit: 'pending' | 'accepted' | 'rejected' | 'refused';
  gate: GateRec;
  results: Result<Job, number>[];
}

class GatePoolModel {
  readonly v = new Violations();
  readonly log: string[] = [];
  readonly recs: Rec[] = [];
  readonly hooks: HookLog<Job>;
  readonly pool: Pool<Job, number>;
  readonly jobs: GateWorker;
  aborted = false;

  constructor(
    concurrency: number,
    readonly queueSize: number,
    readonly timeout: number | undefined,
    readonly config: GateConfig,
  ) {
    this.jobs = new GateWorker(this.v, this.log, config, concurrency);
    // Canceled by its signal or by the pool: it may leave the queue without the model seeing it.
    this.jobs.gone = (g) => this.aborted || this.recs[g.id]?.ac?.signal.aborted === true;
    this.hooks = new HookLog<Job>(
      (job) => this.onAccepted(job),
      (job) => {
        (this.recs[job.id] as Rec).gate.settled = true;
      },
    );
    this.pool = new Pool<Job, number>((job, ctx) => this.jobs.run(job.id, ctx.signal), {
      concurrency,
      queueSize,
      timeout,
      ...gateOptions(config),
      [HOOKS]: this.hooks.hooks,
    } as ConstructorParameters<typeof Pool<Job, number>>[1]);
  }

  unsettled(): number {
    return this.hooks.accepted - this.hooks.settled;
  }

  onAccepted(job: Job): void {
    this.jobs.accepted(job.id);
    // Accepted and unsettled stay within the running jobs (at most the limit, or more after a
    // resize down) plus queueSize.
    const running = this.pool.stats().running;
    const bound = Math.max(this.jobs.limit, running) + this.queueSize;
    const before = this.unsettled();
    this.v.check(
      before < bound,
      () => `job ${job.id} accepted with ${before} unsettled, bound ${bound}`,
    );
  }

  submit(spec: JobSpec): void {
    const id = this.recs.length;
    const rec: Rec = {
      id,
      spec,
      ac: spec.signal ? new AbortController() : undefined,
      submit: 'pending',
      gate: this.jobs.add(id, spec.key, spec.priority, spec.behaviour),
      results: [],
    };
    this.recs.push(rec);
    const opts = {
      priority: spec.priority,
      ...(rec.ac ? { signal: rec.ac.signal } : {}),
    };
    const onTask = (result: Promise<Result<Job, number>>): void => {
      rec.submit = 'accepted';
      void result.then((r) => {
        rec.results.push(r);
        this.log.push(`  result(${id}) ${r.ok ? 'ok' : r.error.name} attempts ${r.attempts}`);
      });
    };
    this.log.push(`  ${spec.via}(${id}) key ${spec.key} priority ${spec.priority}`);
    const job = { id, key: spec.key };
    if (spec.via === 'trySubmit') {
      try {
        const task = this.pool.trySubmit(job, opts);
        if (task) onTask(task.result);
        else rec.submit = 'refused';
      } catch {
        rec.submit = 'rejected';
      }
      return;
    }
    this.pool.submit(job, opts).then(
      (task) => onTask(task.result),
      () => {
        rec.submit = 'rejected';
      },
    );
  }

  async exec(c: Command): Promise<void> {
    this.log.push(`@${performance.now()} ${JSON.stringify(c)}`);
    switch (c.t) {
      case 'submit':
        this.submit(c.job);
        break;
      case 'settle':
        this.jobs.settle(c.pick, c.ok);
        break;
      case 'abortJob': {
        const open = this.recs.filter((r) => r.ac && !r.ac.signal.aborted);
        open[c.pick % Math.max(1, open.length)]?.ac?.abort('caller');
        break;
      }
      case 'resize':
        this.jobs.limit = c.n;
        this.pool.resize(c.n);
        break;
      case 'pause':
        this.pool.pause();
        break;
      case 'resume':
        this.pool.resume();
        break;
      case 'close':
        this.pool.close();
        break;
      case 'drain':
        if (c.timeout !== undefined) this.aborted = true; // its deadline may cancel
        void this.pool.drain({ timeout: c.timeout });
        break;
      case 'abort':
        this.aborted = true;
        void this.pool.abort('fuzz');
        break;
      case 'advance':
        vi.advanceTimersByTime(c.ms);
        break;
      case 'tick':
        await flush();
        this.checkStats();
        break;
    }
  }

  checkStats(): void {
    const s = this.pool.stats();
    const w = s.waiting;
    // Slots are held by running attempts only: never by a job waiting out its backoff.
    const live = this.jobs.recs.filter((r) => r?.attempts.some((a) => this.jobs.isLive(a))).length;
    this.v.check(
      s.running === live,
      () => `stats.running ${s.running}, ${live} attempts running (waiting retry ${w.retry})`,
    );
    this.v.check(
      w.retry + Math.max(w.rate, 0) + w.key <= s.queued + w.retry,
      () => `stats.waiting ${JSON.stringify(w)} beyond queued ${s.queued}`,
    );
    this.v.check(
      s.running + s.queued + w.retry === this.unsettled(),
      () =>
        `stats running ${s.running} + queued ${s.queued} + waiting retry ${w.retry} != ${this.unsettled()} unsettled`,
    );
  }

  async finish(): Promise<void> {
    this.log.push(`@${performance.now()} -- finish: resume, drain, release every worker`);
    this.pool.resume();
    const drained = this.pool.drain();
    for (let round = 0; round < 200; round++) {
      await flush();
      const s = this.pool.stats();
      const idle = s.running === 0 && s.queued === 0 && s.waiting.retry === 0;
      if (this.jobs.open().length === 0 && idle) break;
      this.jobs.releaseAll();
      vi.advanceTimersByTime(20);
    }
    await settlesWithin(drained, 'pool.drain()');
    for (let i = 0; i < 3; i++) await flush();
    // Every rate window passes: keys kept only for their window must go.
    vi.advanceTimersByTime(100);
    await flush();
    this.checkFinal();
  }

  checkFinal(): void {
    const v = this.v;
    let accepted = 0;
    let ok = 0;
    let canceled = 0;
    for (const rec of this.recs) {
      const id = rec.id;
      const runs = rec.gate.attempts.length;
      v.check(rec.submit !== 'pending', () => `submit(${id}) never settled`);
      if (rec.submit !== 'accepted') {
        v.check(runs === 0, () => `job ${id}: not accepted (${rec.submit}) but ran`);
        continue;
      }
      accepted++;
      this.hooks.check(v, id, runs, true);
      v.check(rec.results.length === 1, () => `job ${id}: ${rec.results.length} results`);
      const r = rec.results[0];
      if (!r) continue;
      if (r.ok) ok++;
      else if (r.error instanceof AbortError) canceled++;
      this.jobs.checkResult(id, r);
      if (rec.ac)
        v.check(
          abortListeners(rec.ac.signal) === 0,
          () => `job ${id}: ${abortListeners(rec.ac?.signal as AbortSignal)} listeners left`,
        );
    }
    this.jobs.starts.check(v, this.config);
    const s = this.pool.stats();
    const settled = s.succeeded + s.failed + s.timedOut + s.canceled + s.crashed;
    v.check(
      s.submitted === accepted && settled === accepted,
      () => `stats: ${s.submitted} submitted, ${settled} settled, ${accepted} accepted`,
    );
    v.check(s.succeeded === ok, () => `stats.succeeded ${s.succeeded}, observed ${ok}`);
    v.check(s.canceled === canceled, () => `stats.canceled ${s.canceled}, observed ${canceled}`);
    v.check(
      s.retried === this.hooks.retried,
      () => `stats.retried ${s.retried}, ${this.hooks.retried} retried hooks`,
    );
    v.check(
      s.running === 0 && s.queued === 0 && s.waiting.retry + s.waiting.rate + s.waiting.key === 0,
      () => `after drain: ${JSON.stringify(s)}`,
    );
    v.check(s.keys === 0, () => `after drain and every window: ${s.keys} keys kept`);
    v.check(vi.getTimerCount() === 0, () => `after drain: ${vi.getTimerCount()} timers left`);
  }
}

describe('fuzz: Pool gates', () => {
  const unhandled = new UnhandledCounter();
  beforeEach(() => {
    fakeClock();
    unhandled.install();
  });
  afterEach(() => {
    unhandled.uninstall();
    vi.useRealTimers();
  });

  it('with retry, rate, key and priority: limits hold at every start, every job settles once, windows hold, nothing is left', {
    timeout: testTimeout(60_000),
  }, async () => {
    await fuzzAssert(
      'Pool gates',
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 4 }),
        fc.option(fc.integer({ min: 5, max: 40 }), { nil: undefined }),
        gateConfig,
        fc.array(command, { minLength: 1, maxLength: 40 }),
        async (concurrency, queueSize, timeout, config, commands) => {
          const m = new GatePoolModel(concurrency, queueSize, timeout, config);
          m.log.push(
            `new Pool({ concurrency: ${concurrency}, queueSize: ${queueSize}, timeout: ${timeout}, ${JSON.stringify(config)} })`,
          );
          await runCommands(m, commands, unhandled);
        },
      ),
      fuzzParams(8),
    );
  });
});
