// The consumer's option helpers, without a broker.
import { describe, expect, it } from 'vitest';
import { backoffFunction } from '../../src/brokers/consumer-options.js';

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
