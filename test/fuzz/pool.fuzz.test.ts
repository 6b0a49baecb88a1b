/**
 * Model-based attack on Pool: random interleavings of submit / trySubmit / run / resize / pause /
 * close / drain(timeout) / abort / caller and pool signal aborts, with workers the model settles
 * (deferreds), sync throws of hostile values, workers that ignore their signal, and re-entrant
 * workers and result callbacks. Fake setTimeout only: job and drain deadlines are the model's.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, it, vi } from 'vitest';
import { AbortError, JobFailedError, Pool, type Result, TimeoutError } from '../../src/index.js';
import {
  abortListeners,
  type Deferred,
  deferred,
  flush,
  fuzzAssert,
  fuzzParams,
  isErrorValue,
  makeThrown,
  runCommands,
  settlesWithin,
  type ThrownKind,
  testTimeout,
  thrownKinds,
  UnhandledCounter,
  Violations,
} from './harness.js';

type Reentry =
  | 'none'
  | 'abort-own-signal'
  | 'submit'
  | 'trySubmit'
  | 'resize'
  | 'close'
  | 'drain'
  | 'abort'
  | 'pause'
  | 'resume';
type Behaviour =
  | { kind: 'sync-value' }
  | { kind: 'sync-throw'; thrown: ThrownKind }
  | { kind: 'deferred' } // the model resolves or rejects it with a `settle` command
  | { kind: 'until-signal' } // rejects with its signal's reason; `settle` ends it earlier
  | { kind: 'ignore-signal' }; // only `settle` ends it

interface JobSpec {
  behaviour: Behaviour;
  reenter: Reentry;
  onResult: Reentry;
  signal: boolean;
  via: 'submit' | 'trySubmit' | 'run';
}

type Command =
  | { t: 'submit'; job: JobSpec }
  | { t: 'settle'; pick: number; ok: boolean; thrown: ThrownKind }
  | { t: 'abortJob'; pick: number }
  | { t: 'resize'; n: number }
  | { t: 'pause' }
  | { t: 'resume' }
  | { t: 'close' }
  | { t: 'drain'; timeout: number | undefined }
  | { t: 'abort' }
  | { t: 'poolSignal' }
  | { t: 'advance'; ms: number }
  | { t: 'tick' };

const reentry: fc.Arbitrary<Reentry> = fc.constantFrom<Reentry>(
  'none',
  'none',
  'none',
  'none',
  'none',
  'none',
  'abort-own-signal',
  'submit',
  'trySubmit',
  'resize',
  'close',
  'drain',
  'abort',
  'pause',
  'resume',
);

const behaviour: fc.Arbitrary<Behaviour> = fc.oneof(
  fc.constant<Behaviour>({ kind: 'sync-value' }),
  thrownKinds().map((thrown): Behaviour => ({ kind: 'sync-throw', thrown })),
  fc.constant<Behaviour>({ kind: 'deferred' }),
  fc.constant<Behaviour>({ kind: 'deferred' }),
  fc.constant<Behaviour>({ kind: 'until-signal' }),
  fc.constant<Behaviour>({ kind: 'ignore-signal' }),
);

const jobSpec: fc.Arbitrary<JobSpec> = fc.record({
  behaviour,
  // Includes a worker aborting its own submit's signal (the submit still resolves: accepted).
  reenter: reentry,
  onResult: reentry,
  signal: fc.boolean(),
  via: fc.constantFrom<JobSpec['via']>('submit', 'submit', 'trySubmit', 'run'),
});

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 8, arbitrary: jobSpec.map((job): Command => ({ t: 'submit', job })) },
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('settle' as const),
      pick: fc.nat(7),
      ok: fc.boolean(),
      thrown: thrownKinds(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('abortJob' as const), pick: fc.nat(7) }) },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('resize' as const), n: fc.integer({ min: 1, max: 4 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom<Command>(
      { t: 'pause' },
      { t: 'resume' },
      { t: 'close' },
      { t: 'abort' },
      { t: 'poolSignal' },
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .option(fc.integer({ min: 1, max: 50 }), { nil: undefined })
      .map((timeout): Command => ({ t: 'drain', timeout })),
  },
  {
    weight: 2,
    arbitrary: fc.integer({ min: 1, max: 60 }).map((ms): Command => ({ t: 'advance', ms })),
  },
  { weight: 3, arbitrary: fc.constant<Command>({ t: 'tick' }) },
);

interface Job {
  id: number;
}

/** What the model knows about one job. */
interface Rec {
  id: number;
  spec: JobSpec;
  ac: AbortController | undefined;
  submit: 'pending' | 'accepted' | 'rejected' | 'refused';
  submitError: unknown;
  calls: number;
  live: boolean;
  ctxSignal: AbortSignal | undefined;
  control: Deferred<number> | undefined;
  thrown: unknown; // what the worker threw / rejected with, if it did
  produced: number | undefined; // what it returned, if it did
  results: Result<Job, number>[];
  runOutcome: { ok: boolean; value?: unknown; error?: unknown } | undefined;
}

