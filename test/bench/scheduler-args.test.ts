/** bench/scheduler.ts's arguments: `--extras=` names contenders whose names may hold a comma. */
import { describe, expect, it } from 'vitest';
import { extrasList } from '../../bench/scheduler.js';

describe('bench/scheduler.ts --extras', () => {
  it('keeps a contender whose name holds a comma whole, wherever it comes in the list', () => {
    expect(extrasList('runPool, gated (retry: 1 attempt),Pool + rate')).toEqual([
      'runPool, gated (retry: 1 attempt)',
      'Pool + rate',
    ]);
    expect(extrasList('Pool + rate,runPool, gated (retry: 1 attempt)')).toEqual([
      'Pool + rate',
      'runPool, gated (retry: 1 attempt)',
    ]);
  });

  it('takes a name that prefixes a longer one on its own, and spaces after a comma', () => {
    expect(extrasList('runPool,Pool + rate, ref: minimal Pool')).toEqual([
      'runPool',
      'Pool + rate',
      'ref: minimal Pool',
    ]);
  });

  it('fails on an unknown name, naming it', () => {
    expect(() => extrasList('Pool + rat')).toThrow(/no contender named at "Pool \+ rat"/);
  });
});
