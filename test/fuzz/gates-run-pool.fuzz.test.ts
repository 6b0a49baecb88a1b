/**
 * Model-based attack on runPool's start gates: random retry / rate / key+perKey / priority
 * configurations over sync, async-generator and model-fed sources, jobs that fail some attempts
 * then succeed, fail, hang until canceled or wait for the model, a consumer that pulls at random
 * points, breaks out (return()) or aborts, time on a fake clock (performance.now included).
 * Checked at every start: the limits, attempts and priority order (gate-model.ts); at every
 * quiescent point: the pull-ahead bound; at the end: one result per pulled job (unless the loop
 * broke), one settled hook per accepted job, the rate windows, no timers, no listeners.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, it, vi } from 'vitest';
import { type Result, runPool } from '../../src/index.js';
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
  rateArb,
} from './gate-model.js';
import { GateWorker } from './gate-worker.js';
import {
  abortListeners,
  type Deferred,
  deferred,
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
}

type SourceKind = 'sync' | 'async-generator' | 'fed';

type Command =
  | { t: 'pull' }
  | { t: 'feed' }
  | { t: 'settle'; pick: number; ok: boolean }
  | { t: 'abort' }
  | { t: 'return' }
  | { t: 'advance'; ms: number }
  | { t: 'tick' };

const jobSpec: fc.Arbitrary<JobSpec> = fc.record({
  behaviour: jobBehaviour,
  key: fc.constantFrom(...KEYS),
  priority: fc.constantFrom(0, 0, 1, 2, -1),
});

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Command>({ t: 'pull' }) },
  { weight: 3, arbitrary: fc.constant<Command>({ t: 'feed' }) },
  {
    weight: 5,
    arbitrary: fc.record({ t: fc.constant('settle' as const), pick: fc.nat(5), ok: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.constantFrom<Command>({ t: 'abort' }, { t: 'return' }) },
  {
    weight: 4,
    arbitrary: fc.integer({ min: 1, max: 45 }).map((ms): Command => ({ t: 'advance', ms })),
  },
  { weight: 3, arbitrary: fc.constant<Command>({ t: 'tick' }) },
);

interface Job {
  id: number;
  key: Key;
}

/** A source of `jobs`: an array, an async generator, or one whose pulls the model answers. */
class Source {
  produced = 0;
  readonly pending: Deferred<IteratorResult<Job>>[] = [];
  returned = false;

  constructor(
    readonly kind: SourceKind,
    readonly jobs: Job[],
    /** Told of each job as the source yields it. */
    readonly onYield: (job: Job) => void = () => {},
  ) {}

  iterable(): Iterable<Job> | AsyncIterable<Job> {
    const jobs = this.jobs;
    const count = (job: Job) => {
      this.produced++;
      this.onYield(job);
    };
    if (this.kind === 'sync') {
      return {
        *[Symbol.iterator]() {
          for (const job of jobs) {
            count(job);
            yield job;
          }
        },
      };
    }
    if (this.kind === 'async-generator') {
      return {
        async *[Symbol.asyncIterator]() {
          for (const job of jobs) {
            await null;
            count(job);
            yield job;
          }
        },
      };
    }
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          const d = deferred<IteratorResult<Job>>();
          if (this.returned) d.resolve({ done: true, value: undefined });
          else this.pending.push(d);
          return d.promise;
        },
        return: () => {
          this.returned = true;
          for (const d of this.pending.splice(0)) d.resolve({ done: true, value: undefined });
          return Promise.resolve({ done: true as const, value: undefined });
        },
      }),
    };
  }

  /** Answers the oldest pending pull of a fed source: the next job, or done at the end. */
  feed(): void {
    const d = this.pending.shift();
    if (!d) return;
    const job = this.jobs[this.produced];
    if (job === undefined) d.resolve({ done: true, value: undefined });
    else {
      this.produced++;
      this.onYield(job);
      d.resolve({ done: false, value: job });
    }
  }
}

class GateRunPoolModel {
  readonly v = new Violations();
  readonly log: string[] = [];
  readonly jobs: GateWorker;
  readonly hooks: HookLog<Job>;
  readonly source: Source;
  readonly ac = new AbortController();
  readonly it: AsyncIterableIterator<Result<Job, number>>;
  readonly results: Result<Job, number>[] = [];
  readonly nexts: { settled: boolean; done: boolean; result?: number }[] = [];
  returned = false;
  readonly returns: Promise<unknown>[] = [];
  ended = false;

