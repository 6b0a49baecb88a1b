/**
 * Shared pieces of the fuzz suite: the run budget (FUZZ_RUNS / FUZZ_SECONDS), replay
 * (FUZZ_SEED / FUZZ_PATH), deferreds the model controls, hostile thrown values, listener and
 * unhandled-rejection counting, and a bounded "no hang" wait.
 */
import { getEventListeners } from 'node:events';
import fc from 'fast-check';

/** Real timers, captured before any test fakes them. */
export const realSetTimeout: typeof setTimeout = globalThis.setTimeout;
export const realClearTimeout: typeof clearTimeout = globalThis.clearTimeout;
const realSetImmediate: typeof setImmediate = globalThis.setImmediate;

/**
 * Properties in the whole fuzz folder; `npm run fuzz -- --seconds N` gives each N / this many
 * seconds. Keep in step with the number of `fuzzAssert` calls (the runner sets
 * FUZZ_PROPERTY_COUNT when given only some files: one property per file).
 */
export const PROPERTY_COUNT = Number(process.env.FUZZ_PROPERTY_COUNT ?? 18);

/** The seed of CI's fixed budget (see fuzzParams). */
export const CI_SEED = 20261203;

/**
 * fast-check parameters from the environment. CI: `numRuns` = FUZZ_RUNS × weight (default 1
 * weight unit = 25 runs). `FUZZ_SECONDS` (set by `npm run fuzz`): as many runs as fit in that
 * many seconds per property. FUZZ_SEED and FUZZ_PATH replay a reported failure.
 */
export function fuzzParams<T>(weight = 1): fc.Parameters<T> {
  const env = process.env;
  const seconds = Number(env.FUZZ_SECONDS ?? 0);
  const params: fc.Parameters<T> = {
    numRuns: Math.max(1, Math.round(Number(env.FUZZ_RUNS ?? 25) * weight)),
    // Counterexamples print the command sequence; keep it readable.
    verbose: 0,
  };
  if (seconds > 0) {
    params.numRuns = Number.MAX_SAFE_INTEGER;
    // trackRuns last: the innermost decorator, so it sees each run itself, not the time limit's race.
    params.plugins = [fc.interruptAfterTimeLimit((seconds * 1000) / PROPERTY_COUNT), trackRuns];
  }
  if (env.FUZZ_SEED !== undefined) params.seed = Number(env.FUZZ_SEED);
  // CI (CI=true) replays one fixed set of cases, so whether a submission lands never depends on
  // the draw; a developer's `npm test` and `npm run fuzz` draw new cases every run.
  else if (env.CI === 'true' && seconds === 0) params.seed = CI_SEED;
  if (env.FUZZ_PATH !== undefined) {
    params.path = env.FUZZ_PATH;
    params.endOnFailure = true;
  }
  return params;
}

/** Per-property timeout for vitest: `ciMs` at the default budget, scaled with FUZZ_RUNS, or the
 * time budget plus room for shrinking. */
export function testTimeout(ciMs: number): number {
  const seconds = Number(process.env.FUZZ_SECONDS ?? 0);
  if (seconds > 0) return (seconds * 1000) / PROPERTY_COUNT + 600_000;
  return ciMs * Math.max(1, Number(process.env.FUZZ_RUNS ?? 25) / 25);
}

/**
 * fc.assert that prints how many cases ran (FUZZ_REPORT=1, set by `npm run fuzz`) and, on a
 * failure, a replay line with the seed and path before fast-check's own report.
 */
/**
 * Runs of a property still going. At its time limit fast-check races the run in flight against
 * the deadline and moves on without it: left alone, its continuations ran on into the next test
 * (under that test's fake clock, where a timer it then set failed the next test's first case
 * with "1 timers left"). fuzzAssert waits for them before it returns.
 */
