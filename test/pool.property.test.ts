import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Pool, type Result, runPool } from '../src/index.js';
import { flush } from './helpers.js';

/** A job: how many macrotask turns it takes, and how it ends. */
interface Spec {
  turns: number;
  end: 'value' | 'throw' | 'sync-throw' | 'sync-value';
}

const spec: fc.Arbitrary<Spec> = fc.record({
  turns: fc.integer({ min: 0, max: 3 }),
  end: fc.constantFrom('value', 'throw', 'sync-throw', 'sync-value'),
});

function makeWorker() {
  const state = { running: 0, peak: 0, calls: new Map<number, number>() };
  const worker = (job: { id: number; spec: Spec }): number | Promise<number> => {
    state.calls.set(job.id, (state.calls.get(job.id) ?? 0) + 1);
    if (job.spec.end === 'sync-throw') throw new Error(`sync ${job.id}`);
    if (job.spec.end === 'sync-value') return job.id;
    state.running++;
    state.peak = Math.max(state.peak, state.running);
    return (async () => {
      try {
        for (let t = 0; t < job.spec.turns; t++) await flush();
        if (job.spec.end === 'throw') throw new Error(`async ${job.id}`);
        return job.id;
      } finally {
        state.running--;
      }
    })();
  };
  return { worker, state };
}

function checkResults(
  jobs: { id: number; spec: Spec }[],
  results: Result<{ id: number; spec: Spec }, number>[],
) {
  // Nothing lost, nothing duplicated, each outcome matches its job.
  expect(results.map((r) => r.job.id).sort((a, b) => a - b)).toEqual(jobs.map((j) => j.id));
  for (const r of results) {
    const failing = r.job.spec.end === 'throw' || r.job.spec.end === 'sync-throw';
    expect(r.ok).toBe(!failing);
    if (r.ok) expect(r.value).toBe(r.job.id);
    expect(r.index).toBe(r.job.id);
  }
}

describe('property: runPool', () => {
  it('every job yields exactly once, concurrency is never exceeded, ordered keeps input order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(spec, { maxLength: 40 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 4 }),
        fc.boolean(),
        fc.boolean(),
        async (specs, concurrency, buffer, ordered, asyncSource) => {
          const jobs = specs.map((s, id) => ({ id, spec: s }));
          const { worker, state } = makeWorker();
          const source = asyncSource
            ? (async function* () {
                for (const j of jobs) yield j;
              })()
            : jobs;
          const results: Result<{ id: number; spec: Spec }, number>[] = [];
          for await (const r of runPool(source, worker, { concurrency, buffer, ordered })) {
            results.push(r);
          }
          checkResults(jobs, results);
          expect(state.peak).toBeLessThanOrEqual(concurrency);
          expect([...state.calls.values()].every((n) => n === 1)).toBe(true);
          if (ordered) expect(results.map((r) => r.index)).toEqual(jobs.map((j) => j.id));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('property: Pool', () => {
  it('every accepted job settles once, limits hold across resizes, cancels and a final drain', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(spec, { maxLength: 40 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 6 }),
        fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 4 }),
        fc.array(fc.nat({ max: 39 }), { maxLength: 8 }),
        async (specs, concurrency, queueSize, resizes, cancels) => {
          const jobs = specs.map((s, id) => ({ id, spec: s }));
          const { worker, state } = makeWorker();
          let limit = concurrency;
          let peakOverLimit = 0;
          const pool = new Pool(
            (job: { id: number; spec: Spec }) => {
              peakOverLimit = Math.max(peakOverLimit, pool.stats().running - limit);
              return worker(job);
            },
            { concurrency, queueSize },
          );
          const controllers = new Map<number, AbortController>();
          const results: Promise<Result<{ id: number; spec: Spec }, number>>[] = [];
          for (const job of jobs) {
            const ac = new AbortController();
            controllers.set(job.id, ac);
            results.push((await pool.submit(job, { signal: ac.signal })).result);
            const r = resizes[job.id % 7];
            if (r !== undefined && job.id % 7 === 0) {
              limit = Math.max(limit, r); // running may exceed a shrunk limit until jobs finish
              pool.resize(r);
            }
            if (cancels.includes(job.id)) controllers.get(job.id)?.abort();
          }
          await pool.drain();
          const settled = await Promise.all(results);
          expect(settled.map((r) => r.job.id).sort((a, b) => a - b)).toEqual(jobs.map((j) => j.id));
          expect(new Set(settled.map((r) => r.index)).size).toBe(jobs.length);
          expect([...state.calls.values()].every((n) => n === 1)).toBe(true);
          expect(peakOverLimit).toBeLessThanOrEqual(0);
          const s = pool.stats();
          expect(s.succeeded + s.failed + s.canceled + s.timedOut + s.crashed).toBe(jobs.length);
          expect(s.running + s.queued).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });
});
