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