class PoolModel {
  readonly v = new Violations();
  readonly log: string[] = [];
  readonly recs: Rec[] = [];
  readonly poolSignal = new AbortController();
  pool: Pool<Job, number>;
  limit: number;
  queueSize: number;
  timeout: number | undefined;
  aborted = false; // abort(), pool signal or a drain deadline canceled things
  drains: Promise<unknown>[] = [];
  depth = 0;
  resizes = 0;

  constructor(concurrency: number, queueSize: number, timeout: number | undefined) {
    this.limit = concurrency;
    this.queueSize = queueSize;
    this.timeout = timeout;
    this.pool = new Pool<Job, number>((job, ctx) => this.worker(job, ctx), {
      concurrency,
      queueSize,
      timeout,
      signal: this.poolSignal.signal,
    });
  }

  liveCount(strict: boolean): number {
    return this.recs.filter(
      (r) => r.live && !r.ctxSignal?.aborted && (strict || r.results.length === 0),
    ).length;
  }

  worker(job: Job, ctx: { signal: AbortSignal }): number | Promise<number> {
    const rec = this.recs[job.id] as Rec;
    rec.calls++;
    this.log.push(`  worker(${job.id}) called`);
    this.v.check(rec.calls === 1, () => `job ${job.id}: worker called ${rec.calls} times`);
    rec.ctxSignal = ctx.signal;
    // A canceled job's signal aborts before its slot is reused: never a live worker too many.
    const before = this.liveCount(true);
    const limit = this.limit;
    this.v.check(
      before < limit,
      () => `job ${job.id} started with ${before} live workers, limit ${limit}`,
    );
    this.reenter(rec, rec.spec.reenter, 'worker');
    const b = rec.spec.behaviour;
    if (b.kind === 'sync-value') {
      rec.produced = job.id * 10;
      return job.id * 10;
    }
    if (b.kind === 'sync-throw') {
      rec.thrown = makeThrown(b.thrown);
      throw rec.thrown;
    }
    rec.live = true;
    rec.control = deferred<number>();
    if (b.kind === 'until-signal') {
      const onAbort = (): void => {
        if (rec.control?.settled) return;
        rec.thrown = ctx.signal.reason;
        rec.live = false;
        rec.control?.reject(ctx.signal.reason);
      };
      if (ctx.signal.aborted) onAbort();
      else ctx.signal.addEventListener('abort', onAbort, { once: true });
    }
    return rec.control.promise;
  }

  reenter(rec: Rec, what: Reentry, where: string): void {
    if (what === 'none' || this.depth > 2) return;
    this.depth++;
    this.log.push(`  ${where}(${rec.id}) re-enters: ${what}`);
    try {
      switch (what) {
        case 'abort-own-signal':
          rec.ac?.abort('own');
          break;
        case 'submit':
        case 'trySubmit':
          this.submit({
            behaviour: { kind: 'sync-value' },
            reenter: 'none',
            onResult: 'none',
            signal: false,
            via: what,
          });
          break;
        case 'resize':
          this.resize(Math.max(1, this.limit === 1 ? 2 : this.limit - 1));
          break;
        case 'close':
          this.pool.close();
          break;
        case 'drain':
          this.drain(undefined);
          break;
        case 'abort':
          this.abort();
          break;
        case 'pause':
          this.pool.pause();
          break;
        case 'resume':
          this.pool.resume();
          break;
      }
    } finally {
      this.depth--;
    }
  }

