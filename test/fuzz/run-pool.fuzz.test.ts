/**
 * Model-based attack on runPool: hand-written sources (sync throws, plain results, pulls the
 * model feeds or never settles, return() absent/throwing/hanging), workers the model settles,
 * hostile thrown values, a consumer that pulls several results at once, re-entrant aborts and
 * returns from workers and from the consumer's callbacks. Fake setTimeout for job timeouts.
 *
 * Both of runPool's engines, half the runs each: the lean engine (no timeout, gate or hooks:
 * scheduler/lean-engine.ts) and the full one (internal/pull-engine.ts), forced by a timeout or by
 * hooks that want every job. The model checks it got the engine it asked for.
 *
 * The source may re-enter too: every other next() of it first aborts, returns or pulls on the
 * results iterator (`sourceReenter`) — so no worker may start after an abort or a return().
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, it, vi } from 'vitest';
import { type Result, runPool } from '../../src/index.js';
import { PullEngine } from '../../src/internal/pull-engine.js';
import { HOOKS } from '../../src/scheduler/hooks.js';
import {
  abortListeners,
  flush,
  fuzzAssert,
  fuzzParams,
  runCommands,
  settlesWithin,
  type ThrownKind,
  testTimeout,
  thrownKinds,
  UnhandledCounter,
  Violations,
} from './harness.js';
import { HostileSource, type Job, type SourceSpec, sourceSpec } from './hostile-source.js';
import { type Reentry, type Work, Workers, work } from './workers.js';

type Command =
  | { t: 'pull' }
  | { t: 'feed'; how: 'value' | 'done' | 'reject' }
  | { t: 'settle'; pick: number; ok: boolean; thrown: ThrownKind }
  | { t: 'abort' }
  | { t: 'return' }
  | { t: 'advance'; ms: number }
  | { t: 'tick' };

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Command>({ t: 'pull' }) },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom<'value' | 'done' | 'reject'>('value', 'value', 'done', 'reject')
      .map((how): Command => ({ t: 'feed', how })),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('settle' as const),
      pick: fc.nat(5),
      ok: fc.boolean(),
      thrown: thrownKinds(),
    }),
  },
  { weight: 1, arbitrary: fc.constantFrom<Command>({ t: 'abort' }, { t: 'return' }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 30 }).map((ms): Command => ({ t: 'advance', ms })),
  },
  { weight: 3, arbitrary: fc.constant<Command>({ t: 'tick' }) },
);

class RunPoolModel {
  readonly v = new Violations();
  readonly log: string[] = [];
  readonly source: HostileSource;
  readonly workers: Workers;
  readonly ac = new AbortController();
  readonly it: AsyncIterableIterator<Result<Job, number>>;
  readonly results: Result<Job, number>[] = [];
  readonly nexts: { settled: boolean; done: boolean; error?: { e: unknown }; result?: number }[] =
    [];
  returned = false;
  returnPromises: Promise<unknown>[] = [];
  ended: { error?: { e: unknown } } | undefined;
  depth = 0;

  constructor(
    spec: SourceSpec,
    works: Work[],
    readonly opts: {
      concurrency: number;
      buffer: number;
      ordered: boolean;
      timeout: number | undefined;
      engine: 'lean' | 'full';
      sourceReenter: Reentry;
    },
  ) {
    this.source = new HostileSource(spec);
    this.workers = new Workers(works, opts.concurrency, this.v, this.log);
    this.workers.reenter = (what) => this.reenter(what);
    this.source.stopped = () => this.ac.signal.aborted || this.returned;
    this.source.onNext = () => {
      if (this.source.nextCalls % 2 === 0) this.reenter(opts.sourceReenter);
    };
    const { concurrency, buffer, ordered, timeout, engine } = opts;
    const worker = (job: Job, ctx: { signal: AbortSignal }): number | Promise<number> => {
      // Nothing starts once stopped: a value pulled after an abort settles without running.
      this.v.check(
        !this.ac.signal.aborted && !this.returned,
        () => `job ${job.id}: worker called after ${this.returned ? 'return()' : 'the abort'}`,
      );
      return this.workers.run(job, ctx.signal);
    };
    this.it = runPool(this.source.iterable(), worker, {
      concurrency,
      buffer,
      ordered,
      signal: this.ac.signal,
      // The full engine: with its timeout, or (none) with hooks that want every job.
      ...(engine === 'full' ? (timeout === undefined ? { [HOOKS]: {} } : { timeout }) : {}),
    });
    this.v.check(
      this.it instanceof PullEngine === (engine === 'full'),
      () => `asked for the ${engine} engine, got ${this.it.constructor.name}`,
    );
  }

  reenter(what: Reentry): void {
    if (what === 'none' || this.depth > 2) return;
    this.depth++;
    try {
      if (what === 'abort') this.abort();
      else if (what === 'return') this.return();
      else this.pull();
    } finally {
      this.depth--;
    }
  }

  abort(): void {
    this.ac.abort('fuzz');
  }

  return(): void {
    this.returned = true;
    this.returnPromises.push(this.it.return?.() ?? Promise.resolve());
  }

  pull(): void {
    const entry: (typeof this.nexts)[number] = { settled: false, done: false };
    this.nexts.push(entry);
    this.it.next().then(
      (r) => {
        entry.settled = true;
        if (r.done) {
          entry.done = true;
          this.ended ??= {};
          return;
        }
        entry.result = r.value.index;
        this.results.push(r.value);
        this.log.push(`  result ${r.value.index} ${r.value.ok ? 'ok' : r.value.error?.name}`);
        const w = this.workers.works[r.value.index % this.workers.works.length];
        // The consumer re-enters from its callback with the same choice as the job's worker.
        if (w && w.reenter !== 'none' && r.value.index % 2 === 1) this.reenter(w.reenter);
      },
      (e: unknown) => {
        entry.settled = true;
        entry.error = { e };
        this.ended ??= { error: { e } };
        this.log.push(`  next() rejected: ${String(e)}`);
      },
    );
  }

  async exec(c: Command): Promise<void> {
    this.log.push(JSON.stringify(c));
    switch (c.t) {
      case 'pull':
        this.pull();
        break;
      case 'feed':
        this.source.feed(c.how);
        break;
      case 'settle':
        this.workers.settle(c.pick, c.ok, c.thrown);
        break;
      case 'abort':
        this.abort();
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
    const produced = this.source.produced.length;
    this.v.check(
      produced <= taken + concurrency + buffer,
      () =>
        `pulled ${produced} jobs with ${taken} taken (concurrency ${concurrency} + buffer ${buffer})`,
    );
  }

  async finish(): Promise<void> {
    this.log.push('-- finish: feed and release everything, pull until the end');
    // A pull that never settles can only be ended by a stop.
    if (this.source.spec.steps.includes('never') && !this.returned) this.abort();
    const busy = (): boolean =>
      (this.ended === undefined && !this.returned) || this.nexts.some((n) => !n.settled);
    for (let round = 0; round < 100 && busy(); round++) {
      while (this.source.pending.length > 0) this.source.feed(round < 2 ? 'value' : 'done');
      this.workers.releaseAll();
      if (this.nexts.every((n) => n.settled) && !this.returned) this.pull();
      await flush();
      if (round === 60) this.abort(); // a source that keeps pulling 'never' steps
    }
    this.workers.releaseAll();
    const held = this.source.endHeldByDesign();
    if (!this.returned && !held) {
      this.v.check(this.ended !== undefined, () => 'hang: the iteration never ended');
    }
    if (!held) {
      const last = this.it.next();
      await settlesWithin(
        last.catch(() => undefined),
        'next() after the end',
      );
    }
    if (this.source.spec.returnKind !== 'never') {
      await settlesWithin(Promise.allSettled(this.returnPromises), 'return()');
    }
    for (let i = 0; i < 5; i++) await flush();
    this.checkFinal();
  }

  /** How the iteration ended: the first next() call, in call order, that did not give a result. */
  end(): { done: boolean; error?: { e: unknown } } | undefined {
    const first = this.nexts.findIndex((n) => n.done || n.error);
    const later = this.nexts.slice(first + 1).find((n) => n.result !== undefined);
    this.v.check(
      first < 0 || later === undefined,
      () => `result ${later?.result} after the iteration ended`,
    );
    return first < 0 ? undefined : this.nexts[first];
  }

  checkFinal(): void {
    const v = this.v;
    const end = this.end();
    const seen = new Map<number, number>();
    for (const r of this.results) {
      seen.set(r.index, (seen.get(r.index) ?? 0) + 1);
      v.check(
        r.job === this.source.produced[r.index],
        () => `result ${r.index} carries another job`,
      );
      if (r.ok) {
        const call = this.workers.calls.get(r.index);
        v.check(
          r.value === r.index * 10 && call?.produced === r.index * 10,
          () => `result ${r.index}: ok ${r.value} but the worker produced ${call?.produced}`,
        );
      } else {
        this.workers.checkError(r.index, r.error, this.ac.signal.aborted || this.returned);
      }
    }
    for (const [index, n] of seen) v.check(n === 1, () => `job ${index} yielded ${n} results`);
    if (!this.returned) {
      for (const job of this.source.produced) {
        if (this.source.afterClose.has(job.id)) continue;
        v.check(
          seen.has(job.id),
          () => `job ${job.id} pulled from the source but never yielded a result`,
        );
      }
      const failure = this.source.failure;
      if (failure && !this.ac.signal.aborted) {
        v.check(
          end?.error?.e === failure.error,
          () =>
            `the source failed but the iteration ended with ${end?.error ? String(end.error.e) : 'done'}`,
        );
      }
      if (!failure)
        v.check(
          end?.error === undefined,
          () => `iteration threw ${String(end?.error?.e)} without a source failure`,
        );
    }
    if (this.opts.ordered) {
      // In next() call order (a re-entrant next() call settles its callbacks in another order).
      const order = this.nexts.flatMap((n) => (n.result === undefined ? [] : [n.result]));
      v.check(
        order.every((x, i) => i === 0 || x > (order[i - 1] as number)),
        () => `ordered results out of order: ${order}`,
      );
    }
    const stoppedEarly = this.returned || this.ac.signal.aborted;
    if (
      stoppedEarly &&
      !this.source.ended &&
      !this.source.failure &&
      this.source.spec.returnKind !== 'absent'
    ) {
      v.check(
        this.source.returnCalls >= 1,
        () => 'stopped early but the source was not closed (return() not called)',
      );
    }
    v.check(
      this.source.returnCalls <= 1,
      () => `source return() called ${this.source.returnCalls} times`,
    );
    v.check(
      abortListeners(this.ac.signal) === 0,
      () => `${abortListeners(this.ac.signal)} listeners left on the signal`,
    );
    v.check(
      this.source.endHeldByDesign() || this.nexts.every((n) => n.settled),
      () => 'a next() call never settled',
    );
  }
}

