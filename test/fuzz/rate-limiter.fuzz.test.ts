/**
 * Attack on the in-process rate limiter (LocalRateLimiter over its SlidingWindow): random limits,
 * windows, merge grains and runs of unread starts; starts asked with and without a clock reading,
 * reservations, waits honoured or not, permits given back. Checked: no window of `interval` ms ever holds more than
 * `limit` real starts; a wait, once honoured, is enough; and a refusal is never far from the
 * truth (the window really is full, up to what the grain and the unread runs may over-count).
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LocalRateLimiter } from '../../src/gates/sliding-window.js';
import { Pool } from '../../src/index.js';
import { maxInWindow } from '../helpers.js';
import { fuzzAssert, fuzzParams, testTimeout } from './harness.js';

type Ask = {
  advance: number;
  how: 'try' | 'fresh' | 'reserve';
  honour: boolean;
  cancel: boolean;
};

const ask: fc.Arbitrary<Ask> = fc.record({
  // Quarter-ms steps, some of them 0 (several asks at one instant).
  advance: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 0, max: 200 }).map((n) => n / 4),
  ),
  how: fc.constantFrom('try', 'fresh', 'reserve'),
  honour: fc.boolean(),
  // A granted start whose job is canceled before it starts: the permit is given back.
  cancel: fc.boolean(),
});

describe('fuzz: LocalRateLimiter', () => {
  afterEach(() => vi.restoreAllMocks());

  it('no window holds more than the limit, an honoured wait is enough, a refusal means a full window', {
    timeout: testTimeout(30_000),
  }, async () => {
    await fuzzAssert(
      'LocalRateLimiter',
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 0, max: 6 }),
        fc.constantFrom(0, 0.5, 3),
        fc.array(ask, { minLength: 1, maxLength: 120 }),
        async (limit, interval, unreadRun, grain, asks) => {
          let now = 0;
          vi.spyOn(performance, 'now').mockImplementation(() => now);
          const limiter = new LocalRateLimiter(limit, interval, unreadRun, grain);
          const starts: number[] = [];
          const log: string[] = [];
          const fail = (why: string) => {
            throw new Error(`${why}\n${log.join('\n')}`);
          };
          for (const a of asks) {
            now += a.advance;
            if (a.how === 'reserve') {
              const wait = limiter.reserveAt(now);
              log.push(`@${now} reserve -> ${wait}`);
              starts.push(now + wait);
              continue;
            }
            const wait = a.how === 'try' ? limiter.try() : limiter.tryAt(now);
            log.push(`@${now} ${a.how} -> ${wait}`);
            if (wait === 0) {
              if (a.cancel) {
                limiter.giveBack();
                log.push('  given back');
              } else starts.push(now);
              continue;
            }
            // Refused: the window must really be full, give or take what the grain and two
            // runs of unread starts (one stamped past the window's edge, one merged there) add.
            const inWindow = starts.filter((t) => t > now - interval - grain - 1e-6).length;
            if (inWindow + 2 * unreadRun < limit) {
              fail(`refused with ${inWindow} starts in the window, limit ${limit}`);
            }
            if (a.honour) {
              now += wait;
              const again = limiter.tryAt(now);
              log.push(`@${now} waited, fresh -> ${again}`);
              if (again !== 0) fail(`still refused (${again} ms) after the wait it gave`);
              starts.push(now);
            }
          }
          const most = maxInWindow(starts, interval, 1e-6);
          if (most > limit) fail(`${most} starts in one ${interval} ms window, limit ${limit}`);
          expect(most).toBeLessThanOrEqual(limit);
        },
      ),
      fuzzParams(40),
    );
  });
});

type Submit = {
  /** ms of fake time before it. */
  after: number;
  /** Pool 0 has the shared rate alone (no reading per start); pool 1 also keys its jobs
   * (a reading per start) and has a rate per key. */
  pool: 0 | 1;
  key: 'a' | 'b';
  /** ms of synchronous work at its start (the clock moves, no timer fires). */
  work: number;
  /** ms until its worker settles. */
  runs: number;
  /** Aborted in the pass that would start it: its permit is given back. */
  cancel: boolean;
};

