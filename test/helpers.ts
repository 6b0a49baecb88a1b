/** Test helpers: deterministic synchronisation, no sleeps. */
import diagnostics from 'node:diagnostics_channel';

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

/** A promise with its resolve/reject exposed: a latch a test opens when it chooses. */
export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise callback and microtask run (one macrotask turn). */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Records `performance.now()` at every job attempt start of the pool (or stage, or consumer)
 * named `name`, from the `sluice:job` tracing channel: on the main thread, in the same turn as
 * the start gate's permit. A start observed inside the job instead (a thread, a handler some
 * event-loop turns later) can lag its permit by as long as the machine stalls, which a window
 * check would read as a burst. `stop()` unsubscribes.
 */
export function recordStarts(name: string): { starts: number[]; stop(): void } {
  const channel = diagnostics.tracingChannel<unknown, { name: string }>('sluice:job');
  const starts: number[] = [];
  const none = () => {};
  const subscribers = {
    start(ctx: { name: string }) {
      if (ctx.name === name) starts.push(performance.now());
    },
    end: none,
    asyncStart: none,
    asyncEnd: none,
    error: none,
  };
  channel.subscribe(subscribers);
  return { starts, stop: () => channel.unsubscribe(subscribers) };
}

/**
 * The most times in any window `[t, t + width)` (ms) over `times` (any order); `slack` (ms)
 * narrows the window for float sums such as `ask + wait`.
 */
export function maxInWindow(times: number[], width: number, slack = 0): number {
  const sorted = [...times].sort((a, b) => a - b);
  let max = 0;
  let lo = 0;
  for (let hi = 0; hi < sorted.length; hi++) {
    while ((sorted[hi] as number) - (sorted[lo] as number) >= width - slack) lo++;
    max = Math.max(max, hi - lo + 1);
  }
  return max;
}

/**
 * A stopwatch in event-loop time, for bounds on waits that timers end (a lease, a grace period):
 * a ticker every `tick` ms adds at most `tick` per tick, so a wait on a timer counts in full
 * (about as wall time, on a quiet machine), but time the process was not run (a loaded CPU, other
 * processes) or spent blocked does not. On a loaded machine wall time is that wait plus any
 * amount of lateness, and a bound on it fails by luck; this one holds, since no wait ends later
 * in loop time than its timer. `stop()` returns the ms counted since the call.
 */
export function loopStopwatch(tick = 10): { stop(): number } {
  let last = performance.now();
  let counted = 0;
  const add = () => {
    const now = performance.now();
    counted += Math.min(now - last, tick);
    last = now;
  };
  const timer = setInterval(add, tick);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      add();
      return counted;
    },
  };
}

/**
 * Sources whose iterator factory answers a non-object (a number, null, a string, undefined),
 * each under `Symbol.asyncIterator` and under `Symbol.iterator`, with the error `for await`
 * throws over each: what runPool and pipeline must fail with too.
 */
export async function nonObjectIteratorSources(): Promise<[Iterable<number>, unknown][]> {
  const cases: [Iterable<number>, unknown][] = [];
  for (const answer of [5, null, 'x', undefined]) {
    for (const symbol of [Symbol.asyncIterator, Symbol.iterator]) {
      const source = { [symbol]: () => answer } as unknown as Iterable<number>;
      cases.push([source, await thrownBy(() => source)]);
    }
  }
  return cases;
}

/**
 * What making the iterable (`open`: a runPool throws at its call) and iterating it with
 * `for await` to its end throws (undefined when nothing).
 */
export async function thrownBy(
  open: () => Iterable<unknown> | AsyncIterable<unknown>,
): Promise<unknown> {
  try {
    for await (const _ of open());
    return undefined;
  } catch (error) {
    return error;
  }
}