describe('fuzz: runPool', () => {
  const unhandled = new UnhandledCounter();
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    unhandled.install();
  });
  afterEach(() => {
    unhandled.uninstall();
    vi.useRealTimers();
  });

  it('every pulled job yields once, limits and pull-ahead hold, the source error arrives, nothing leaks', {
    timeout: testTimeout(40_000),
  }, async () => {
    await fuzzAssert(
      'runPool',
      fc.asyncProperty(
        sourceSpec,
        fc.array(work, { minLength: 1, maxLength: 6 }),
        fc.record({
          concurrency: fc.integer({ min: 1, max: 3 }),
          buffer: fc.integer({ min: 0, max: 2 }),
          ordered: fc.boolean(),
          // Only the full engine has a timeout.
          timeout: fc.option(fc.integer({ min: 5, max: 30 }), { nil: undefined }),
          engine: fc.constantFrom<'lean' | 'full'>('lean', 'full'),
          sourceReenter: fc.constantFrom<Reentry>('none', 'none', 'abort', 'return', 'next'),
        }),
        fc.array(command, { minLength: 1, maxLength: 30 }),
        async (spec, works, opts, commands) => {
          const m = new RunPoolModel(spec, works, opts);
          await runCommands(m, commands, unhandled);
        },
      ),
      fuzzParams(12),
    );
  });
});
