// The consumer's option helpers, without a broker.
import { describe, expect, it } from 'vitest';
import { backoffFunction } from '../../src/brokers/consumer-options.js';
import { backoffDelays } from '../../src/gates/backoff.js';

describe('a backoff function', () => {
  it('that returns an object is reported with what it returned, not [object Object]', () => {
    const delay = backoffFunction(() => ({ ms: 5 }) as unknown as number);
    expect(() => delay(3)).toThrow(
      'backoff function returned an object { ms: 5 } for delivery 3: expected a number of ms >= 0',
    );
  });

  it('that returns a symbol is reported without the message itself throwing', () => {
    const delay = backoffFunction(() => Symbol('later') as unknown as number);
    expect(() => delay(1)).toThrow(RangeError);
    expect(() => delay(1)).toThrow(/returned Symbol\(later\) for delivery 1/);
  });
});

describe("consume()'s backoff object: the same defaults and checks as a pool's retry.backoff", () => {
  const none = new Error('x');

  it('caps at 30 s by default, as retry.backoff does (was 60 s)', () => {
    const consumer = backoffFunction({ jitter: 0 });
    const pool = backoffDelays('retry.backoff', { jitter: 0 });
    for (const n of [1, 2, 5, 6, 7, 10, 40]) expect(consumer(n)).toBe(pool(n, none));
    expect(consumer(1)).toBe(1000);
    expect(consumer(10)).toBe(30_000);
  });

  it('an initial delay above 30 s without a max is kept, as retry.backoff keeps it', () => {
    expect(backoffFunction({ initial: 45_000, jitter: 0 })(3)).toBe(45_000);
  });

  it('a max below initial is refused naming backoff.max, as retry.backoff refuses it', () => {
    expect(() => backoffFunction({ initial: 5000, max: 1000 })).toThrow(/"backoff.max"/);
    expect(() => backoffDelays('retry.backoff', { initial: 5000, max: 1000 })).toThrow(
      /"retry.backoff.max"/,
    );
  });

  it('jitter takes the same share of each delay, rounded to whole ms', () => {
    const delay = backoffFunction({ initial: 1000, jitter: 0.5 });
    for (let i = 0; i < 50; i++) {
      const d = delay(1);
      expect(Number.isInteger(d)).toBe(true);
      expect(d).toBeGreaterThanOrEqual(500);
      expect(d).toBeLessThanOrEqual(1000);
    }
  });
});
