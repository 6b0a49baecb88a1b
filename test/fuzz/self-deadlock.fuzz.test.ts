/**
 * Random re-entrant workloads on a Pool with `detectDeadlock`: trees of jobs whose workers call
 * `run` (awaiting the child's result) or `submit` (awaiting acceptance) on their own pool, one
 * child at a time or all at once, under random concurrency and queue sizes, with several
 * top-level callers. Nothing may hang: every top-level call settles, and every failure anywhere
 * is `ERR_SELF_DEADLOCK` — never another error, never a lost job.
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { Pool, SelfDeadlockError } from '../../src/index.js';
import { fuzzAssert, fuzzParams, settlesWithin, testTimeout } from './harness.js';

interface Node {
  via: 'run' | 'submit';
  /** Children awaited one after another, or together (Promise.all). */
  together: boolean;
  /** Yields this many turns before calling (other workers interleave). */
  yields: number;
  children: Node[];
}

/** A job tree at most `depth` levels deep. */
function tree(depth: number): fc.Arbitrary<Node> {
  return fc.record({
    via: fc.constantFrom<'run' | 'submit'>('run', 'run', 'submit'),
    together: fc.boolean(),
    yields: fc.nat(2),
    children: depth <= 1 ? fc.constant([]) : fc.array(tree(depth - 1), { maxLength: 3 }),
  });
}

const node = tree(4);

/** Runs `roots` on a fresh pool; reports refusals, other errors, and whether it hung. */
async function workload(
  concurrency: number,
  queueSize: number,
  roots: Node[],
  detectDeadlock: boolean,
): Promise<{ refused: number; unexpected: unknown[]; hung: string | undefined }> {
  const unexpected: unknown[] = [];
  const pending: Promise<unknown>[] = [];
  let refused = 0;
  let pool!: Pool<Node, string>;
  const note = (error: unknown) => {
    if (error instanceof SelfDeadlockError) refused++;
    else unexpected.push(error);
  };
  const call = (child: Node): Promise<unknown> => {
    // submit: the caller awaits acceptance only; run: the child's result.
    const p = child.via === 'run' ? pool.run(child) : pool.submit(child);
    pending.push(p.catch(note));
    return p;
  };
  pool = new Pool<Node, string>(
    async (job) => {
      for (let i = 0; i < job.yields; i++) await Promise.resolve();
      if (job.together) await Promise.all(job.children.map(call));
      else for (const child of job.children) await call(child);
      return 'done';
    },
    { concurrency, queueSize, detectDeadlock },
  );
  const tops = roots.map((root) => pool.run(root).catch(note));
  try {
    await settlesWithin(Promise.all(tops), 'the top-level runs', 500);
    await settlesWithin(Promise.all(pending), 'the re-entrant calls', 500);
    await settlesWithin(pool.drain(), 'drain', 500);
  } catch (error) {
    await pool.abort();
    return { refused, unexpected, hung: (error as Error).message };
  }
  return { refused, unexpected, hung: undefined };
}

describe('Pool self-deadlock detection under random re-entrant workloads', () => {
  it('never hangs: every call completes or fails with ERR_SELF_DEADLOCK', {
    timeout: testTimeout(30_000),
  }, async () => {
    await fuzzAssert(
      'self-deadlock',
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(node, { minLength: 1, maxLength: 4 }),
        async (concurrency, queueSize, roots) => {
          const on = await workload(concurrency, queueSize, roots, true);
          if (on.unexpected.length > 0) throw on.unexpected[0];
          if (on.hung) throw new Error(`hang with detectDeadlock: ${on.hung}`);
          if (on.refused === 0) return;
          // A refusal must have been a real deadlock: the same workload without detection
          // (scheduled identically up to that call) hangs.
          const off = await workload(concurrency, queueSize, roots, false);
          if (!off.hung) {
            throw new Error(
              `refused ${on.refused} call(s) that could proceed: without detection it completed`,
            );
          }
        },
      ),
      fuzzParams(2),
    );
  });
});
