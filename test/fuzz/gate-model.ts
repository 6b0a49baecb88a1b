/**
 * Shared pieces of the gate fuzz suites (Pool and runPool): random gate configurations, jobs
 * that fail some attempts before their last one, the start log checked against the rate windows
 * and the concurrency limits, and the per-job hook sequence.
 */
import fc from 'fast-check';
import { vi } from 'vitest';
import type { RateLimit } from '../../src/index.js';
import type { JobHooks } from '../../src/scheduler/hooks.js';
import { type Deferred, deferred, type Violations } from './harness.js';

/** Faked: timers, and the clocks the gates read (performance.now for rates and backoffs). */
export function fakeClock(): void {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
  });
}

export const KEYS = ['a', 'b', 'c'] as const;
export type Key = (typeof KEYS)[number];

/** One random gate configuration (retry backoffs are fixed delays, so the model knows them). */
export interface GateConfig {
  retry: { attempts: number; delay: number; retryIf: 'all' | 'first-only' } | undefined;
  rate: RateLimit | undefined;
  key: { concurrency: number; rate: RateLimit | undefined } | undefined;
}

const rateArb: fc.Arbitrary<RateLimit> = fc.record({
  limit: fc.integer({ min: 1, max: 3 }),
  interval: fc.integer({ min: 5, max: 40 }),
});

export const gateConfig: fc.Arbitrary<GateConfig> = fc.record({
  retry: fc.option(
    fc.record({
      attempts: fc.integer({ min: 1, max: 3 }),
      delay: fc.integer({ min: 0, max: 30 }),
      retryIf: fc.constantFrom<'all' | 'first-only'>('all', 'all', 'first-only'),
    }),
    { nil: undefined },
  ),
  rate: fc.option(rateArb, { nil: undefined }),
  key: fc.option(
    fc.record({
      concurrency: fc.integer({ min: 1, max: 2 }),
      rate: fc.option(rateArb, { nil: undefined }),
    }),
    { nil: undefined },
  ),
});

/** The gate options of `config`, as every pool kind takes them. */
export function gateOptions(config: GateConfig): Record<string, unknown> {
  const opts: Record<string, unknown> = {};
  const { retry, rate, key } = config;
  if (retry) {
    opts.retry = {
      attempts: retry.attempts,
      backoff: () => retry.delay,
      ...(retry.retryIf === 'first-only' ? { retryIf: (_: Error, n: number) => n === 1 } : {}),
    };
  }
  if (rate) opts.rate = { ...rate };
  if (key) {
    opts.key = (job: { key: Key }) => job.key;
    opts.perKey = { concurrency: key.concurrency, ...(key.rate ? { rate: key.rate } : {}) };
  }
  return opts;
}

/** How one job behaves: `fails` failing attempts (sync throw or rejection), then `last`. */
export interface JobBehaviour {
  fails: number;
  failHow: 'sync' | 'async';
  last: 'sync-ok' | 'sync-throw' | 'deferred' | 'until-signal';
}

export const jobBehaviour: fc.Arbitrary<JobBehaviour> = fc.record({
  fails: fc.integer({ min: 0, max: 3 }),
  failHow: fc.constantFrom<'sync' | 'async'>('sync', 'async'),
  last: fc.constantFrom<JobBehaviour['last']>(
    'sync-ok',
    'sync-throw',
    'deferred',
    'deferred',
    'until-signal',
  ),
});

/** The most starts in any window [t, t + interval) of ascending `starts`. */
export function maxInWindow(starts: readonly number[], interval: number): number {
  let max = 0;
  let lo = 0;
  for (let hi = 0; hi < starts.length; hi++) {
    while ((starts[hi] as number) - (starts[lo] as number) >= interval) lo++;
    max = Math.max(max, hi - lo + 1);
  }
  return max;
}

/** Every worker start on the fake clock: checks the rate windows, global and per key. */
export class StartLog {
  readonly all: number[] = [];
  readonly byKey = new Map<string, number[]>();

  record(at: number, key: string | undefined): void {
    this.all.push(at);
    if (key !== undefined) {
      const list = this.byKey.get(key) ?? [];
      list.push(at);
      this.byKey.set(key, list);
    }
  }

  check(v: Violations, config: GateConfig): void {
    const { rate, key } = config;
    if (rate) {
      const most = maxInWindow(this.all, rate.interval);
      v.check(
        most <= rate.limit,
        () => `${most} starts in a ${rate.interval} ms window, rate limit ${rate.limit}`,
      );
    }
    const perKey = key?.rate;
    if (perKey) {
      for (const [k, starts] of this.byKey) {
        const most = maxInWindow(starts, perKey.interval);
        v.check(
          most <= perKey.limit,
          () =>
            `key ${k}: ${most} starts in a ${perKey.interval} ms window, limit ${perKey.limit} (${starts.join(',')})`,
        );
      }
    }
  }
}