  constructor(
    specs: JobSpec[],
    kind: SourceKind,
    readonly opts: {
      concurrency: number;
      buffer: number;
      ordered: boolean;
      timeout: number | undefined;
      priority: boolean;
      /**
       * No hooks of the pool's own (they would take runPool to the full engine): a lone rate
       * runs on the lean engine. A job counts as accepted when the source yields it (runPool
       * accepts a job as it pulls it), and the hook sequences are not checked.
       */
      lean?: boolean;
    },
    readonly config: GateConfig,
  ) {
    this.jobs = new GateWorker(this.v, this.log, config, opts.concurrency);
    this.jobs.gone = () => this.ac.signal.aborted || this.returned;
    for (const [id, s] of specs.entries()) {
      this.jobs.add(id, s.key, opts.priority ? s.priority : 0, s.behaviour);
    }
    this.hooks = new HookLog<Job>(
      (job) => this.jobs.accepted(job.id),
      (job) => {
        const rec = this.jobs.recs[job.id];
        if (rec) rec.settled = true;
      },
    );
    this.source = new Source(
      kind,
      specs.map((s, id) => ({ id, key: s.key })),
      opts.lean ? (job) => this.jobs.accepted(job.id) : undefined,
    );
    this.it = runPool(this.source.iterable(), (job, ctx) => this.jobs.run(job.id, ctx.signal), {
      concurrency: opts.concurrency,
      buffer: opts.buffer,
      ordered: opts.ordered,
      timeout: opts.timeout,
      signal: this.ac.signal,
      ...gateOptions(config),
      ...(opts.priority ? { priority: (job: Job) => specs[job.id]?.priority ?? 0 } : {}),
      ...(opts.lean ? {} : { [HOOKS]: this.hooks.hooks }),
    } as Parameters<typeof runPool<Job, number>>[2]);
  }

  pull(): void {
    const entry: (typeof this.nexts)[number] = { settled: false, done: false };
    this.nexts.push(entry);
    this.it.next().then(
      (r) => {
        entry.settled = true;
        if (r.done) {
          entry.done = true;
          this.ended = true;
          return;
        }
        entry.result = r.value.index;
        this.results.push(r.value);
        this.log.push(`  result ${r.value.index} ${r.value.ok ? 'ok' : r.value.error.name}`);
      },
      (e: unknown) => {
        entry.settled = true;
        this.ended = true;
        this.v.check(false, () => `next() rejected: ${String(e)}`);
      },
    );
  }

  return(): void {
    this.returned = true;
    this.returns.push(this.it.return?.() ?? Promise.resolve());
  }

  async exec(c: Command): Promise<void> {
    this.log.push(`@${performance.now()} ${JSON.stringify(c)}`);
    switch (c.t) {
      case 'pull':
        this.pull();
        break;
      case 'feed':
        this.source.feed();
        break;
      case 'settle':
        this.jobs.settle(c.pick, c.ok);
        break;
      case 'abort':
        this.ac.abort('fuzz');
        break;
      case 'return':
        this.return();
        break;
      case 'advance':
        vi.advanceTimersByTime(c.ms);
        break;
      case 'tick':
        await flush();
        this.checkPullAhead();
        break;
    }
  }

  checkPullAhead(): void {
    const { concurrency, buffer } = this.opts;
    const taken = this.results.length;
    const accepted = this.opts.lean ? this.source.produced : this.hooks.accepted;
    this.v.check(
      accepted <= taken + concurrency + buffer,
      () => `accepted ${accepted} jobs with ${taken} taken (${concurrency} + buffer ${buffer})`,
    );
  }

  async finish(): Promise<void> {
    this.log.push(`@${performance.now()} -- finish: feed, release, pull until the end`);
    const busy = () => (!this.ended && !this.returned) || this.nexts.some((n) => !n.settled);
    for (let round = 0; round < 300 && busy(); round++) {
      while (this.source.pending.length > 0) this.source.feed();
      this.jobs.releaseAll();
      if (this.nexts.every((n) => n.settled) && !this.returned && !this.ended) this.pull();
      await flush();
      vi.advanceTimersByTime(10);
    }
    // After a break, jobs still running or waiting settle as the engine lets them go.
    for (let round = 0; round < 50; round++) {
      this.jobs.releaseAll();
      await flush();
      vi.advanceTimersByTime(20);
    }
    await settlesWithin(Promise.allSettled(this.returns), 'return()');
    await settlesWithin(this.it.next(), 'next() after the end');
    for (let i = 0; i < 3; i++) await flush();
    this.checkFinal();
  }

