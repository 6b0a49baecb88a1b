import { afterEach, describe, expect, it, vi } from 'vitest';
import { LocalRateLimiter, SlidingWindow } from '../../src/gates/sliding-window.js';
import { maxInWindow } from '../helpers.js';

/** Starts as a limiter grants them: each asks at `asks[i]`, starts after its wait. */
function grant(limiter: LocalRateLimiter, asks: number[]): number[] {
  return asks.map((at) => at + limiter.reserveAt(at));
}

describe('SlidingWindow', () => {
  it('up to its merge threshold it is exact: the burst is the limit, the next start one interval after the first', () => {
    const limiter = new LocalRateLimiter(50, 1000);
    const starts = grant(
      limiter,
      Array.from({ length: 51 }, (_, i) => i * 0.01),
    );
    expect(starts.slice(0, 50)).toEqual(Array.from({ length: 50 }, (_, i) => i * 0.01));
    expect(starts[50]).toBeCloseTo(1000, 9);
  });

  it('a high limit keeps a bounded log and never lets more than the limit into a window', () => {
    const limit = 5000;
    const interval = 100;
    const limiter = new LocalRateLimiter(limit, interval);
    // 40,000 asks 0.001 ms apart: eight windows' worth of demand at once.
    const starts = grant(
      limiter,
      Array.from({ length: 40_000 }, (_, i) => i * 0.001),
    );
    expect(maxInWindow(starts, interval, 1e-6)).toBeLessThanOrEqual(limit);
    // Late by at most one grain (interval / 1024) per window: close to the ideal 8 windows.
    expect(starts[starts.length - 1]).toBeLessThan(7 * interval + 8 * (interval / 1024) + 40);
  });

  it('a never-limiting rate answers every start with no wait and forgets old starts', () => {
    const window = new SlidingWindow(1e9, 1000);
    for (let i = 0; i < 100_000; i++) {
      expect(window.delay(i * 0.01)).toBe(0);
      window.record(i * 0.01);
    }
    expect(window.idle(2000)).toBe(true);
  });

  it('an entry leaves the window exactly when the wait it gave is over, whatever the float rounding', () => {
    const limiter = new LocalRateLimiter(1, 33.3);
    expect(limiter.tryAt(192.08098407481612)).toBe(0);
    // One float below 192.08098407481612 + 33.3; `192.08… <= reading - 33.3` holds here, so a
    // horizon computed by subtraction would let the start in before its wait is over.
    const wait = limiter.tryAt(225.3809840748161);
    expect(wait).toBeGreaterThan(0);
    expect(limiter.tryAt(225.3809840748161 + wait)).toBe(0);
  });

  it('a reading older than one seen before counts as that one (pools sharing a limiter)', () => {
    const limiter = new LocalRateLimiter(1, 1000);
    expect(limiter.reserveAt(10)).toBe(0);
    // Asked with a stale reading: it waits from the newest reading, never less.
    expect(limiter.reserveAt(5)).toBe(1005);
  });
});

describe('LocalRateLimiter without a reading per start', () => {
  afterEach(() => vi.restoreAllMocks());

  /** A virtual clock behind performance.now(), counting its readings. */
  function virtualClock(): { now: number; reads: number } {
    const clock = { now: 0, reads: 0 };
    vi.spyOn(performance, 'now').mockImplementation(() => {
      clock.reads++;
      return clock.now;
    });
    return clock;
  }

  it('a never-limiting rate reads the clock once per limit / 1024 starts', () => {
    const clock = virtualClock();
    const limiter = new LocalRateLimiter(10_240_000, 1000); // 10,000 starts in a row unread
    for (let i = 0; i < 100_000; i++) {
      clock.now = i * 0.001;
      expect(limiter.try()).toBe(0);
    }
    // Each reading follows a run of 10,000 unread starts and takes a start itself.
    expect(clock.reads).toBe(Math.floor(100_000 / 10_001));
  });

  it('up to a limit of 1,024 every start reads the clock (exact, as tryAt)', () => {
    const clock = virtualClock();
    const limiter = new LocalRateLimiter(1024, 1000);
    for (let i = 0; i < 100; i++) limiter.try();
    expect(clock.reads).toBe(100);
  });

  it('unread starts are stamped with the next reading: late, never early', () => {
    const clock = virtualClock();
    const limiter = new LocalRateLimiter(3, 100, 2);
    clock.now = 0;
    expect(limiter.try()).toBe(0); // unread
    clock.now = 10;
    expect(limiter.try()).toBe(0); // unread
    clock.now = 50;
    expect(limiter.try()).toBe(0); // read at 50: the two above are stamped 50 with it
    expect(clock.reads).toBe(1);
    clock.now = 60;
    // Full: the three leave at 150 (stamped 50), although the first two started at 0 and 10.
    expect(limiter.try()).toBe(90);
    clock.now = 150;
    expect(limiter.try()).toBe(0);
  });

  it('a start that might not fit reads the clock, and the unread starts count from that reading', () => {
    const clock = virtualClock();
    const limiter = new LocalRateLimiter(2, 100, 10);
    expect(limiter.try()).toBe(0);
    expect(limiter.try()).toBe(0);
    expect(clock.reads).toBe(0);
    clock.now = 100;
    // Only a reading can tell whether the two left: it stamps them at 100, late, never early.
    expect(limiter.try()).toBe(100);
    expect(clock.reads).toBe(1);
    clock.now = 200;
    expect(limiter.try()).toBe(0);
  });

  it('a permit given back (its job canceled before starting) leaves room for the next start at once', () => {
    const clock = virtualClock();
    for (const unreadRun of [0, 3]) {
      const limiter = new LocalRateLimiter(1, 100, unreadRun);
      clock.now += 1000;
      expect(limiter.try()).toBe(0);
      limiter.giveBack();
      expect(limiter.try()).toBe(0);
      expect(limiter.try()).toBe(100);
    }
  });

  it('under a binding high limit, throughput stays within 2 / 1024 of the limit', () => {
    const clock = virtualClock();
    const limit = 2048;
    const interval = 1000;
    const limiter = new LocalRateLimiter(limit, interval);
    const starts: number[] = [];
    // Demand well above the limit: an ask every 0.05 ms, or as soon as the wait ends.
    while (clock.now < 10 * interval) {
      const wait = limiter.try();
      if (wait === 0) {
        starts.push(clock.now);
        clock.now += 0.05;
      } else clock.now += wait;
    }
    expect(maxInWindow(starts, interval, 1e-6)).toBeLessThanOrEqual(limit);
    expect(starts.length).toBeGreaterThanOrEqual(10 * limit * (1 - 2 / 1024));
  });
});
