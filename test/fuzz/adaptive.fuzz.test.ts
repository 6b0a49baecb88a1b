/**
 * Pool with an adaptive limit under random outcomes: the model settles running jobs (success,
 * 503, 429, TimeoutError, a non-overload failure) after random virtual delays, submits, resizes
 * by hand and aborts. Checked after every step: the limit is an integer in [min, max], equal to
 * `stats().concurrency`; running never exceeds max; every accepted job settles exactly once.
 * Checked at every start: the jobs running, the new one included, are within the limit at that
 * moment (after the limit drops, the jobs already running finish, and nothing starts until
 * they are below it).
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, it, vi } from 'vitest';
import { adaptive, Pool, TimeoutError } from '../../src/index.js';
import { type Deferred, deferred, flush, fuzzAssert, fuzzParams, testTimeout } from './harness.js';

const OUTCOMES = ['ok', '503', '429', 'timeout', 'bug'] as const;
type Outcome = (typeof OUTCOMES)[number];

const failure = (o: Outcome): unknown =>
  o === '503'
    ? Object.assign(new Error('unavailable'), { status: 503 })
    : o === '429'
      ? Object.assign(new Error('slow down'), { statusCode: 429 })
      : o === 'timeout'
        ? new TimeoutError(5)
        : new TypeError('bug');

type Command =
  | { kind: 'submit'; n: number }
  | { kind: 'settle'; pick: number; outcome: Outcome; dt: number }
  | { kind: 'resize'; to: number };

const command = (max: number): fc.Arbitrary<Command> =>
  fc.oneof(
    fc.record({ kind: fc.constant('submit' as const), n: fc.integer({ min: 1, max: 20 }) }),
    fc.record({
      kind: fc.constant('settle' as const),
      pick: fc.nat(),
      outcome: fc.constantFrom(...OUTCOMES),
      dt: fc.double({ min: 0, max: 50, noNaN: true }),
    }),
    fc.record({ kind: fc.constant('resize' as const), to: fc.integer({ min: 1, max: max + 2 }) }),
  );

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Pool with adaptive concurrency (fuzz)', () => {
  it(
    'keeps the limit an integer in [min, max], starts a job only within the current limit, and settles every job once',
    async () => {
      const scenario = fc
        .record({
          min: fc.integer({ min: 1, max: 5 }),
          span: fc.integer({ min: 0, max: 20 }),
          algorithm: fc.constantFrom('gradient' as const, 'aimd' as const),
        })
        .chain((c) =>
          fc.record({
            config: fc.constant(c),
            commands: fc.array(command(c.min + c.span), { maxLength: 120 }),
          }),
        );
      await fuzzAssert(
        'adaptive pool',
        fc.asyncProperty(scenario, async ({ config, commands }) => {
          const { min, span, algorithm } = config;
          const max = min + span;
          const limit = adaptive({ min, max, algorithm });
          const running: Deferred<void>[] = [];
          let active = 0;
          const overStarts: string[] = [];
          const pool = new Pool(
            () => {
              active++;
              if (active > limit.limit) overStarts.push(`${active} running > limit ${limit.limit}`);
              const d = deferred<void>();
              running.push(d);
              return d.promise.finally(() => {
                active--;
              });
            },
            { concurrency: limit, queueSize: Infinity },
          );
          const settled = new Map<number, number>();
          const results: Promise<unknown>[] = [];
          let next = 0;
          const check = () => {
            const s = pool.stats();
            const l = limit.limit;
            if (!Number.isInteger(l) || l < min || l > max) throw new Error(`limit ${l}`);
            if (s.concurrency !== l || s.limit?.current !== l) throw new Error('stats disagree');
            if (s.running > max) throw new Error(`running ${s.running} > max ${max}`);
          };
          for (const c of commands) {
            if (c.kind === 'submit') {
              for (let i = 0; i < c.n; i++) {
                const id = next++;
                const task = pool.trySubmit(id);
                if (!task) throw new Error('refused with an unbounded queue');
                results.push(task.result.then(() => settled.set(id, (settled.get(id) ?? 0) + 1)));
              }
            } else if (c.kind === 'settle' && running.length > 0) {
              await vi.advanceTimersByTimeAsync(c.dt);
              const [d] = running.splice(c.pick % running.length, 1);
              if (c.outcome === 'ok') d?.resolve();
              else d?.reject(failure(c.outcome));
            } else if (c.kind === 'resize') {
              try {
                pool.resize(c.to);
                if (c.to < min || c.to > max) throw new Error(`resize(${c.to}) accepted`);
              } catch (error) {
                if (c.to >= min && c.to <= max) throw error;
              }
            }
            await flush();
            check();
            if (overStarts.length > 0) throw new Error(`started over the limit: ${overStarts[0]}`);
          }
          await pool.abort();
          await Promise.all(results);
          if (settled.size !== next) throw new Error(`${settled.size} of ${next} settled`);
          for (const n of settled.values()) if (n !== 1) throw new Error('settled twice');
        }),
        fuzzParams(),
      );
    },
    testTimeout(60_000),
  );
});
