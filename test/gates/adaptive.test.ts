import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TimeoutError } from '../../src/errors.js';
import { adaptive, isOverload } from '../../src/gates/adaptive.js';
import { seeded, settledAt, simulate } from './downstream-sim.js';

const N = 20_000;

function run(name: 'gradient' | 'aimd', c: number, initial: number) {
  const clock = { now: 0 };
  const limit = adaptive({ min: 1, max: 1000, initial, algorithm: name, now: () => clock.now });
  // Capacity c, halved for the second third of the run, restored for the last.
  const capacity = (i: number) => (i < N || i >= 2 * N ? c : c / 2);
  const limits = simulate(limit, clock, capacity, 3 * N);
  return {
    limits,
    up: settledAt(limits, c, 0, N),
    down: settledAt(limits, c / 2, N, 2 * N),
    back: settledAt(limits, c, 2 * N, 3 * N),
  };
}

// Samples (settled jobs, refusals included) until the limit stays within ±20% of the capacity.
// Measured with the defaults; the bounds leave headroom over the measured figures.
const cases = [
  { name: 'gradient', c: 10, fromMin: 500, fromMax: 2_000, down: 500, back: 500 },
  { name: 'gradient', c: 50, fromMin: 1_000, fromMax: 2_000, down: 1_000, back: 1_000 },
  { name: 'gradient', c: 200, fromMin: 2_000, fromMax: 2_000, down: 2_000, back: 3_000 },
  { name: 'aimd', c: 50, fromMin: 1_000, fromMax: 10_000, down: 1_000, back: 1_000 },
] as const;

describe('adaptive concurrency on a simulated downstream', () => {
  for (const k of cases) {
    it(`${k.name} converges to capacity ${k.c} from min and max, follows it halving and recovering`, () => {
      const fromMin = run(k.name, k.c, 1);
      const fromMax = run(k.name, k.c, 1000);
      for (const r of [fromMin, fromMax]) {
        expect(r.down).toBeGreaterThanOrEqual(0);
        expect(r.down).toBeLessThanOrEqual(k.down);
        expect(r.back).toBeGreaterThanOrEqual(0);
        expect(r.back).toBeLessThanOrEqual(k.back);
        for (const l of r.limits) expect(Number.isInteger(l) && l >= 1 && l <= 1000).toBe(true);
      }
      expect(fromMin.up).toBeGreaterThanOrEqual(0);
      expect(fromMin.up).toBeLessThanOrEqual(k.fromMin);
      expect(fromMax.up).toBeGreaterThanOrEqual(0);
      expect(fromMax.up).toBeLessThanOrEqual(k.fromMax);
    });
  }

  it('never leaves [min, max] on a narrow range', () => {
    const clock = { now: 0 };
    const limit = adaptive({ min: 20, max: 30, algorithm: 'aimd', now: () => clock.now });
    const limits = simulate(limit, clock, (i) => (i < 5000 ? 5 : 500), 10_000);
    expect(Math.min(...limits)).toBe(20);
    expect(Math.max(...limits)).toBe(30);
  });

  it('records why the limit moved', () => {
    const clock = { now: 0 };
    const limit = adaptive({ min: 1, max: 100, initial: 50, history: 3, now: () => clock.now });
    clock.now = 10;
    limit.onSample({ rtt: 5, inflight: 50, dropped: true });
    expect(limit.stats()).toEqual({
      current: 25,
      min: 1,
      max: 100,
      history: [{ at: 10, from: 50, to: 25, reason: 'drop' }],
    });
  });
});

describe('gradient reactions', () => {
  function limitAt(initial: number) {
    const clock = { now: 0 };
    const limit = adaptive({ min: 1, max: 1000, initial, now: () => clock.now });
    // One finished job: settles at `at` after running `rtt` ms.
    const feed = (at: number, rtt: number, inflight: number, dropped = false) => {
      clock.now = at;
      return limit.onSample({ rtt, inflight, dropped });
    };
    return { limit, feed };
  }

  it('slow start doubles once per measured round and leaves at limit x gradient', () => {
    const { feed } = limitAt(4);
    expect(feed(100, 100, 4)).toBe(8);
    // This round's jobs started before the move: they measure 4, not 8.
    expect(feed(200, 100, 8)).toBe(8);
    expect(feed(300, 100, 8)).toBe(16);
    expect(feed(400, 100, 16)).toBe(16);
    // Twice as slow as the baseline at 16: the knee is about 8.
    expect(feed(600, 200, 16)).toBe(8);
  });

  it('cuts to half of what got in when the jobs running at a drop come back refused', () => {
    const { limit, feed } = limitAt(64);
    expect(feed(200, 200, 64, true)).toBe(32);
    // Refusals of jobs started before the cut: of the 64 running, 32 were turned away.
    for (let i = 2; i <= 32; i++) feed(200 + i, 200, 64 - i + 1, true);
    expect(limit.limit).toBe(16);
    expect(limit.history.at(-1)?.reason).toBe('drop');
    // A refusal of a job started after the cut is a new drop: the limit halves again.
    expect(feed(420, 200, 16, true)).toBe(8);
  });

  it('counts a refusal started before the last latency round against drops, not ignoring it', () => {
    const { limit, feed } = limitAt(32);
    expect(feed(100, 100, 32, true)).toBe(16);
    // The first round after the cut measured the old limit: it does not grow.
    expect(feed(200, 90, 16)).toBe(16);
    expect(feed(300, 90, 16)).toBe(18);
    // Started at 120: before the latency round that ended at 300, after the last drop cut.
    expect(feed(320, 200, 18, true)).toBe(9);
    expect(limit.history.at(-1)).toEqual({ at: 320, from: 18, to: 9, reason: 'drop' });
  });
});