const inflight = new Set<Promise<unknown>>();
const trackRuns: fc.UniversalPlugin = () => ({
  decorateRun: (nestedRun) => (value) => {
    const out = nestedRun(value);
    if (out instanceof Promise) {
      inflight.add(out);
      void out.finally(() => inflight.delete(out));
    }
    return out;
  },
});
/** Waits (at most `ms` of real time) for abandoned runs to end. */
async function settleAbandonedRuns(ms: number): Promise<void> {
  if (inflight.size === 0) return;
  const bound = new Promise<void>((resolve) => realSetTimeout(resolve, ms));
  await Promise.race([Promise.allSettled([...inflight]), bound]);
}

export async function fuzzAssert<Ts>(
  area: string,
  property: fc.IAsyncProperty<Ts>,
  params: fc.Parameters<Ts>,
): Promise<void> {
  const details = await fc.check(property, params);
  await settleAbandonedRuns(10_000);
  if (process.env.FUZZ_REPORT) {
    console.log(
      `[fuzz] ${area}: ${details.numRuns} cases${details.interrupted ? ' (time limit)' : ''}`,
    );
  }
  if (details.failed) {
    const replay = `FUZZ_SEED=${details.seed} FUZZ_PATH=${details.counterexamplePath ?? ''}`;
    console.log(`[fuzz] ${area}: FAILED, replay with ${replay}`);
    const error = details.errorInstance;
    const why = error instanceof Error ? (error.stack ?? error.message) : String(error);
    throw new Error(`${area}: ${replay}\n${why}\n\n${fc.defaultReportMessage(details)}`);
  }
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
  settled: boolean;
}

/** A promise the model settles when it chooses. */
export function deferred<T>(): Deferred<T> {
  const d = { settled: false } as Deferred<T>;
  d.promise = new Promise<T>((res, rej) => {
    d.resolve = (v) => {
      d.settled = true;
      res(v);
    };
    d.reject = (e) => {
      d.settled = true;
      rej(e);
    };
  });
  return d;
}

/** One macrotask turn: every pending promise callback runs. Never uses a faked timer. */
export function flush(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}

/**
 * Waits for `promise` for at most `turns` macrotask turns (no wall clock: deterministic) and
 * throws "hang: <what>" if it has not settled by then.
 */
export async function settlesWithin<T>(promise: Promise<T>, what: string, turns = 200): Promise<T> {
  let done = false;
  const watched = promise.then(
    (v) => {
      done = true;
      return v;
    },
    (e: unknown) => {
      done = true;
      throw e;
    },
  );
  watched.catch(() => undefined);
  for (let i = 0; i < turns && !done; i++) await flush();
  if (!done) throw new Error(`hang: ${what} did not settle within ${turns} turns`);
  return watched;
}

