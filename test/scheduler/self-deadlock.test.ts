import { describe, expect, it } from 'vitest';
import { Pool, SelfDeadlockError, type Task, TimeoutError } from '../../src/index.js';
import { deferred, flush } from '../helpers.js';

type Job = { name: string; child?: string; via?: 'run' | 'submit' };

/**
 * A pool whose workers wait on latches the test opens (`open(name)`), then call `run`/`submit`
 * on their own pool for `child` when given one; outcomes of those calls land in `calls`.
 */
function reentrant(opts: { concurrency: number; queueSize?: number; timeout?: number }) {
  const latches = new Map<string, ReturnType<typeof deferred<void>>>();
  const latch = (name: string) => {
    let d = latches.get(name);
    if (!d) {
      d = deferred<void>();
      latches.set(name, d);
    }
    return d;
  };
  const calls = new Map<string, Promise<unknown>>();
  const pool: Pool<Job, string> = new Pool<Job, string>(
    async (job) => {
      await latch(job.name).promise;
      if (job.child !== undefined) {
        const child: Job = { name: job.child };
        const call =
          job.via === 'submit'
            ? pool.submit(child).then((task: Task<Job, string>) => task.job.name)
            : pool.run(child);
        calls.set(job.name, call);
        try {
          return `${job.name}: ${await call}`;
        } catch (error) {
          return `${job.name}: ${(error as SelfDeadlockError).code}`;
        }
      }
      return job.name;
    },
    { ...opts, detectDeadlock: true },
  );
  return { pool, calls, open: (name: string) => latch(name).resolve() };
}

