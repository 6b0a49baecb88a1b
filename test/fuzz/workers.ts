/**
 * Scripted worker functions shared by the runPool and pipeline attacks: each job's behaviour is
 * chosen by the case (sync value, sync throw of a hostile value, a thenable that calls back at
 * once, a native promise with a `then` of its own that does, settled by the model, ends on its
 * signal, ignores its signal) and may re-enter the caller. Counts live workers itself.
 */
import fc from 'fast-check';
import { AbortError, JobFailedError, TimeoutError } from '../../src/index.js';
import {
  type Deferred,
  deferred,
  isErrorValue,
  makeThrown,
  type ThrownKind,
  thrownKinds,
  type Violations,
} from './harness.js';
import type { Job } from './hostile-source.js';

export type Reentry = 'none' | 'abort' | 'return' | 'next';
export type WorkKind =
  | 'sync-value'
  | 'sync-throw'
  | 'sync-thenable'
  | 'own-then'
  | 'deferred'
  | 'until-signal'
  | 'ignore-signal';
export interface Work {
  kind: WorkKind;
  thrown: ThrownKind;
  reenter: Reentry;
}

export const work: fc.Arbitrary<Work> = fc.record({
  kind: fc.constantFrom<WorkKind>(
    'sync-value',
    'sync-throw',
    'sync-thenable',
    'own-then',
    'deferred',
    'deferred',
    'until-signal',
    'ignore-signal',
  ),
  thrown: thrownKinds(),
  reenter: fc.constantFrom<Reentry>('none', 'none', 'none', 'none', 'abort', 'return', 'next'),
});

/** One worker call as the model sees it. */
export interface Call {
  id: number;
  work: Work;
  live: boolean;
  signal: AbortSignal;
  control: Deferred<number> | undefined;
  thrown: unknown;
  produced: number | undefined;
}

/**
 * The workers: each job's behaviour is `works[id % works.length]`; counts live workers and
 * checks the limit at every start (the signal-abort order is a known open defect).
 */
export class Workers {
  readonly calls = new Map<number, Call>();
  readonly v: Violations;
  readonly log: string[];
  readonly works: Work[];
  limit: number;
  reenter: (what: Reentry, id: number) => void = () => undefined;

  constructor(works: Work[], limit: number, v: Violations, log: string[]) {
    this.works = works;
    this.limit = limit;
    this.v = v;
    this.log = log;
  }

  live(): number {
    let n = 0;
    for (const c of this.calls.values()) if (c.live && !c.signal.aborted) n++;
    return n;
  }

  run(job: Job, signal: AbortSignal, key = job.id): number | Promise<number> {
    const w = this.works[key % this.works.length] as Work;
    this.log.push(
      `  worker(${key}) ${w.kind}${w.reenter === 'none' ? '' : ` re-enters ${w.reenter}`}`,
    );
    this.v.check(!this.calls.has(key), () => `job ${key}: worker called twice`);
    const call: Call = {
      id: key,
      work: w,
      live: false,
      signal,
      control: undefined,
      thrown: undefined,
      produced: undefined,
    };
    this.calls.set(key, call);
    const before = this.live();
    this.v.check(
      before < this.limit,
      () => `job ${key} started with ${before} live workers, limit ${this.limit}`,
    );
    this.reenter(w.reenter, key);
    if (w.kind === 'sync-value') {
      call.produced = key * 10;
      return key * 10;
    }
    if (w.kind === 'sync-throw') {
      call.thrown = makeThrown(w.thrown);
      throw call.thrown;
    }
    if (w.kind === 'sync-thenable') {
      // A user thenable that calls back inside `then`: adopted on a microtask, never re-entrantly.
      call.produced = key * 10;
      return {
        // biome-ignore lint/suspicious/noThenProperty: a user thenable, adopted by the pool.
        then(ok: (v: number) => void) {
          ok(key * 10);
        },
      } as unknown as Promise<number>;
    }
    if (w.kind === 'own-then') {
      // A native promise with a `then` of its own that calls back at once with another value:
      // `await` ignores it (it uses the built-in then), so the pool must too.
      call.produced = key * 10;
      const p = Promise.resolve(key * 10);
      Object.defineProperty(p, 'then', { value: (ok: (v: number) => void) => ok(-1) });
      return p;
    }
    call.live = true;
    const control = deferred<number>();
    call.control = control;
    if (w.kind === 'until-signal') {
      const onAbort = (): void => {
        if (control.settled) return;
        call.live = false;
        call.thrown = signal.reason;
        control.reject(signal.reason);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    return control.promise;
  }

  open(): Call[] {
    return [...this.calls.values()].filter((c) => c.control && !c.control.settled);
  }

  settle(pick: number, ok: boolean, thrown: ThrownKind): void {
    const open = this.open();
    const call = open[pick % Math.max(1, open.length)];
    if (!call?.control) return;
    call.live = false;
    if (ok) {
      call.produced = call.id * 10;
      call.control.resolve(call.id * 10);
    } else {
      call.thrown = makeThrown(thrown);
      call.control.reject(call.thrown);
    }
  }

  releaseAll(): void {
    for (const c of this.open()) {
      c.live = false;
      c.produced = c.id * 10;
      c.control?.resolve(c.id * 10);
    }
  }

  /** A failed result's error against what the worker did (or why it was canceled). */
  checkError(key: number, error: unknown, canceledOk: boolean): void {
    const call = this.calls.get(key);
    this.v.check(
      error instanceof Error,
      () => `job ${key}: error is not an Error (${typeof error})`,
    );
    if (error instanceof AbortError || error instanceof TimeoutError) {
      this.v.check(
        canceledOk || error instanceof TimeoutError,
        () => `job ${key}: ${(error as Error).name} but nothing canceled it`,
      );
      return;
    }
    if (!call) {
      this.v.check(false, () => `job ${key}: failed with ${String(error)} without running`);
      return;
    }
    if (isErrorValue(call.thrown))
      this.v.check(error === call.thrown, () => `job ${key}: error is not the thrown Error`);
    else
      this.v.check(
        error instanceof JobFailedError && Object.is(error.cause, call.thrown),
        () => `job ${key}: thrown non-Error not kept as cause`,
      );
  }
}
