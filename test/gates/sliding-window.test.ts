import { describe, expect, it } from 'vitest';
import { LocalRateLimiter, SlidingWindow } from '../../src/gates/sliding-window.js';

/**
 * Most starts found in any window [t, t + interval) of a list of start times (sorted here; a
 * nanosecond of slack for the float rounding of `ask + wait`).
 */
function busiestWindow(unsorted: number[], interval: number): number {
  const starts = [...unsorted].sort((a, b) => a - b);
  let most = 0;
  let first = 0;
  for (let last = 0; last < starts.length; last++) {
    while ((starts[last] as number) - (starts[first] as number) >= interval - 1e-6) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

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
    expect(busiestWindow(starts, interval)).toBeLessThanOrEqual(limit);
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

  it('a reading older than one seen before counts as that one (pools sharing a limiter)', () => {
    const limiter = new LocalRateLimiter(1, 1000);
    expect(limiter.reserveAt(10)).toBe(0);
    // Asked with a stale reading: it waits from the newest reading, never less.
    expect(limiter.reserveAt(5)).toBe(1005);
  });
});