describe('gradient through run-time jitter', () => {
  // Mean limit over the second half of 20000 samples, min 2, max 64, each run time
  // base + uniform(-spread, +spread) from a seeded PRNG.
  function meanLimit(base: number, spread: number, capacity: number) {
    const clock = { now: 0 };
    const limit = adaptive({ min: 2, max: 64, now: () => clock.now });
    const random = seeded(1);
    const jitter = () => (2 * random() - 1) * spread;
    const limits = simulate(limit, clock, () => capacity, 20_000, base, jitter).slice(10_000);
    return limits.reduce((a, b) => a + b, 0) / limits.length;
  }

  it.each([
    { base: 5, spread: 1.5 },
    { base: 2, spread: 1 },
  ])(
    'keeps the limit near max when $base ms ± $spread ms jobs do not slow with concurrency',
    ({ base, spread }) => {
      // Measured 61.7 and 62.5; a 5% noise band alone held both at 2.
      expect(meanLimit(base, spread, Number.POSITIVE_INFINITY)).toBeGreaterThanOrEqual(56);
    },
  );

  it('still finds a knee of 16 through jitter, closely when the jitter is small', () => {
    // Measured 25.5: ± 30% jitter hides part of the rise (at 24 the jobs take 1.5x base).
    const noisy = meanLimit(5, 1.5, 16);
    expect(noisy).toBeGreaterThanOrEqual(14);
    expect(noisy).toBeLessThanOrEqual(30);
    // Measured 17.4.
    const quiet = meanLimit(100, 1, 16);
    expect(quiet).toBeGreaterThanOrEqual(0.8 * 16);
    expect(quiet).toBeLessThanOrEqual(1.2 * 16);
  });
});

describe('adaptive limit invariants', () => {
  const sample = fc.record({
    rtt: fc.oneof(
      fc.double({ min: 0, max: 1e6, noNaN: true }),
      fc.constantFrom(0, Number.NaN, Infinity),
    ),
    inflight: fc.nat(2000),
    dropped: fc.boolean(),
    dt: fc.double({ min: 0, max: 1000, noNaN: true }),
  });
  for (const name of ['gradient', 'aimd'] as const) {
    it(`${name}: the limit is an integer in [min, max] after any sample sequence`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 100 }),
          fc.integer({ min: 0, max: 500 }),
          fc.array(sample, { maxLength: 300 }),
          (min, span, samples) => {
            const clock = { now: 0 };
            const limit = adaptive({ min, max: min + span, algorithm: name, now: () => clock.now });
            for (const s of samples) {
              clock.now += s.dt;
              const l = limit.onSample(s);
              expect(Number.isInteger(l) && l >= min && l <= min + span).toBe(true);
            }
          },
        ),
      );
    });
  }
});

describe('overload classification', () => {
  it('counts timeouts and HTTP 429/503 as overload, other failures not', () => {
    expect(isOverload(new TimeoutError(100))).toBe(true);
    expect(isOverload(Object.assign(new Error('busy'), { status: 503 }))).toBe(true);
    expect(isOverload(Object.assign(new Error('slow down'), { statusCode: 429 }))).toBe(true);
    expect(isOverload({ response: { status: 429 } })).toBe(true);
    expect(isOverload(Object.assign(new Error('missing'), { status: 404 }))).toBe(false);
    expect(isOverload(new TypeError('bug'))).toBe(false);
    expect(isOverload(undefined)).toBe(false);
  });
});

describe('adaptive options', () => {
  it.each([
    [{ min: 0, max: 5 }, /"adaptive\.min"/],
    [{ min: 5, max: 4 }, /"adaptive\.max"/],
    [{ min: 1, max: 5, initial: 9 }, /"adaptive\.initial"/],
    [{ min: 1, max: 5, history: 0 }, /"adaptive\.history"/],
    [{ min: 1, max: 5, now: 3 }, /"adaptive\.now"/],
    [{ min: 1, max: 5, algorithm: 'vegas' }, /"adaptive\.algorithm"/],
    [{ min: 1, max: 5, algorithm: { name: 'aimd', backoff: 1 } }, /"adaptive\.algorithm\.backoff"/],
    [{ min: 1, max: 5, algorithm: { name: 'aimd', window: 0 } }, /"adaptive\.algorithm\.window"/],
    [
      { min: 1, max: 5, algorithm: { name: 'gradient', smoothing: 0 } },
      /"adaptive\.algorithm\.smoothing"/,
    ],
    [
      { min: 1, max: 5, algorithm: { name: 'gradient', tolerance: 0.5 } },
      /"adaptive\.algorithm\.tolerance"/,
    ],
    [
      { min: 1, max: 5, algorithm: { name: 'gradient', longWindow: 1.5 } },
      /"adaptive\.algorithm\.longWindow"/,
    ],
  ])('refuses %o naming the option by its path', (opts, name) => {
    expect(() => adaptive(opts as never)).toThrow(name);
  });

  it('says which option, what it expected and what it got', () => {
    expect(() => adaptive({ min: 5, max: 4 })).toThrow(
      expect.objectContaining({
        name: 'RangeError',
        code: 'ERR_INVALID_OPTION',
        message: 'Invalid option "adaptive.max": expected an integer >= adaptive.min (5), got 4',
      }),
    );
  });
});
