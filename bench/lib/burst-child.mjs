// Child of bench/instructions.ts, run under callgrind on bare node (no TypeScript loader, whose
// own instructions would swamp a burst's). One process: load the contender, then optionally
// `warm` bursts of 50,000 jobs, then one burst of `n` jobs (n = 0: load only, the baseline the
// parent subtracts). With a `mix` (json, timers: bench/scheduler.ts's busy mixes made
// deterministic), `rounds` times: a fixed amount of the neighbour's work, then the burst — the
// neighbour's garbage is collected wherever the heap decides, so the count shows who pays it.
//   node --predictable burst-child.mjs <runPool|Pool|p-map|ref|ref-lean> <sluice dist dir> <warm> <n>
//     [<none|json|timers> <rounds>]
import { pathToFileURL } from 'node:url';

const [contender, dist, warmArg, nArg, mix = 'none', roundsArg = '1'] = process.argv.slice(2);
const warm = Number(warmArg);
const n = Number(nArg);
const CONCURRENCY = 16; // as bench/scheduler.ts
const double = async (x) => x * 2;
function* upTo(count) {
  for (let i = 0; i < count; i++) yield i;
}

let burst;
if (contender === 'p-map') {
  const { default: pMap } = await import('p-map');
  burst = async (count) => (await pMap(upTo(count), double, { concurrency: CONCURRENCY })).length;
} else if (contender === 'runPool') {
  const { runPool } = await import(pathToFileURL(`${dist}/index.js`).href);
  burst = async (count) => {
    let done = 0;
    for await (const result of runPool(upTo(count), double, { concurrency: CONCURRENCY })) {
      if (!result.ok) throw result.error;
      done++;
    }
    return done;
  };
} else if (contender === 'Pool') {
  // bench/scheduler.ts's Pool idiom: await submit (the backpressure), take each result.
  const { Pool } = await import(pathToFileURL(`${dist}/index.js`).href);
  burst = async (count) => {
    const pool = new Pool(double, { concurrency: CONCURRENCY });
    let settled = 0;
    let done;
    const all = new Promise((resolve) => {
      done = resolve;
    });
    const add = (result) => {
      if (!result.ok) throw result.error;
      if (++settled === count) done();
    };
    for (let i = 0; i < count; i++) (await pool.submit(i)).result.then(add);
    pool.close();
    await pool.drain();
    if (count > 0) await all;
    return settled;
  };
} else if (contender === 'ref') {
  // bench/scheduler.ts's "ref: minimal for-await pool": the least a runPool-shaped API costs.
  burst = async (count) => {
    const source = upTo(count);
    const ready = [];
    let head = 0;
    let running = 0;
    let exhausted = false;
    let waiter;
    const push = (result) => {
      running--;
      const w = waiter;
      waiter = undefined;
      if (w) {
        fill();
        w({ done: false, value: result });
      } else ready.push(result);
    };
    const fill = () => {
      while (!exhausted && running < CONCURRENCY && ready.length - head < CONCURRENCY) {
        const step = source.next();
        if (step.done) exhausted = true;
        else {
          running++;
          const job = step.value;
          double(job).then((value) => push({ job, value }));
        }
      }
    };
    const results = {
      [Symbol.asyncIterator]: () => results,
      next() {
        if (head < ready.length) {
          const value = ready[head];
          ready[head++] = undefined;
          if (head > 1024 && head * 2 > ready.length) {
            ready.splice(0, head);
            head = 0;
          }
          fill();
          return Promise.resolve({ done: false, value });
        }
        if (exhausted && running === 0) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => {
          waiter = resolve;
          fill();
        });
      },
    };
    let done = 0;
    for await (const _ of results) done++;
    return done;
  };
} else if (contender === 'ref-lean') {
  // The floor of runPool's lean path written the way p-map and the ref are: state in closure
  // variables (no property ICs before TurboFan, one context per pool), two hot entry points
  // (next() and the worker's promise reaction). What runPool's contract adds to the ref: a
  // Result per job ({ ok, job, index, value } or { ok: false, … error }), a context per job
  // (index, workerId in 0..concurrency-1, a lazy signal), sync throws and returns settled on a
  // microtask, the `concurrency + buffer` pull bound, waiting next() calls queued, return()
  // aborting the running jobs. Not covered: async sources, `ordered`, `signal`, hooks.
  class Ctx {
    constructor(index, workerId) {
      this.index = index;
      this.workerId = workerId;
      this.controller = undefined;
    }
    get signal() {
      this.controller ??= new AbortController();
      return this.controller.signal;
    }
  }
  const leanPool = (jobs, worker, concurrency, buffer = concurrency) => {
    const source = jobs[Symbol.iterator]();
    const ready = [];
    let head = 0;
    const waiting = [];
    const free = [];
    const busy = [];
    let minted = 0;
    let running = 0;
    let pulled = 0;
    let yielded = 0;
    let done = false;
    let failure;
    let returned = false;
    const settle = (ctx, job, error, value) => {
      if (busy[ctx.workerId] !== ctx) return; // canceled by return()
      busy[ctx.workerId] = undefined;
      free.push(ctx.workerId);
      running--;
      const result =
        error === undefined
          ? { ok: true, job, index: ctx.index, value }
          : { ok: false, job, index: ctx.index, error };
      if (waiting.length > 0) {
        yielded++;
        const w = waiting.shift();
        fill();
        w.resolve({ done: false, value: result });
      } else {
        ready.push(result);
        fill();
      }
    };
    const start = (job) => {
      const workerId = free.length > 0 ? free.pop() : minted++;
      const ctx = new Ctx(pulled++, workerId);
      busy[workerId] = ctx;
      running++;
      let out;
      try {
        out = worker(job, ctx);
        if (
          out !== null &&
          (typeof out === 'object' || typeof out === 'function') &&
          typeof out.then === 'function'
        ) {
          out.then(
            (value) => settle(ctx, job, undefined, value),
            (error) =>
              settle(
                ctx,
                job,
                error instanceof Error ? error : new Error(String(error)),
                undefined,
              ),
          );
          return;
        }
      } catch (error) {
        queueMicrotask(() =>
          settle(ctx, job, error instanceof Error ? error : new Error(String(error)), undefined),
        );
        return;
      }
      queueMicrotask(() => settle(ctx, job, undefined, out));
    };
    const fill = () => {
      while (!done && running < concurrency && pulled < yielded + concurrency + buffer) {
        let step;
        try {
          step = source.next();
          if (step.done) {
            done = true;
            break;
          }
        } catch (error) {
          done = true;
          failure = { error };
          break;
        }
        start(step.value);
      }
      if (done && running === 0) {
        while (waiting.length > 0 && head === ready.length) end(waiting.shift());
      }
    };
    const end = (w) => {
      if (failure !== undefined) {
        const { error } = failure;
        failure = undefined;
        w.reject(error);
      } else w.resolve({ done: true, value: undefined });
    };
    const it = {
      [Symbol.asyncIterator]: () => it,
      next() {
        if (returned) return Promise.resolve({ done: true, value: undefined });
        if (waiting.length === 0 && head < ready.length) {
          const value = ready[head];
          ready[head++] = undefined;
          if (head > 1024 && head * 2 > ready.length) {
            ready.splice(0, head);
            head = 0;
          }
          yielded++;
          fill();
          return Promise.resolve({ done: false, value });
        }
        return new Promise((resolve, reject) => {
          waiting.push({ resolve, reject });
          fill();
        });
      },
      async return() {
        returned = true;
        done = true;
        for (const ctx of busy) {
          if (ctx === undefined) continue;
          busy[ctx.workerId] = undefined;
          ctx.controller ??= new AbortController();
          ctx.controller.abort(new Error('stopped'));
        }
        for (const w of waiting.splice(0)) w.resolve({ done: true, value: undefined });
        source.return?.();
        return { done: true, value: undefined };
      },
    };
    return it;
  };
  burst = async (count) => {
    let done = 0;
    for await (const result of leanPool(upTo(count), double, CONCURRENCY)) {
      if (!result.ok) throw result.error;
      done++;
    }
    return done;
  };
} else {
  throw new Error(`unknown contender ${contender}`);
}