  checkFinal(): void {
    const v = this.v;
    v.check(this.ended || this.returned, () => 'hang: the iteration never ended');
    v.check(
      this.nexts.every((n) => n.settled),
      () => 'a next() call never settled',
    );
    const seen = new Map<number, number>();
    for (const r of this.results) {
      seen.set(r.index, (seen.get(r.index) ?? 0) + 1);
      v.check(r.job.id === r.index, () => `result ${r.index} carries job ${r.job.id}`);
      this.jobs.checkResult(r.index, r);
    }
    for (const [index, n] of seen) v.check(n === 1, () => `job ${index} yielded ${n} results`);
    for (const rec of this.jobs.recs) {
      if (rec.seq < 0) {
        v.check(rec.attempts.length === 0, () => `job ${rec.id} ran without being accepted`);
        continue;
      }
      if (!this.opts.lean) this.hooks.check(v, rec.id, rec.attempts.length, true);
      if (!this.returned)
        v.check(seen.has(rec.id), () => `job ${rec.id} accepted but never yielded a result`);
    }
    if (this.opts.ordered) {
      const order = this.nexts.flatMap((n) => (n.result === undefined ? [] : [n.result]));
      v.check(
        order.every((x, i) => i === 0 || x > (order[i - 1] as number)),
        () => `ordered results out of order: ${order}`,
      );
    }
    this.jobs.starts.check(v, this.config);
    v.check(
      abortListeners(this.ac.signal) === 0,
      () => `${abortListeners(this.ac.signal)} listeners left on the signal`,
    );
    v.check(vi.getTimerCount() === 0, () => `${vi.getTimerCount()} timers left at the end`);
  }
}

describe('fuzz: runPool gates', () => {
  const unhandled = new UnhandledCounter();
  beforeEach(() => {
    fakeClock();
    unhandled.install();
  });
  afterEach(() => {
    unhandled.uninstall();
    vi.useRealTimers();
  });
  /** One generated case: the model drives runPool through the commands, checking as it goes. */
  const runModel = async (
    specs: JobSpec[],
    kind: SourceKind,
    opts: GateRunPoolModel['opts'],
    config: ConstructorParameters<typeof GateRunPoolModel>[3],
    commands: Command[],
  ): Promise<void> => {
    const m = new GateRunPoolModel(specs, kind, opts, config);
    m.log.push(
      `runPool(${kind} source of ${specs.length}, ${JSON.stringify(opts)}, ${JSON.stringify(config)})`,
    );
    await runCommands(m, commands, unhandled);
  };

  it('with retry, rate, key and priority: limits hold at every start, every pulled job yields once, windows hold, nothing is left', {
    timeout: testTimeout(60_000),
  }, async () => {
    await fuzzAssert(
      'runPool gates',
      fc.asyncProperty(
        fc.array(jobSpec, { minLength: 0, maxLength: 10 }),
        fc.constantFrom<SourceKind>('sync', 'async-generator', 'fed'),
        fc.record({
          concurrency: fc.integer({ min: 1, max: 3 }),
          buffer: fc.integer({ min: 0, max: 2 }),
          ordered: fc.boolean(),
          timeout: fc.option(fc.integer({ min: 5, max: 40 }), { nil: undefined }),
          priority: fc.boolean(),
        }),
        gateConfig,
        fc.array(command, { minLength: 1, maxLength: 40 }),
        runModel,
      ),
      fuzzParams(8),
    );
  });
  it('with a rate alone (the rate-only path): the window holds at every start, every pulled job yields once, nothing is left', {
    timeout: testTimeout(60_000),
  }, async () => {
    await fuzzAssert(
      'runPool rate only',
      fc.asyncProperty(
        fc.array(jobSpec, { minLength: 0, maxLength: 10 }),
        fc.constantFrom<SourceKind>('sync', 'async-generator', 'fed'),
        fc.record({
          concurrency: fc.integer({ min: 1, max: 3 }),
          buffer: fc.integer({ min: 0, max: 2 }),
          ordered: fc.boolean(),
          timeout: fc.option(fc.integer({ min: 5, max: 40 }), { nil: undefined }),
          priority: fc.constant(false),
        }),
        fc.record({ retry: fc.constant(undefined), rate: rateArb, key: fc.constant(undefined) }),
        fc.array(command, { minLength: 1, maxLength: 40 }),
        runModel,
      ),
      fuzzParams(8),
    );
  });
  it('with a rate alone on the lean engine (no timeout, no hooks): the window holds at every start, every pulled job yields once, nothing is left', {
    timeout: testTimeout(60_000),
  }, async () => {
    await fuzzAssert(
      'runPool rate only, lean engine',
      fc.asyncProperty(
        fc.array(jobSpec, { minLength: 0, maxLength: 10 }),
        fc.constantFrom<SourceKind>('sync', 'async-generator', 'fed'),
        fc.record({
          concurrency: fc.integer({ min: 1, max: 3 }),
          buffer: fc.integer({ min: 0, max: 2 }),
          ordered: fc.boolean(),
          timeout: fc.constant(undefined),
          priority: fc.constant(false),
          lean: fc.constant(true),
        }),
        fc.record({ retry: fc.constant(undefined), rate: rateArb, key: fc.constant(undefined) }),
        fc.array(command, { minLength: 1, maxLength: 40 }),
        runModel,
      ),
      fuzzParams(8),
    );
  });
});
