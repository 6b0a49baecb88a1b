import { afterEach, describe, expect, it, vi } from 'vitest';
import { AbortError, runPool } from '../../src/index.js';
import { flush } from '../helpers.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('runPool gates at an abort', () => {
  it('an abort while several jobs wait to retry yields each of them before the iteration ends', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const ac = new AbortController();
    const it = runPool(
      [0, 1],
      (n: number) => {
        throw new Error(`fail ${n}`);
      },
      { concurrency: 1, buffer: 1, retry: { attempts: 2, backoff: () => 1000 }, signal: ac.signal },
    );
    const first = it.next();
    const second = it.next();
    await flush();
    ac.abort();
    const results = [await first, await second];
    expect(results.map((r) => r.done)).toEqual([false, false]);
    const values = results.map((r) => (r.done ? undefined : r.value));
    expect(values.map((v) => v?.index).sort()).toEqual([0, 1]);
    for (const v of values) {
      expect(v?.ok).toBe(false);
      if (v && !v.ok) expect(v.error).toBeInstanceOf(AbortError);
    }
    expect(await it.next()).toEqual({ done: true, value: undefined });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('with retry, a job a pending pull brings after an abort carries attempts: 0 and its cancel in errors', async () => {
    const ac = new AbortController();
    async function* source() {
      await null;
      yield 1;
    }
    const it = runPool(source(), (n: number) => n, {
      concurrency: 1,
      retry: { attempts: 2 },
      signal: ac.signal,
    });
    const pending = it.next();
    ac.abort();
    const step = await pending;
    expect(step.done).toBe(false);
    const result = step.value;
    expect(result).toMatchObject({ ok: false, index: 0, attempts: 0 });
    if (result && !result.ok) {
      expect(result.error).toBeInstanceOf(AbortError);
      expect(result.errors).toEqual([result.error]);
    }
  });
});