type HookEvent = 'accepted' | 'started' | 'retried' | 'settled';

/** Hooks that log each job's events (keyed by the job's model id) and check their order. */
export class HookLog<J extends { id: number }> {
  readonly events = new Map<number, { e: HookEvent; attempt?: number }[]>();
  readonly hooks: JobHooks<J>;
  accepted = 0;
  settled = 0;
  retried = 0;

  constructor(onAccepted?: (job: J) => void, onSettled?: (job: J) => void) {
    const push = (job: J, e: HookEvent, attempt?: number) => {
      const list = this.events.get(job.id) ?? [];
      list.push({ e, attempt });
      this.events.set(job.id, list);
    };
    this.hooks = {
      accepted: (job) => {
        onAccepted?.(job);
        this.accepted++;
        push(job, 'accepted');
      },
      started: (job, _index, attempt) => push(job, 'started', attempt),
      retried: (job, _index, attempt) => {
        this.retried++;
        push(job, 'retried', attempt);
      },
      settled: (job) => {
        this.settled++;
        push(job, 'settled');
        onSettled?.(job);
      },
    };
  }

  /** Events of `id` so far: accepted once first, then started/retried alternating by attempt,
   * settled once, last; `started` is the number of attempts the model saw begin. */
  check(v: Violations, id: number, started: number, final: boolean): void {
    const list = this.events.get(id) ?? [];
    const text = () => `job ${id} hooks: ${list.map((x) => x.e + (x.attempt ?? '')).join(' ')}`;
    if (list.length === 0) {
      v.check(!final, () => `job ${id}: no hook events`);
      return;
    }
    v.check(list[0]?.e === 'accepted', () => `${text()}: not accepted first`);
    let attempt = 0;
    let phase: 'idle' | 'running' | 'waiting' = 'idle';
    for (let i = 1; i < list.length; i++) {
      const ev = list[i] as { e: HookEvent; attempt?: number };
      if (ev.e === 'started') {
        attempt++;
        v.check(
          phase !== 'running' && ev.attempt === attempt,
          () => `${text()}: started ${ev.attempt} out of turn`,
        );
        phase = 'running';
      } else if (ev.e === 'retried') {
        v.check(
          phase === 'running' && ev.attempt === attempt,
          () => `${text()}: retried ${ev.attempt} out of turn`,
        );
        phase = 'waiting';
      } else if (ev.e === 'settled') {
        v.check(i === list.length - 1, () => `${text()}: events after settled`);
      } else {
        v.check(false, () => `${text()}: accepted twice`);
      }
    }
    v.check(attempt === started, () => `${text()}: ${attempt} started hooks, ${started} runs`);
    if (final) v.check(list.at(-1)?.e === 'settled', () => `${text()}: never settled`);
  }
}

/** One attempt of a job, as the model saw it start. */
export interface Attempt {
  signal: AbortSignal;
  live: boolean;
  control: Deferred<number> | undefined;
}

/** What the gate models know of one job (indexed by its id). */
export interface GateRec {
  id: number;
  key: Key;
  priority: number;
  behaviour: JobBehaviour;
  /** Acceptance order (from the accepted hook); -1 until accepted. */
  seq: number;
  attempts: Attempt[];
  /** The settled hook fired. */
  settled: boolean;
}

/**
 * The worker of the gate models: runs each attempt as its job's behaviour says and checks, at
 * every start, the attempt count, the pool and per-key limits and the priority order, and logs
 * the start time for the rate windows.
 */
export class GateWorker {
  readonly recs: GateRec[] = [];
  readonly starts = new StartLog();
  seq = 0;
  /** True when a queued job may have left the queue unseen by the model (canceled). */
  gone: (rec: GateRec) => boolean = () => false;

  constructor(
    readonly v: Violations,
    readonly log: string[],
    readonly config: GateConfig,
    public limit: number,
  ) {}

  add(id: number, key: Key, priority: number, behaviour: JobBehaviour): GateRec {
    const rec: GateRec = { id, key, priority, behaviour, seq: -1, attempts: [], settled: false };
    this.recs[id] = rec;
    return rec;
  }

  /** For the accepted hook. */
  accepted(id: number): void {
    const rec = this.recs[id];
    if (rec) rec.seq = this.seq++;
  }

  isLive(a: Attempt): boolean {
    return a.live && !a.signal.aborted;
  }