describe('self-deadlock detection', () => {
  it("fails a worker's run on its own pool when the only slot is its own", async () => {
    const { pool, open } = reentrant({ concurrency: 1 });
    const parent = pool.run({ name: 'p', child: 'c' });
    open('p');
    expect(await parent).toBe('p: ERR_SELF_DEADLOCK');
    // Nothing was accepted for the refused call.
    expect(pool.stats().submitted).toBe(1);
    await pool.drain();
  });

  it('refuses the grandchild when parent and child both wait on the pool', async () => {
    let pool!: Pool<number, number>;
    const errors: unknown[] = [];
    pool = new Pool<number, number>(
      async (depth) => {
        if (depth === 0) return 0;
        try {
          return 1 + (await pool.run(depth - 1));
        } catch (error) {
          errors.push(error);
          return -100;
        }
      },
      { concurrency: 2, detectDeadlock: true },
    );
    // depth 2 runs depth 1 on the second slot; depth 1's run(0) finds both slots waiting.
    expect(await pool.run(2)).toBe(1 + -100);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SelfDeadlockError);
    expect(errors[0]).toMatchObject({ code: 'ERR_SELF_DEADLOCK', running: 2 });
    await pool.drain();
  });

  it('lets a recursion as deep as the pool complete', async () => {
    let pool!: Pool<number, number>;
    pool = new Pool<number, number>(
      async (depth) => (depth === 0 ? 0 : 1 + (await pool.run(depth - 1))),
      { concurrency: 4, detectDeadlock: true },
    );
    expect(await pool.run(3)).toBe(3); // 4 nested jobs, 4 slots: the deepest runs
    await pool.drain();
  });

  it('fails the parked submit of the last free worker when the queue is full, and only that one', async () => {
    const { pool, calls, open } = reentrant({ concurrency: 2, queueSize: 1 });
    const a = await pool.submit({ name: 'a', child: 'a-child', via: 'submit' });
    const b = await pool.submit({ name: 'b', child: 'b-child', via: 'submit' });
    await pool.submit({ name: 'q' }); // fills the queue
    open('a');
    await flush();
    // a's submit waits for room; b still runs freely: a could proceed, so it is not refused.
    expect(pool.stats()).toMatchObject({ running: 2, queued: 1 });
    open('b');
    // b's submit would leave both running workers waiting: refused at once.
    expect((await b.result).ok && (await b.result)).toMatchObject({
      value: 'b: ERR_SELF_DEADLOCK',
    });
    // b returned, its slot went to q, and a's submit got its room.
    open('q');
    expect(await calls.get('a')).toBe('a-child');
    expect(await a.result).toMatchObject({ ok: true, value: 'a: a-child' });
    open('a-child');
    await pool.drain();
  });

  it('never refuses a submit that finds room in the queue', async () => {
    const { pool, calls, open } = reentrant({ concurrency: 1, queueSize: 1 });
    const p = await pool.submit({ name: 'p', child: 'c', via: 'submit' });
    open('p');
    expect(await p.result).toMatchObject({ ok: true, value: 'p: c' });
    expect(await calls.get('p')).toBe('c');
    open('c');
    await pool.drain();
  });

  it('never refuses while some running job is not waiting on the pool', async () => {
    const { pool, open } = reentrant({ concurrency: 2 });
    const free = await pool.submit({ name: 'free' });
    const waiter = await pool.submit({ name: 'w', child: 'c' });
    open('w');
    open('c');
    await flush();
    // c is queued behind 'free' and 'w'; 'free' will end and let c start.
    expect(pool.stats()).toMatchObject({ running: 2, queued: 1 });
    open('free');
    expect(await free.result).toMatchObject({ ok: true });
    expect(await waiter.result).toMatchObject({ ok: true, value: 'w: c' });
    await pool.drain();
  });

  it('never refuses a call into another pool', async () => {
    const other = new Pool<number, number>(async (x) => x + 1, {
      concurrency: 1,
      detectDeadlock: true,
    });
    const pool = new Pool<number, number>(async (x) => other.run(x), {
      concurrency: 1,
      detectDeadlock: true,
    });
    expect(await Promise.all([pool.run(1), pool.run(2)])).toEqual([2, 3]);
    await Promise.all([pool.drain(), other.drain()]);
  });

  it('never refuses on a pool with a timeout: the timeout frees the slot', async () => {
    const child = deferred<string>();
    const pool = new Pool<string, string>(
      async (job, { signal }) => {
        if (job === 'p') {
          void pool.run('c').then(child.resolve, child.reject);
          await new Promise((resolve) => signal.addEventListener('abort', resolve));
          return 'p';
        }
        return job;
      },
      { concurrency: 1, timeout: 20, detectDeadlock: true },
    );
    const parent = await pool.submit('p');
    const result = await parent.result;
    expect(!result.ok && result.error).toBeInstanceOf(TimeoutError);
    expect(await child.promise).toBe('c');
    await pool.drain();
  });

  it('is off by default: the same call waits instead of failing', async () => {
    const settled = deferred<string>();
    const pool = new Pool<string, string>(
      async (job) => {
        if (job === 'p') {
          pool.run('c').then(
            (v) => settled.resolve(`ran ${v}`),
            (e: Error) => settled.resolve(e.name),
          );
          await settled.promise;
        }
        return job;
      },
      { concurrency: 1 },
    );
    const parent = await pool.submit('p');
    await flush();
    await flush();
    expect(pool.stats()).toMatchObject({ running: 1, queued: 1 }); // hung: c cannot start
    await pool.abort();
    expect(await settled.promise).toBe('AbortError');
    expect((await parent.result).ok).toBe(false);
  });
  it('starts jobs in the same order as without detection, so it refuses only where the same order would hang', async () => {
    // Two call trees on 4 slots: A runs A0, which submits A00, which runs A000 then A001; B runs
    // B0 → B00 → B000 (B needs all 4 slots at once, so it can finish only after A). Without
    // detection A takes the slots first and both finish; detection must not reorder the starts
    // (a run() from a worker once took extra ticks with it on, B took the slot A001 needed, and
    // a deadlock that the plain pool never meets was refused).
    type Node = { name: string; via: 'run' | 'submit'; children: Node[] };
    const leaf = (name: string): Node => ({ name, via: 'run', children: [] });
    const chain = (names: string[]): Node => {
      const [first, ...rest] = names as [string, ...string[]];
      return { name: first, via: 'run', children: rest.length ? [chain(rest)] : [] };
    };
    const roots: Node[] = [
      {
        name: 'A',
        via: 'run',
        children: [
          {
            name: 'A0',
            via: 'run',
            children: [{ name: 'A00', via: 'submit', children: [leaf('A000'), leaf('A001')] }],
          },
        ],
      },
      chain(['B', 'B0', 'B00', 'B000']),
    ];
    const order = async (detectDeadlock: boolean) => {
      const starts: string[] = [];
      const calls: Promise<unknown>[] = [];
      const pool: Pool<Node, string> = new Pool<Node, string>(
        async (job) => {
          starts.push(job.name);
          for (const child of job.children) {
            const call = child.via === 'run' ? pool.run(child) : pool.submit(child);
            calls.push(call);
            await call;
          }
          return job.name;
        },
        { concurrency: 4, queueSize: 0, detectDeadlock },
      );
      const results = await Promise.allSettled(roots.map((root) => pool.run(root)));
      await Promise.allSettled(calls);
      await pool.drain();
      return { starts, results: results.map((r) => r.status) };
    };
    const plain = await order(false);
    expect(plain.results).toEqual(['fulfilled', 'fulfilled']);
    expect(await order(true)).toEqual(plain);
  });
});