  resize(n: number): void {
    this.resizes++;
    this.limit = n;
    this.pool.resize(n);
  }

  abort(): void {
    this.aborted = true;
    this.drains.push(this.pool.abort('fuzz'));
  }

  drain(timeout: number | undefined): void {
    if (timeout !== undefined) this.aborted = true; // a deadline may cancel
    this.drains.push(this.pool.drain({ timeout }));
  }

  submit(spec: JobSpec): void {
    const id = this.recs.length;
    const rec: Rec = {
      id,
      spec,
      ac: spec.signal ? new AbortController() : undefined,
      submit: 'pending',
      submitError: undefined,
      calls: 0,
      live: false,
      ctxSignal: undefined,
      control: undefined,
      thrown: undefined,
      produced: undefined,
      results: [],
      runOutcome: undefined,
    };
    this.recs.push(rec);
    const opts = rec.ac ? { signal: rec.ac.signal } : undefined;
    const onTask = (result: Promise<Result<Job, number>>): void => {
      rec.submit = 'accepted';
      void result.then((r) => {
        rec.results.push(r);
        rec.live = false;
        this.log.push(
          `  result(${id}) ${r.ok ? `ok ${r.value}` : `error ${String((r.error as Error)?.name)}`}`,
        );
        this.reenter(rec, spec.onResult, 'onResult');
      });
    };
    this.log.push(`  ${spec.via}(${id})`);
    if (spec.via === 'trySubmit') {
      try {
        const task = this.pool.trySubmit({ id }, opts);
        if (task) onTask(task.result);
        else rec.submit = 'refused';
      } catch (error) {
        rec.submit = 'rejected';
        rec.submitError = error;
      }
      return;
    }
    if (spec.via === 'run') {
      // run() hides the task: learn acceptance from the worker call or the settled outcome.
      this.pool.run({ id }, opts).then(
        (value) => {
          rec.runOutcome = { ok: true, value };
        },
        (error: unknown) => {
          rec.runOutcome = { ok: false, error };
        },
      );
      return;
    }
    let promise: Promise<unknown>;
    try {
      promise = this.pool.submit({ id }, opts).then((task) => onTask(task.result));
    } catch (error) {
      rec.submit = 'rejected';
      rec.submitError = error;
      return;
    }
    promise.catch((error: unknown) => {
      rec.submit = 'rejected';
      rec.submitError = error;
    });
  }

  /** Controllable jobs still running (the model may settle them). */
  running(): Rec[] {
    return this.recs.filter((r) => r.control && !r.control.settled);
  }

