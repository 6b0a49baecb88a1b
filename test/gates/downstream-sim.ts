/**
 * A simulated downstream in virtual time: capacity C; a request's latency is `base` ms while at
 * most C run, base x n/C with n > C running (queueing), and it is refused (503, fast) above 2C.
 * The client keeps as many requests in flight as the adaptive limit allows (always saturated).
 * `jitter` (ms, added to each latency) stands for timers firing off time; draw it from a seeded
 * PRNG so that runs repeat.
 */
import type { AdaptiveConcurrency } from '../../src/gates/adaptive.js';

export interface SimClock {
  now: number;
}

export function simulate(
  limit: AdaptiveConcurrency,
  clock: SimClock,
  capacityAt: (sample: number) => number,
  samples: number,
  base = 10,
  jitter: () => number = () => 0,
): number[] {
  const running: { start: number; end: number; dropped: boolean }[] = [];
  const limits: number[] = [];
  for (let i = 0; i < samples; i++) {
    const c = capacityAt(i);
    while (running.length < limit.limit) {
      const n = running.length + 1;
      const dropped = n > 2 * c;
      const latency = Math.max(0, (dropped ? 1 : n <= c ? base : (base * n) / c) + jitter());
      running.push({ start: clock.now, end: clock.now + latency, dropped });
    }
    running.sort((a, b) => a.end - b.end);
    const done = running.shift() as (typeof running)[number];
    clock.now = done.end;
    limit.onSample({
      rtt: done.end - done.start,
      inflight: running.length + 1,
      dropped: done.dropped,
    });
    limits.push(limit.limit);
  }
  return limits;
}

/** First index from which every limit stays within ±20% of `c` (up to `end`), or -1. */
export function settledAt(limits: number[], c: number, from = 0, end = limits.length): number {
  let at = -1;
  for (let i = from; i < end; i++) {
    const l = limits[i] as number;
    const ok = l >= 0.8 * c && l <= 1.2 * c;
    if (!ok) at = -1;
    else if (at < 0) at = i;
  }
  return at < 0 ? -1 : at - from;
}

/** A seeded PRNG (mulberry32): uniform in [0, 1), the same sequence for the same seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
