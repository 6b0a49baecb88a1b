/**
 * Shared pieces of the gate fuzz suites (Pool and runPool): random gate configurations, jobs
 * that fail some attempts before their last one, the start log checked against the rate windows
 * and the concurrency limits, and the per-job hook sequence.
 */
import fc from 'fast-check';
import { vi } from 'vitest';
import type { RateLimit } from '../../src/index.js';
import type { JobHooks } from '../../src/scheduler/hooks.js';
import { maxInWindow } from '../helpers.js';
import type { Violations } from './harness.js';

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

export const rateArb: fc.Arbitrary<RateLimit> = fc.record({
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
