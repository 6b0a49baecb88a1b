/**
 * runPool's lean engine (no timeout, gate, adaptive limit or watchdog: scheduler/lean-engine.ts)
 * against the gated engine (`retry: { attempts: 1 }`: every job through the gates' queue and a
 * JobRun, never a retry): the same results on random workloads, the same limits on running
 * workers, and what is specific to the lean path (abort and break reach running workers).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AbortError, type Result, runPool } from '../src/index.js';
import { type OutcomeKind, scriptedOutcome } from './fixtures/scripted-outcome.js';
import { deferred, flush } from './helpers.js';

type Kind = Exclude<OutcomeKind, 'sync-thenable' | 'own-then'>;
interface Spec {
  kind: Kind;
  /** Microtask turns before an async outcome. */
  delay: number;
}

const spec: fc.Arbitrary<Spec> = fc.record({
  kind: fc.constantFrom<Kind>('value', 'throw', 'resolve', 'reject', 'thenable', 'non-error'),
  delay: fc.nat(6),
});

interface Seen {
  results: { index: number; ok: boolean; value?: unknown; error?: string }[];
  /** What a spread of the worker's context keeps (the first job's). */
  ctxKeys: string[];
  maxRunning: number;
  badWorkerId: boolean;
}

async function drive(specs: Spec[], opts: object, concurrency: number): Promise<Seen> {
  let running = 0;
  let maxRunning = 0;
  let badWorkerId = false;
  const busy = new Set<number>();
  let ctxKeys: string[] = [];
  const worker = (i: number, ctx: { index: number; workerId: number }): unknown => {
    const s = specs[i] as Spec;
    if (i === 0) ctxKeys = Object.keys({ ...ctx }).sort();
    if (ctx.index !== i || ctx.workerId < 0 || ctx.workerId >= concurrency) badWorkerId = true;
    if (busy.has(ctx.workerId)) badWorkerId = true;
    busy.add(ctx.workerId);
    running++;
    maxRunning = Math.max(maxRunning, running);
    const done = () => {
      running--;
      busy.delete(ctx.workerId);
    };
    return scriptedOutcome(s.kind, i, s.delay, done);
  };
  const results: Seen['results'] = [];
  for await (const r of runPool(
    specs.map((_, i) => i),
    worker,
    { concurrency, ...opts },
  ) as AsyncIterable<Result<number, unknown>>) {
    results.push(
      r.ok
        ? { index: r.index, ok: true, value: r.value }
        : { index: r.index, ok: false, error: String((r.error as Error).message) },
    );
  }
  return { results, ctxKeys, maxRunning, badWorkerId };
}

describe('runPool: the lean path behaves as the gated engine', () => {
  it('same results, same limits, on random workloads', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(spec, { maxLength: 40 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 3 }),
        fc.boolean(),
        async (specs, concurrency, buffer, ordered) => {
          const base = { buffer, ordered };
          const lean = await drive(specs, base, concurrency);
          const gated = await drive(specs, { ...base, retry: { attempts: 1 } }, concurrency);
          for (const seen of [lean, gated]) {
            expect(seen.badWorkerId).toBe(false);
            expect(seen.maxRunning).toBeLessThanOrEqual(concurrency);
            expect(seen.results).toHaveLength(specs.length);
            if (ordered) expect(seen.results.map((r) => r.index)).toEqual(specs.map((_, i) => i));
          }
          const byIndex = (s: Seen) => [...s.results].sort((a, b) => a.index - b.index);
          expect(byIndex(lean)).toEqual(byIndex(gated));
          expect(lean.ctxKeys).toEqual(gated.ctxKeys);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('abort: running workers see their signal abort, each job yields once, as AbortError', async () => {
    const ac = new AbortController();
    const gate = deferred<void>();
    const seen: AbortSignal[] = [];
    const it = runPool(
      [0, 1, 2, 3, 4, 5],
      async (_job, ctx) => {
        seen.push(ctx.signal);
        await gate.promise;
        return 1;
      },
      { concurrency: 3, signal: ac.signal },
    );
    const first = it.next();
    await flush();
    expect(seen).toHaveLength(3);
    ac.abort();
    expect(seen.every((s) => s.aborted && s.reason instanceof AbortError)).toBe(true);
    const results = [(await first).value as Result<number, number>];
    for await (const r of it) results.push(r);
    expect(results.map((r) => r.index).sort()).toEqual([0, 1, 2]);
    expect(results.every((r) => !r.ok && r.error instanceof AbortError)).toBe(true);
    // The workers returning at last change nothing.
    gate.resolve();
    await flush();
  });

  it('break: running workers are aborted, their late results dropped', async () => {
    const gate = deferred<void>();
    const seen: AbortSignal[] = [];
    for await (const r of runPool(
      [0, 1, 2, 3],
      async (job, ctx) => {
        seen.push(ctx.signal);
        if (job > 0) await gate.promise;
        return job;
      },
      { concurrency: 2 },
    )) {
      expect(r.ok && r.value).toBe(0);
      break;
    }
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.slice(1).every((s) => s.aborted)).toBe(true);
    gate.resolve();
    await flush();
  });
});
