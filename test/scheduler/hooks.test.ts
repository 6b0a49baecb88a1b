import { describe, expect, it } from 'vitest';
import { Pool, runPool } from '../../src/index.js';
import { HOOKS, type JobHooks } from '../../src/scheduler/hooks.js';

/** Records every hook call as `event:index(:attempt)`. */
function recorder() {
  const events: string[] = [];
  const hooks: JobHooks<number> = {
    accepted: (_job, index) => events.push(`accepted:${index}`),
    started: (_job, index, attempt) => events.push(`started:${index}:${attempt}`),
    retried: (_job, index, attempt) => events.push(`retried:${index}:${attempt}`),
    settled: (_job, index, error) => events.push(`settled:${index}:${error ? 'error' : 'ok'}`),
  };
  return { events, hooks };
}

/** Fails odd jobs on their first run. */
const flaky = () => {
  const seen = new Set<number>();
  return (n: number) => {
    if (n % 2 === 1 && !seen.has(n)) {
      seen.add(n);
      throw new Error(`first run of ${n}`);
    }
    return n;
  };
};

/** Each job's events in order: accepted, then (started, retried)*, started, settled. */
function checkLifecycle(events: string[], jobs: number) {
  for (let index = 0; index < jobs; index++) {
    const mine = events
      .filter((e) => e.split(':')[1] === String(index))
      .map((e) => e.split(':')[0]);
    const expected =
      index % 2 === 1
        ? ['accepted', 'started', 'retried', 'started', 'settled']
        : ['accepted', 'started', 'settled'];
    expect(mine, `job ${index}`).toEqual(expected);
  }
}

describe('lifecycle hooks: one place emits every event of every job', () => {
  it('Pool: accepted, started and retried per attempt, settled once', async () => {
    const { events, hooks } = recorder();
    const pool = new Pool(flaky(), {
      concurrency: 2,
      queueSize: 20,
      retry: { attempts: 2, backoff: () => 1 },
      [HOOKS]: hooks,
    } as never);
    for (let n = 0; n < 10; n++) pool.trySubmit(n);
    await pool.drain();
    checkLifecycle(events, 10);
  });

  it('runPool: the same events, in the same order', async () => {
    const { events, hooks } = recorder();
    const opts = { concurrency: 2, retry: { attempts: 2, backoff: () => 1 }, [HOOKS]: hooks };
    for await (const _ of runPool([0, 1, 2, 3, 4, 5], flaky(), opts as never)) {
      // drain the results
    }
    checkLifecycle(events, 6);
  });

  it('a throwing hook is dropped with a warning; the jobs still settle', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const pool = new Pool((n: number) => n, {
        concurrency: 1,
        [HOOKS]: {
          started: () => {
            throw new Error('hook bug');
          },
        },
      } as never);
      const results = await Promise.all([1, 2, 3].map((n) => pool.run(n)));
      expect(results).toEqual([1, 2, 3]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toEqual([expect.stringContaining('the started hook threw')]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