  run(id: number, signal: AbortSignal): number | Promise<number> {
    const rec = this.recs[id] as GateRec;
    const n = rec.attempts.length + 1;
    const now = performance.now();
    this.log.push(`  @${now.toFixed(3)} worker(${id}) attempt ${n}`);
    const v = this.v;
    const max = this.config.retry?.attempts ?? 1;
    v.check(n <= max, () => `job ${id}: attempt ${n} of at most ${max}`);
    v.check(!rec.settled, () => `job ${id}: started after it settled`);
    v.check(
      !rec.attempts.some((a) => this.isLive(a)),
      () => `job ${id}: attempt ${n} started while an earlier one runs`,
    );
    const live = this.recs.filter((r) => r?.attempts.some((a) => this.isLive(a))).length;
    v.check(live < this.limit, () => `job ${id} started with ${live} running, limit ${this.limit}`);
    const perKey = this.config.key?.concurrency;
    if (perKey !== undefined) {
      const same = this.recs.filter(
        (r) => r?.key === rec.key && r.attempts.some((a) => this.isLive(a)),
      ).length;
      v.check(same < perKey, () => `job ${id} (key ${rec.key}) started with ${same} of its key`);
    }
    this.checkPriority(rec, n);
    this.starts.record(now, this.config.key ? rec.key : undefined);
    const attempt: Attempt = { signal, live: false, control: undefined };
    rec.attempts.push(attempt);
    const b = rec.behaviour;
    if (n <= b.fails || b.last === 'sync-throw') {
      const error = new Error(`job ${id} attempt ${n} failed`);
      if (b.failHow === 'sync' || b.last === 'sync-throw') throw error;
      attempt.live = true;
      const p = Promise.reject(error);
      // Registered before the pool's handler: the slot counts as free when the pool sees it.
      p.catch(() => {
        attempt.live = false;
      });
      return p;
    }
    if (b.last === 'sync-ok') return id * 10;
    attempt.live = true;
    attempt.control = deferred<number>();
    if (b.last === 'until-signal') {
      const stop = () => {
        if (attempt.control?.settled) return;
        attempt.live = false;
        attempt.control?.reject(signal.reason);
      };
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
    }
    return attempt.control.promise;
  }

  /** No queued job of a higher priority (or of the same, accepted earlier) is passed over. */
  checkPriority(rec: GateRec, attempt: number): void {
    // Queued: accepted, not yet started, not settled. With key, priority orders within a key.
    const rivals = this.recs.filter(
      (r) =>
        r !== undefined &&
        r !== rec &&
        r.seq >= 0 &&
        r.attempts.length === 0 &&
        !r.settled &&
        !this.gone(r) &&
        (!this.config.key || r.key === rec.key),
    );
    for (const r of rivals) {
      const higher = r.priority > rec.priority;
      const earlier = r.priority === rec.priority && r.seq < rec.seq && attempt === 1;
      this.v.check(
        !higher && !earlier,
        () =>
          `job ${rec.id} (priority ${rec.priority}, seq ${rec.seq}) started before queued job ${r.id} (priority ${r.priority}, seq ${r.seq})`,
      );
    }
  }

  /** Attempts the model settles (deferred, or until-signal not yet ended). */
  open(): Attempt[] {
    return this.recs.flatMap(
      (r) => r?.attempts.filter((a) => a.control && !a.control.settled) ?? [],
    );
  }

  settle(pick: number, ok: boolean): void {
    const open = this.open();
    const a = open[pick % Math.max(1, open.length)];
    if (!a?.control) return;
    a.live = false;
    if (ok) a.control.resolve(1);
    else a.control.reject(new Error('settled as failed'));
  }

  releaseAll(): void {
    for (const a of this.open()) {
      a.live = false;
      a.control?.resolve(1);
    }
  }

  /** A result's attempts and errors agree with the runs the model saw. */
  checkResult(
    id: number,
    r: { ok: boolean; error?: Error; attempts?: number; errors?: Error[] },
  ): void {
    const v = this.v;
    const runs = this.recs[id]?.attempts.length ?? 0;
    if (this.config.retry === undefined) {
      v.check(r.attempts === undefined, () => `job ${id}: attempts without retry`);
      return;
    }
    v.check(r.attempts === runs, () => `job ${id}: result attempts ${r.attempts}, ran ${runs}`);
    const errors = r.errors ?? [];
    // Each failed run's error, then the cancel that ended a wait for a run that never came.
    const unrun = !r.ok && errors.length === runs + 1;
    const expected = r.ok ? runs - 1 : unrun ? runs + 1 : runs;
    v.check(
      errors.length === expected && (r.ok || errors.at(-1) === r.error),
      () => `job ${id}: ${errors.length} errors for ${runs} runs (${r.ok ? 'ok' : r.error?.name})`,
    );
    if (unrun)
      v.check(
        r.error?.name === 'AbortError',
        () => `job ${id}: an error without a run that is not a cancel: ${r.error?.name}`,
      );
  }
}