/** Wall-clock watchdog for cases that need real time (threads): rejects after `ms`. */
export function watchdog<T>(promise: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = realSetTimeout(() => reject(new Error(`hang: ${what} took over ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => realClearTimeout(timer));
}

/** 'abort' listeners on `signal` now. */
export function abortListeners(signal: AbortSignal): number {
  return getEventListeners(signal, 'abort').length;
}

/** Counts unhandled rejections while installed (vitest fails the run on them too). */
export class UnhandledCounter {
  readonly reasons: unknown[] = [];
  readonly #listener = (reason: unknown): void => {
    this.reasons.push(reason);
  };
  install(): void {
    process.on('unhandledRejection', this.#listener);
  }
  uninstall(): void {
    process.off('unhandledRejection', this.#listener);
  }
}

/** Kinds of thrown values; `error` and `error-subclass` are Errors, the rest are not. */
export const THROWN_KINDS = [
  'error',
  'error-subclass',
  'undefined',
  'null',
  'string',
  'number',
  'bigint',
  'symbol',
  'plain-object',
  'throwing-getters',
  'throwing-toString',
  'frozen',
  'circular-cause',
  'function',
  'revoked-proxy',
  'throwing-proxy',
  'fake-error',
] as const;
export type ThrownKind = (typeof THROWN_KINDS)[number];

/** A fresh value of that kind, each one hostile to inspection in its own way. */
export function makeThrown(kind: ThrownKind): unknown {
  switch (kind) {
    case 'error':
      return new Error('boom');
    case 'error-subclass':
      return new (class Custom extends RangeError {})('custom');
    case 'undefined':
      return undefined;
    case 'null':
      return null;
    case 'string':
      return 'a string';
    case 'number':
      return 42;
    case 'bigint':
      return 10n;
    case 'symbol':
      return Symbol('thrown');
    case 'plain-object':
      return { message: 'not an error' };
    case 'throwing-getters':
      return Object.defineProperties(
        {},
        Object.fromEntries(
          ['message', 'name', 'stack', 'cause', 'code', 'then', 'constructor'].map((k) => [
            k,
            {
              get() {
                throw new Error(`getter ${k}`);
              },
              enumerable: true,
            },
          ]),
        ),
      );
    case 'throwing-toString':
      return {
        toString() {
          throw new Error('toString');
        },
        [Symbol.toPrimitive]() {
          throw new Error('toPrimitive');
        },
      };
    case 'frozen':
      return Object.freeze(new Error('frozen'));
    case 'circular-cause': {
      const a = new Error('a');
      const b = new Error('b', { cause: a });
      (a as { cause?: unknown }).cause = b;
      return a;
    }
    case 'function':
      return () => 'thrown function';
    case 'revoked-proxy': {
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      return proxy;
    }
    case 'throwing-proxy':
      return new Proxy(
        {},
        {
          get() {
            throw new Error('proxy get');
          },
          getPrototypeOf() {
            throw new Error('proxy getPrototypeOf');
          },
          ownKeys() {
            throw new Error('proxy ownKeys');
          },
        },
      );
    case 'fake-error':
      // Claims to be an Error without being one.
      return Object.create(Error.prototype, {
        message: {
          get: () => {
            throw new Error('msg');
          },
        },
      });
  }
}

/** Every kind of thrown value, proxies whose inspection throws included. */
export function thrownKinds(): fc.Arbitrary<ThrownKind> {
  return fc.constantFrom(...THROWN_KINDS);
}

/**
 * `value instanceof Error` without throwing: a revoked Proxy or a Proxy whose getPrototypeOf
 * trap throws is not an Error (sluice's toError decides the same way and wraps it in a
 * JobFailedError with the value as cause). The model must not inspect hostile values with a
 * bare `instanceof`.
 */
export function isErrorValue(value: unknown): boolean {
  try {
    return value instanceof Error;
  } catch {
    return false;
  }
}

/** Thrown values that are Errors (kept as they are); the others must become an Error. */
export function isErrorKind(kind: ThrownKind): boolean {
  return (
    kind === 'error' ||
    kind === 'error-subclass' ||
    kind === 'frozen' ||
    kind === 'circular-cause' ||
    kind === 'fake-error'
  );
}

/** Collects invariant breaks with context, so a failure names what happened. */
export class Violations {
  readonly list: string[] = [];
  check(ok: boolean, message: () => string): void {
    if (!ok) this.list.push(message());
  }
  throwIfAny(log: string[]): void {
    if (this.list.length > 0) {
      throw new Error(
        `${this.list.slice(0, 5).join('\n')}\n--- trace ---\n${log.slice(-60).join('\n')}`,
      );
    }
  }
}

/** What every model-based fuzz test drives: commands one at a time, then a finish. */
export interface CommandModel<C> {
  readonly v: Violations;
  readonly log: string[];
  exec(command: C): Promise<void>;
  finish(): Promise<void>;
}

/**
 * Runs `commands` on `model` and finishes it; anything thrown becomes a violation, as does a
 * rejection nobody handled meanwhile. Throws the violations with the model's trace.
 */
export async function runCommands<C>(
  model: CommandModel<C>,
  commands: readonly C[],
  unhandled: UnhandledCounter,
): Promise<void> {
  const before = unhandled.reasons.length;
  try {
    for (const c of commands) await model.exec(c);
    await model.finish();
  } catch (error) {
    model.v.list.push(String(error));
  }
  model.v.check(
    unhandled.reasons.length === before,
    () => `unhandled rejection: ${String(unhandled.reasons.at(-1))}`,
  );
  model.v.throwIfAny(model.log);
}
