/**
 * Model-based attack on pipeline: 1–3 stages of scripted workers over a hand-written source,
 * with drain() (with and without a deadline), abort(), the pipeline's signal, return() on its
 * iterator and re-entrant calls from workers and from the consumer. Fake setTimeout for stage
 * timeouts and drain deadlines.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, it, vi } from 'vitest';
import { pipeline, type Result } from '../../src/index.js';
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
import { attack } from './known-open.js';
import { type Reentry, type Work, Workers, work } from './workers.js';

interface StageSpec {
  concurrency: number;
  buffer: number;
  ordered: boolean;
  timeout: number | undefined;
  works: Work[];
}

type Command =
  | { t: 'pull' }
  | { t: 'feed'; how: 'value' | 'done' | 'reject' }
  | { t: 'settle'; stage: number; pick: number; ok: boolean; thrown: ThrownKind }
  | { t: 'abort' }
  | { t: 'signal' }
  | { t: 'drain' }
  | { t: 'drainBy'; ms: number }
  | { t: 'return' }
  | { t: 'advance'; ms: number }
  | { t: 'tick' };

const stageSpec: fc.Arbitrary<StageSpec> = fc.record({
  concurrency: fc.integer({ min: 1, max: 3 }),
  buffer: fc.integer({ min: 0, max: 2 }),
  ordered: fc.boolean(),
  timeout: fc.option(fc.integer({ min: 5, max: 30 }), { nil: undefined }),
  works: fc.array(work, { minLength: 1, maxLength: 4 }),
});

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Command>({ t: 'pull' }) },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom<'value' | 'done' | 'reject'>('value', 'value', 'done', 'reject')
      .map((how): Command => ({ t: 'feed', how })),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('settle' as const),
      stage: fc.nat(2),
      pick: fc.nat(5),
      ok: fc.boolean(),
      thrown: thrownKinds(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom<Command>(
      { t: 'abort' },
      { t: 'signal' },
      { t: 'drain' },
      { t: 'return' },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: 40 }).map((ms): Command => ({ t: 'drainBy', ms })),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 30 }).map((ms): Command => ({ t: 'advance', ms })),
  },
  { weight: 3, arbitrary: fc.constant<Command>({ t: 'tick' }) },
);

const NAMES = ['a', 'b', 'c'];

class PipelineModel {
  readonly v = new Violations();
  readonly log: string[] = [];
  readonly source: HostileSource;
  readonly stages: Workers[];
  readonly ac = new AbortController();
  readonly pipe;
  readonly it: AsyncIterator<Result<Job, number>>;
  readonly results: Result<Job, number>[] = [];
  readonly nexts: { settled: boolean; done: boolean; error?: { e: unknown }; result?: number }[] =
    [];
  readonly drains: Promise<unknown>[] = [];
  returned = false;
  stopped = false;
  returnPromises: Promise<unknown>[] = [];
  ended = false;
  depth = 0;

  constructor(
    spec: SourceSpec,
    readonly specs: StageSpec[],
  ) {
    this.source = new HostileSource(spec);
    this.source.stopped = () => this.stopped || this.returned;
    this.stages = specs.map((s) => new Workers(s.works, s.concurrency, this.v, this.log));
    for (const w of this.stages) w.reenter = (what) => this.reenter(what);
    let p = pipeline<Job>(this.source.iterable(), { signal: this.ac.signal }) as ReturnType<
      typeof pipeline<unknown>
    >;
    specs.forEach((s, i) => {
      const workers = this.stages[i] as Workers;
      p = p.stage(
        NAMES[i] as string,
        (input: unknown, ctx) => {
          const id = i === 0 ? (input as Job).id : (input as number) / 10;
          // A job that failed in an earlier stage must never reach this one.
          for (let k = 0; k < i; k++) {
            const call = this.stages[k]?.calls.get(id);
            this.v.check(
              call?.produced === id * 10,
              () => `job ${id} reached stage ${NAMES[i]} without a value from ${NAMES[k]}`,
            );
          }
          return workers.run({ id }, ctx.signal);
        },
        { concurrency: s.concurrency, buffer: s.buffer, ordered: s.ordered, timeout: s.timeout },
      ) as typeof p;
    });
    this.pipe = p;
    this.it = p[Symbol.asyncIterator]() as AsyncIterator<Result<Job, number>>;
  }

  reenter(what: Reentry): void {
    if (what === 'none' || this.depth > 2) return;
    this.depth++;
    try {
      if (what === 'abort') this.stop(() => this.pipe.abort('fuzz'));
      else if (what === 'return') this.return();
      else this.pull();
    } finally {
      this.depth--;
    }
  }

  /** abort(), the signal or drain(): a value pulled at that moment still yields. */
  stop(how: () => void): void {
    this.stopped = true;
    how();
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
          this.ended = true;
          return;
        }
        entry.result = r.value.index;
        this.results.push(r.value);
        this.log.push(
          `  result ${r.value.index} ${r.value.ok ? 'ok' : `${r.value.error?.name} in ${r.value.stage}`}`,
        );
        const w = this.specs[0]?.works[r.value.index % (this.specs[0]?.works.length ?? 1)];
        if (w && w.reenter !== 'none' && r.value.index % 2 === 1) this.reenter(w.reenter);
      },
      (e: unknown) => {
        entry.settled = true;
        entry.error = { e };
        this.ended = true;
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
        this.stages[c.stage % this.stages.length]?.settle(c.pick, c.ok, c.thrown);
        break;
      case 'abort':
        this.stop(() => this.pipe.abort('fuzz'));
        break;
      case 'signal':
        this.stop(() => this.ac.abort('signal'));
        break;
      case 'drain':
        this.stop(() => this.drains.push(this.pipe.drain()));
        break;
      case 'drainBy': // a drain deadline: what is left when it passes is canceled
        this.stop(() => this.drains.push(this.pipe.drain({ timeout: c.ms })));
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
    const held = this.specs.reduce((sum, s) => sum + s.concurrency + s.buffer + 1, 0);
    const taken = this.results.length;
    const produced = this.source.produced.length;
    this.v.check(
      produced <= taken + held,
      () => `pulled ${produced} jobs with ${taken} taken (stages hold at most ${held})`,
    );
  }

  async finish(): Promise<void> {
    this.log.push('-- finish: feed and release everything, pull until the end');
    if (this.source.spec.steps.includes('never') && !this.returned)
      this.stop(() => this.pipe.abort('finish'));
    const busy = (): boolean =>
      (!this.ended && !this.returned) || this.nexts.some((n) => !n.settled);
    for (let round = 0; round < 100 && busy(); round++) {
      while (this.source.pending.length > 0) this.source.feed(round < 2 ? 'value' : 'done');
      for (const w of this.stages) w.releaseAll();
      if (this.nexts.every((n) => n.settled) && !this.returned) this.pull();
      await flush();
      if (round === 60) this.stop(() => this.pipe.abort('finish'));
    }
    for (const w of this.stages) w.releaseAll();
    const held = this.source.endHeldByDesign();
    if (!this.returned && !held) this.v.check(this.ended, () => 'hang: the iteration never ended');
    // A source whose return() never settles may hold up a return() (as for-await would).
    if (this.source.spec.returnKind !== 'never' && !held) {
      await settlesWithin(
        this.it.next().catch(() => undefined),
        'next() after the end',
      );
      await settlesWithin(Promise.allSettled(this.returnPromises), 'return()');
      await settlesWithin(
        Promise.all([this.pipe.drain(), ...this.drains]),
        'drain() after the end',
      );
    }
    for (let i = 0; i < 5; i++) await flush();
    this.checkFinal();
  }

  checkFinal(): void {
    const v = this.v;
    const seen = new Map<number, number>();
    const canceledOk = this.stopped || this.returned || this.ac.signal.aborted;
    for (const r of this.results) {
      seen.set(r.index, (seen.get(r.index) ?? 0) + 1);
      v.check(
        r.job === this.source.produced[r.index],
        () => `result ${r.index} carries another job`,
      );
      if (r.ok) {
        v.check(r.value === r.index * 10, () => `result ${r.index}: ok ${r.value}`);
        this.stages.forEach((w, i) => {
          v.check(
            w.calls.get(r.index)?.produced === r.index * 10,
            () => `result ${r.index} ok but stage ${NAMES[i]} produced nothing`,
          );
        });
      } else {
        const k = NAMES.indexOf(r.stage ?? '');
        v.check(
          k >= 0 && k < this.stages.length,
          () => `result ${r.index}: failure names stage ${r.stage}`,
        );
        this.stages[k]?.checkError(r.index, r.error, canceledOk);
        for (let later = k + 1; later < this.stages.length; later++) {
          v.check(
            !this.stages[later]?.calls.has(r.index),
            () => `job ${r.index} failed in ${r.stage} but ran in ${NAMES[later]}`,
          );
        }
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
    }
    // A source whose return() never settles holds the pipeline's end (its listener, and the
    // next() calls queued behind a return()).
    if (
      (attack('pipeline-source-return-never-settles') || this.source.spec.returnKind !== 'never') &&
      !this.source.endHeldByDesign()
    ) {
      v.check(
        abortListeners(this.ac.signal) === 0,
        () => `${abortListeners(this.ac.signal)} listeners left on the signal`,
      );
      v.check(
        this.nexts.every((n) => n.settled),
        () => 'a next() call never settled',
      );
    }
    v.check(
      this.source.returnCalls <= 1,
      () => `source return() called ${this.source.returnCalls} times`,
    );
  }
}

describe('fuzz: pipeline', () => {
  const unhandled = new UnhandledCounter();
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    unhandled.install();
  });
  afterEach(() => {
    unhandled.uninstall();
    vi.useRealTimers();
  });

  it('every pulled job yields once from the right stage, drain and abort end it, nothing leaks', {
    timeout: testTimeout(40_000),
  }, async () => {
    await fuzzAssert(
      'pipeline',
      fc.asyncProperty(
        sourceSpec,
        fc.array(stageSpec, { minLength: 1, maxLength: 3 }),
        fc.array(command, { minLength: 1, maxLength: 30 }),
        async (spec, stages, commands) => {
          const m = new PipelineModel(spec, stages);
          await runCommands(m, commands, unhandled);
        },
      ),
      fuzzParams(12),
    );
  });
});