const submit: fc.Arbitrary<Submit> = fc.record({
  after: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 })),
  pool: fc.constantFrom<0 | 1>(0, 1),
  key: fc.constantFrom<'a' | 'b'>('a', 'b'),
  work: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 30 })),
  runs: fc.integer({ min: 0, max: 60 }),
  cancel: fc.boolean(),
});

describe('fuzz: pools sharing a LocalRateLimiter', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  it('two pools (one with a reading per start, one without) never put more than the limit in a window, nor a key more than its own', {
    timeout: testTimeout(60_000),
  }, async () => {
    await fuzzAssert(
      'pools sharing a LocalRateLimiter',
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 5, max: 60 }),
        fc.integer({ min: 0, max: 4 }),
        fc.constantFrom(0, 0.5, 3),
        fc.record({
          limit: fc.integer({ min: 1, max: 3 }),
          interval: fc.integer({ min: 5, max: 60 }),
        }),
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 2, maxLength: 2 }),
        fc.array(submit, { minLength: 1, maxLength: 30 }),
        async (limit, interval, unreadRun, grain, keyRate, concurrency, submits) => {
          vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
          const timersNow = performance.now.bind(performance);
          let worked = 0;
          vi.spyOn(performance, 'now').mockImplementation(() => timersNow() + worked);
          const limiter = new LocalRateLimiter(limit, interval, unreadRun, grain);
          const starts: number[] = [];
          const keyStarts = { a: [] as number[], b: [] as number[] };
          const worker = (s: Submit) => {
            const at = performance.now();
            starts.push(at);
            if (s.pool === 1) keyStarts[s.key].push(at);
            worked += s.work;
            return new Promise<void>((resolve) => setTimeout(resolve, s.runs));
          };
          const pools = [
            new Pool(worker, {
              concurrency: concurrency[0] as number,
              queueSize: Number.POSITIVE_INFINITY,
              rate: limiter,
            }),
            new Pool(worker, {
              concurrency: concurrency[1] as number,
              queueSize: Number.POSITIVE_INFINITY,
              rate: limiter,
              key: (s: Submit) => s.key,
              perKey: { concurrency: 4, rate: keyRate },
            }),
          ];
          const results: Promise<unknown>[] = [];
          for (const s of submits) {
            await vi.advanceTimersByTimeAsync(s.after);
            const pool = pools[s.pool] as Pool<Submit, void>;
            if (!s.cancel) {
              results.push((await pool.submit(s)).result);
              continue;
            }
            // Resumed by the abort's first listener: that pass takes a permit for the job, then
            // finds its signal aborted and gives the permit back.
            pool.pause();
            const controller = new AbortController();
            controller.signal.addEventListener('abort', () => pool.resume());
            results.push((await pool.submit(s, { signal: controller.signal })).result);
            controller.abort();
          }
          await vi.advanceTimersByTimeAsync(100_000);
          await Promise.all(results);
          await Promise.all(pools.map((p) => p.close()));
          const most = maxInWindow(starts, interval, 1e-6);
          const explain = () =>
            `limit ${limit}/${interval} ms (run ${unreadRun}, grain ${grain}), key ${keyRate.limit}/${keyRate.interval} ms; starts ${starts.join(', ')}`;
          if (most > limit) throw new Error(`${most} starts in one window: ${explain()}`);
          for (const key of ['a', 'b'] as const) {
            const k = maxInWindow(keyStarts[key], keyRate.interval, 1e-6);
            if (k > keyRate.limit)
              throw new Error(`key ${key}: ${k} starts in one window: ${explain()}`);
          }
          expect(most).toBeLessThanOrEqual(limit);
        },
      ),
      fuzzParams(8),
    );
  });
});