/** The neighbour's work between two bursts, a fixed amount (time plays no part). */
const neighbour = {
  none: () => {},
  // json: ~5 ms of bench/scheduler.ts's json mix — 5 parses of a ~40 KB document, 500 kept.
  json: (() => {
    const doc = JSON.stringify(
      Array.from({ length: 400 }, (_, i) => ({
        id: i,
        name: `item-${i}`,
        tags: ['a', 'b', 'c'],
        score: i / 7,
        nested: { ok: true, at: i },
      })),
    );
    const kept = [];
    return () => {
      for (let i = 0; i < 5; i++) {
        const value = JSON.parse(doc);
        kept.push(value);
        if (kept.length > 500) kept.shift();
        JSON.stringify(value);
      }
    };
  })(),
  // timers: 100 callbacks of the timers mix — a map of 200 records each into a cache of 2,000.
  timers: (() => {
    const cache = new Map();
    let key = 0;
    return () => {
      for (let t = 0; t < 100; t++) {
        const records = new Map();
        for (let j = 0; j < 200; j++) records.set(`k${j}`, { at: j, payload: [j, j + 1, j + 2] });
        cache.set(key++, records);
        if (cache.size > 2000) cache.delete(key - 2001);
      }
    };
  })(),
}[mix];
if (neighbour === undefined) throw new Error(`unknown mix ${mix}`);

// The neighbour's steady state first: its cache (timers) or kept documents (json) full.
for (let i = 0, fill = mix === 'json' ? 100 : 20; mix !== 'none' && i < fill; i++) neighbour();
for (let i = 0; i < warm; i++) await burst(50_000);
for (let round = 0; round < Number(roundsArg); round++) {
  neighbour();
  if (n > 0 && (await burst(n)) !== n) throw new Error('a burst lost jobs');
}