  async exec(c: Command): Promise<void> {
    this.log.push(JSON.stringify(c));
    switch (c.t) {
      case 'submit':
        this.submit(c.job);
        break;
      case 'settle': {
        const open = this.running();
        const rec = open[c.pick % Math.max(1, open.length)];
        if (!rec?.control) break;
        rec.live = false;
        if (c.ok) {
          rec.produced = rec.id * 10;
          rec.control.resolve(rec.id * 10);
        } else {
          rec.thrown = makeThrown(c.thrown);
          rec.control.reject(rec.thrown);
        }
        break;
      }
      case 'abortJob': {
        const open = this.recs.filter((r) => r.ac && !r.ac.signal.aborted);
        open[c.pick % Math.max(1, open.length)]?.ac?.abort('caller');
        break;
      }
      case 'resize':
        this.resize(c.n);
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
        this.drain(c.timeout);
        break;
      case 'abort':
        this.abort();
        break;
      case 'poolSignal':
        this.aborted = true;
        this.poolSignal.abort('pool signal');
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

  /** At a quiescent point: stats agree with what the model observed. */
  checkStats(): void {
    const s = this.pool.stats();
    const accepted = this.recs.filter(
      (r) => r.submit === 'accepted' || (r.spec.via === 'run' && r.calls > 0),
    );
    const started = this.recs.filter(
      (r) => r.calls > 0 && r.results.length === 0 && r.spec.via !== 'run',
    );
    this.v.check(
      s.running === started.length || this.recs.some((r) => r.spec.via === 'run'),
      () =>
        `stats.running ${s.running} but ${started.length} started and unsettled (${started.map((r) => r.id)})`,
    );
    this.v.check(
      s.running <= Math.max(this.limit, s.running) && s.queued <= this.queueSize,
      () => `stats running ${s.running} / queued ${s.queued} beyond queueSize ${this.queueSize}`,
    );
    this.v.check(
      s.submitted >= accepted.length,
      () => `stats.submitted ${s.submitted} < ${accepted.length} accepted`,
    );
  }

  async finish(): Promise<void> {
    this.log.push('-- finish: resume, drain, release every worker');
    this.pool.resume();
    const drained = this.pool.drain();
    // Queued jobs start only as running ones end: release round after round until idle.
    for (let round = 0; round < 50; round++) {
      await flush();
      // A re-entrant pause() may come after ours: a paused pool's drain waits for resume().
      this.pool.resume();
      const open = this.running();
      const s = this.pool.stats();
      if (open.length === 0 && s.running === 0 && s.queued === 0) break;
      for (const rec of open) {
        rec.live = false;
        rec.produced = rec.id * 10;
        rec.control?.resolve(rec.id * 10);
      }
    }
    this.depth = 99; // no more re-entry: a result callback could pause again
    this.pool.resume();
    const report = await settlesWithin(drained, 'pool.drain()');
    await settlesWithin(Promise.allSettled(this.drains), 'earlier drain()/abort() calls');
    for (let i = 0; i < 5; i++) await flush();
    this.checkFinal(report);
  }

  checkFinal(report: { completed: number; canceled: number; canceledJobs: Job[] }): void {
    const v = this.v;
    const counts = { ok: 0, timedOut: 0, canceled: 0, other: 0 };
    let accepted = 0;
    for (const rec of this.recs) {
      const id = rec.id;
      if (rec.spec.via === 'run') {
        if (rec.calls > 0)
          v.check(rec.runOutcome !== undefined, () => `run(${id}) ran but never settled`);
        if (rec.runOutcome?.ok)
          v.check(
            rec.runOutcome.value === id * 10 && rec.produced === id * 10,
            () => `run(${id}) resolved ${String(rec.runOutcome?.value)}`,
          );
        if (rec.runOutcome && !rec.runOutcome.ok)
          v.check(
            rec.runOutcome.error instanceof Error,
            () => `run(${id}) rejected with a non-Error`,
          );
        continue;
      }
      if (rec.submit === 'pending') v.check(false, () => `submit(${id}) never settled`);
      if (rec.submit === 'rejected' || rec.submit === 'refused') {
        v.check(
          rec.calls === 0,
          () => `job ${id}: submit ${rec.submit} (${String(rec.submitError)}) but its worker ran`,
        );
        v.check(rec.results.length === 0, () => `job ${id}: not accepted but has a result`);
        continue;
      }
      accepted++;
      v.check(rec.results.length === 1, () => `job ${id}: accepted, ${rec.results.length} results`);
      const r = rec.results[0];
      if (!r) continue;
      v.check(r.job.id === id, () => `job ${id}: result carries job ${r.job.id}`);
      if (r.ok) {
        counts.ok++;
        v.check(
          rec.calls === 1 && r.value === id * 10 && rec.produced === id * 10,
          () => `job ${id}: ok ${r.value} but the worker produced ${rec.produced}`,
        );
        continue;
      }
      v.check(
        r.error instanceof Error,
        () => `job ${id}: error is not an Error: ${typeof r.error}`,
      );
      if (r.error instanceof TimeoutError) {
        counts.timedOut++;
        v.check(
          this.timeout !== undefined && rec.calls === 1,
          () => `job ${id}: TimeoutError without a timeout/start`,
        );
      } else if (r.error instanceof AbortError) {
        counts.canceled++;
        v.check(
          this.aborted || rec.ac?.signal.aborted === true,
          () => `job ${id}: AbortError but nothing aborted it`,
        );
      } else {
        counts.other++;
        v.check(rec.calls === 1, () => `job ${id}: failed without running: ${String(r.error)}`);
        const thrown = rec.thrown;
        if (isErrorValue(thrown))
          v.check(r.error === thrown, () => `job ${id}: error is not the thrown Error`);
        else {
          v.check(
            r.error instanceof JobFailedError && Object.is(r.error.cause, thrown),
            () => `job ${id}: thrown non-Error not kept as cause`,
          );
        }
      }
      if (!r.ok && rec.calls === 0)
        v.check(
          r.error instanceof AbortError,
          () => `job ${id}: never started, settled with ${r.error.name}`,
        );
      if (rec.ac)
        v.check(
          abortListeners(rec.ac.signal) === 0,
          () =>
            `job ${id}: ${abortListeners(rec.ac?.signal as AbortSignal)} listeners left on its signal`,
        );
    }
    v.check(
      abortListeners(this.poolSignal.signal) === 0,
      () => `pool signal keeps ${abortListeners(this.poolSignal.signal)} listeners after drain`,
    );
    const s = this.pool.stats();
    const runs = this.recs.filter(
      (r) =>
        r.spec.via === 'run' &&
        (r.calls > 0 ||
          r.runOutcome?.ok === true ||
          (r.runOutcome &&
            !(r.runOutcome.error as { code?: string })?.code?.startsWith('ERR_POOL'))),
    ).length;
    v.check(
      s.running === 0 && s.queued === 0,
      () => `after drain: running ${s.running}, queued ${s.queued}`,
    );
    const settled = s.succeeded + s.failed + s.timedOut + s.canceled + s.crashed;
    v.check(settled === s.submitted, () => `stats: ${settled} settled of ${s.submitted} submitted`);
    if (runs === 0 && !this.recs.some((r) => r.spec.via === 'run')) {
      v.check(
        s.submitted === accepted,
        () => `stats.submitted ${s.submitted}, accepted ${accepted}`,
      );
      v.check(
        s.succeeded === counts.ok,
        () => `stats.succeeded ${s.succeeded}, observed ${counts.ok}`,
      );
      v.check(
        s.timedOut === counts.timedOut,
        () => `stats.timedOut ${s.timedOut}, observed ${counts.timedOut}`,
      );
      v.check(
        s.canceled === counts.canceled,
        () => `stats.canceled ${s.canceled}, observed ${counts.canceled}`,
      );
      v.check(
        s.failed + s.crashed === counts.other,
        () => `stats.failed ${s.failed}, observed ${counts.other}`,
      );
    }
    v.check(
      new Set(report.canceledJobs).size === report.canceledJobs.length,
      () => 'drain report lists a job twice',
    );
  }
}

describe('fuzz: Pool', () => {
  const unhandled = new UnhandledCounter();
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    unhandled.install();
  });
  afterEach(() => {
    unhandled.uninstall();
    vi.useRealTimers();
  });

  it('every accepted job settles once, limits hold at every start, stats add up, listeners go', {
    timeout: testTimeout(40_000),
  }, async () => {
    await fuzzAssert(
      'Pool',
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        fc.option(fc.integer({ min: 5, max: 40 }), { nil: undefined }),
        fc.array(command, { minLength: 1, maxLength: 30 }),
        async (concurrency, queueSize, timeout, commands) => {
          const m = new PoolModel(concurrency, queueSize, timeout);
          m.log.push(
            `new Pool({ concurrency: ${concurrency}, queueSize: ${queueSize}, timeout: ${timeout} })`,
          );
          await runCommands(m, commands, unhandled);
        },
      ),
      fuzzParams(12),
    );
  });
});
