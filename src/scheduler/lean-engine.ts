/**
 * runPool's lean engine: the pull loop for a runPool with no gate but a lone `rate`, and no
 * timeout, adaptive limit, watchdog or hooks of its own — runPool's common case, chosen once at
 * construction (see run-pool.ts). It keeps the same contract as the full engine
 * (internal/pull-engine.ts) in that configuration, observable for observable: results and their
 * order (`ordered`), `index` and `workerId`, a lazy `ctx.signal`, sync throws settled on a
 * microtask, the `concurrency + buffer` pull bound, waiting `next()` calls, `return()`/`throw()`
 * aborting the running jobs, source errors, async sources, the `signal` option,
 * `sluice:pool:state` and the job events (a job accepted while someone listens, or while some
 * pool detects self-deadlocks, runs as a {@link JobRun} with its hooks, as there) — and a lone
 * rate's permit per start, as the full engine's rate-only path: a job not granted one waits
 * parked (nothing more is pulled) until the rate gate wakes the engine, and is canceled by an
 * abort or `return()`, failed by a limiter that fails (test/run-pool-lean-rate.property.test.ts
 * compares the two on a fake clock).
 *
 * Why a second engine: in a fresh process most of a 10,000-job burst is TurboFan compiling the
 * engine (BENCHMARKS.md, "Goal 2 at 10,000 jobs"). Here the state is one object with plain
 * fields (no `#private` keyed access before TurboFan), and the per-job path is three module
 * functions — `next`, `pump` (pull and start) and `settle` — so little code is compiled, and
 * little of it twice. Module functions rather than closures per engine: V8 keeps optimised code
 * only while a function that runs it lives, so an engine's closures would take theirs with them
 * at the next full GC, and the next runPool would re-warm from scratch (measured: 1.75x as long
 * for a 200,000-job burst after a full GC).
 * Internal.
 *
 * @module
 */
import { AbortError, abortErrorFrom, toError } from '../errors.js';
import { RateGate } from '../gates/rate-gate.js';
import type { RateLimiter } from '../gates/rate-limiter.js';
import { onAbort } from '../internal/abort-fanout.js';
import { closeSource } from '../internal/close-source.js';
import {
  isThenable,
  type JobContext,
  JobRun,
  promiseThen,
  SETTLE,
  startWorker,
  type WorkerFunction,
} from '../internal/job-run.js';
import { ASKING_RATE, notAnObject, openIterator } from '../internal/pull-engine.js';
import { type PoolKind, type PoolState, publishPoolState } from '../observability/channels.js';
import { publishRateLimited } from '../observability/gate-channels.js';
import { makeResult, type Result } from '../result.js';
import type { CoreHooks } from './hooks.js';
import { deadlockStorageActive, outsideJobs } from './self-deadlock.js';

/** What {@link leanEngine} needs: runPool's options once validated, without the full engine's. */
export interface LeanEngineOptions<J> {
  concurrency: number;
  buffer: number;
  ordered: boolean;
  signal: AbortSignal | undefined;
  /** The events publisher's hooks (no hooks of the pool's own: those take the full engine). */
  hooks: CoreHooks<J>;
  events: { name: string; kind: PoolKind };
  /** A lone `rate` (no other gate): each start takes a permit first. Undefined: no gate. */
  rate: RateLimiter | undefined;
}

/** A pulled job waiting for its rate permit (at most one at a time: see `Lean.parked`). */
interface Parked<J> {
  readonly job: J;
  readonly index: number;
  readonly observed: boolean;
}

/** Reads and aborts a {@link LeanContext}'s controller (set by its static block). */
let abortContext: (ctx: LeanContext, error: Error) => void;

/**
 * A lean job's context, as the worker gets it: `index` and `workerId` as own data properties (a
 * spread or JSON of the context keeps them, as on the full engine's), `signal` created on first
 * read. The worker may overwrite the properties: the engine keeps its own copies.
 */
export class LeanContext implements JobContext {
  readonly index: number;
  readonly workerId: number;
  #controller: AbortController | undefined = undefined;

  static {
    abortContext = (ctx, error) => {
      ctx.#controller ??= new AbortController();
      ctx.#controller.abort(error);
    };
  }

  constructor(index: number, workerId: number) {
    this.index = index;
    this.workerId = workerId;
  }

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }
}

interface Consumer<J, R> {
  resolve: (result: IteratorResult<Result<J, R>, undefined>) => void;
  reject: (error: unknown) => void;
}

const DONE: IteratorResult<never, undefined> = Object.freeze({ done: true, value: undefined });

/**
 * One engine's state: plain fields, read and written by the module functions below. Never seen
 * by users (the iterator holds it privately); the JobRun of an observed job reports to it.
 */
class Lean<J, R> {
  readonly source: Iterator<J> | AsyncIterator<J>;
  readonly isAsync: boolean;
  readonly worker: WorkerFunction<J, R>;
  readonly concurrency: number;
  readonly buffer: number;
  readonly ordered: boolean;
  readonly hooks: CoreHooks<J>;
  readonly events: { name: string; kind: PoolKind };
  /** A lone rate's gate: undefined without a rate (the pump then asks nothing more per job). */
  readonly rate: RateGate | undefined;
  /**
   * The pulled job waiting for its rate permit; it holds its slot (counted in `running`). As the
   * full engine's rate-only path, nothing more is pulled meanwhile.
   */
  parked: Parked<J> | undefined = undefined;
  // Slots: ids minted on first use (a huge concurrency costs nothing), recent ids reused first.
  readonly free: number[] = [];
  minted = 0;
  /**
   * Jobs running, and a job pulled whose `accepted` subscriber (user code) runs: it holds its
   * slot already, so a next() from the subscriber cannot start another in it, and the iteration
   * cannot end before its result (an abort from the subscriber).
   */
  running = 0;
  /** What runs in each slot: a lean job's context, or a JobRun (an observed job). */
  readonly busy: (LeanContext | JobRun<J, R> | undefined)[] = [];
  /** Each busy lean slot's job and index (the context's properties are the worker's). */
  readonly busyJob: (J | undefined)[] = [];
  readonly busyIndex: number[] = [];
  /** Finished results (unordered): a ring, its capacity a power of two, grown when full. */
  ready: (Result<J, R> | undefined)[] = new Array(16);
  readyMask = 15;
  head = 0;
  readyCount = 0;
  /** Finished results (ordered), by index. */
  readonly byIndex = new Map<number, Result<J, R>>();
  /** Waiting `next()` calls, oldest first. */
  readonly consumers: Consumer<J, R>[] = [];
  pulled = 0;
  yielded = 0;
  pulling = false;
  sourceDone = false;
  sourceError: { error: unknown } | undefined = undefined;
  stopped = false;
  /** Set by an abort: a value a pending pull yields after it settles as this error. */
  cancelWith: Error | undefined = undefined;
  /** The pull pending at a stop outlived the source's `return()`: what it yields is not ours. */
  abandoned = false;
  returned = false;
  /**
   * Inside a `settled` hook (a subscriber: user code) whose job's result is not queued yet: the
   * iteration must not end meanwhile — a subscriber that aborts the signal would deliver the
   * end, and the result would come after it and be lost.
   */
  inSettledHook = 0;
  /** Inside {@link cancelRunning}: a nested call (from a subscriber) leaves the jobs to it. */
  cancelingRunning = false;
  unsubscribe: (() => void) | undefined = undefined;
  state: PoolState = 'open';

  constructor(
    jobs: Iterable<J> | AsyncIterable<J>,
    worker: WorkerFunction<J, R>,
    opts: LeanEngineOptions<J>,
  ) {
    const { iterator, isAsync } = openIterator(jobs);
    this.isAsync = isAsync;
    this.source = iterator;
    this.worker = worker;
    this.concurrency = opts.concurrency;
    this.buffer = opts.buffer;
    this.ordered = opts.ordered;
    this.hooks = opts.hooks;
    this.events = opts.events;
    const { rate, events } = opts;
    this.rate =
      rate &&
      new RateGate(
        rate,
        () => wakeParked(this),
        (error) => failParked(this, error),
        (ms) => publishRateLimited(events.name, events.kind, 'rate', undefined, ms),
      );
  }

  /** An observed job (a JobRun) ended: as {@link settle}, and its `settled` hook. */
  [SETTLE](run: JobRun<J, R>, error: Error | undefined, value: R | undefined): void {
    this.busy[run.workerId] = undefined;
    this.running--;
    this.free.push(run.workerId);
    if (run.observed) settledHook(this, run.job, run.index, error);
    if (this.returned) return;
    push(this, makeResult(run.job, run.index, error, value));
    pump(this);
  }
}

/** The `settled` hook, during which the iteration cannot end (see `Lean.inSettledHook`). */
function settledHook<J, R>(e: Lean<J, R>, job: J, index: number, error: Error | undefined): void {
  e.inSettledHook++;
  try {
    e.hooks.settled?.(job, index, error);
  } finally {
    e.inSettledHook--;
  }
}

/**
 * A job accepted (`index`) while user code run since its pull — its `accepted` subscriber, a
 * rate limiter — aborted the signal or ended the iteration: it settles as canceled without
 * running (true), as one pulled after the stop would. False: still live.
 */
function settleIfStopped<J, R>(e: Lean<J, R>, job: J, index: number, observed = true): boolean {
  const error = stopError(e);
  if (error === undefined) return false;
  settleUnstarted(e, job, index, observed, error);
  return true;
}

/** What a job not yet started settles as once the iteration stopped; undefined: still live. */
function stopError<J, R>(e: Lean<J, R>): Error | undefined {
  return (
    e.cancelWith ?? (e.returned ? new AbortError(undefined, 'result iteration stopped') : undefined)
  );
}

/** A job pulled and never started settles as `error`, and frees the slot held since its pull. */
function settleUnstarted<J, R>(
  e: Lean<J, R>,
  job: J,
  index: number,
  observed: boolean,
  error: Error,
): void {
  e.running--;
  if (observed) settledHook(e, job, index, error);
  if (!e.returned) push(e, makeResult<J, R>(job, index, error, undefined));
}

function setState<J, R>(e: Lean<J, R>, next: PoolState): void {
  const previous = e.state;
  if (previous === next || previous === 'drained' || previous === 'aborted') return;
  e.state = next;
  publishPoolState(e.events.name, e.events.kind, previous, next);
}

function stop<J, R>(e: Lean<J, R>): void {
  e.stopped = true;
  e.unsubscribe?.();
  e.unsubscribe = undefined;
}

function take<J, R>(e: Lean<J, R>): Result<J, R> | undefined {
  let result: Result<J, R> | undefined;
  if (e.ordered) {
    result = e.byIndex.get(e.yielded);
    if (result !== undefined) e.byIndex.delete(e.yielded);
  } else if (e.readyCount > 0) {
    result = e.ready[e.head];
    e.ready[e.head] = undefined;
    e.head = (e.head + 1) & e.readyMask;
    e.readyCount--;
  }
  if (result !== undefined) e.yielded++;
  return result;
}

function enqueue<J, R>(e: Lean<J, R>, result: Result<J, R>): void {
  if (e.readyCount === e.ready.length) {
    const grown: (Result<J, R> | undefined)[] = new Array(e.ready.length * 2);
    for (let i = 0; i < e.readyCount; i++) grown[i] = e.ready[(e.head + i) & e.readyMask];
    e.ready = grown;
    e.readyMask = grown.length - 1;
    e.head = 0;
  }
  e.ready[(e.head + e.readyCount) & e.readyMask] = result;
  e.readyCount++;
}

function finished<J, R>(e: Lean<J, R>): boolean {
  return (
    !e.pulling &&
    e.inSettledHook === 0 &&
    (e.stopped || e.sourceDone) &&
    e.running === 0 &&
    e.readyCount === 0 &&
    e.byIndex.size === 0
  );
}

function end<J, R>(e: Lean<J, R>): Promise<IteratorResult<Result<J, R>, undefined>> {
  setState(e, 'drained');
  stop(e);
  const failure = e.sourceError;
  if (failure !== undefined) {
    e.sourceError = undefined;
    return Promise.reject(failure.error);
  }
  return Promise.resolve(DONE);
}

function deliver<J, R>(e: Lean<J, R>): void {
  while (e.consumers.length > 0) {
    const result = take(e);
    if (result !== undefined) {
      // Taken off the queue before resolving, so a re-entrant call cannot serve it twice.
      (e.consumers.shift() as Consumer<J, R>).resolve({ done: false, value: result });
      pump(e);
    } else if (finished(e)) {
      const consumer = e.consumers.shift() as Consumer<J, R>;
      end(e).then(consumer.resolve, consumer.reject);
    } else {
      return;
    }
  }
}

function push<J, R>(e: Lean<J, R>, result: Result<J, R>): void {
  if (e.ordered) e.byIndex.set(result.index, result);
  else enqueue(e, result);
  deliver(e);
}

function sourceFailed<J, R>(e: Lean<J, R>, error: unknown): void {
  e.sourceDone = true;
  e.sourceError = { error };
  deliver(e);
}

/** A lean job ended (or was canceled): free its slot, queue its result, pull the next. */
function settle<J, R>(
  e: Lean<J, R>,
  ctx: LeanContext,
  job: J,
  index: number,
  workerId: number,
  error: Error | undefined,
  value: R | undefined,
): void {
  // Settled already (canceled): a late outcome is discarded.
  if (e.busy[workerId] !== ctx) return;
  e.busy[workerId] = undefined;
  e.busyJob[workerId] = undefined;
  e.running--;
  e.free.push(workerId);
  // After `return()` nobody will read results: drop them.
  if (e.returned) return;
  const result: Result<J, R> =
    error === undefined
      ? { ok: true, job, index, value: value as R }
      : { ok: false, job, index, error };
  if (e.ordered) e.byIndex.set(index, result);
  else enqueue(e, result);
  deliver(e);
  pump(e);
}

/** Starts an observed job, or any job while self-deadlock detection is active, as a JobRun. */
function startRun<J, R>(e: Lean<J, R>, job: J, index: number, observed: boolean): void {
  const run = new JobRun<J, R>(job, index, e);
  run.observed = observed;
  // Its slot was counted in `running` at its pull (see start).
  const workerId = e.free.length > 0 ? (e.free.pop() as number) : e.minted++;
  e.busy[workerId] = run;
  const around = observed ? e.hooks.started?.(job, index, 1) : undefined;
  if (deadlockStorageActive()) outsideJobs(startWorker, run, e.worker, workerId, undefined, around);
  else run.start(e.worker, workerId, undefined, around);
}

/** A job pulled after an abort: it settles as `error` without running. */
function cancelUnstarted<J, R>(e: Lean<J, R>, job: J, error: Error): void {
  // The index is taken before user code runs (see start).
  const index = e.pulled++;
  e.running++; // (see start) the iteration cannot end during the subscriber
  const observed = e.hooks.accepted(job, index) === true;
  e.running--;
  if (observed) settledHook(e, job, index, error);
  if (!e.returned) push(e, makeResult<J, R>(job, index, error, undefined));
}

/**
 * Pulls and starts jobs while a slot is free and the consumer is within `concurrency + buffer`;
 * `given` (an async pull's value, see onStep) is started first, whatever the bound says.
 *
 * The pull and the start are one function on purpose, written out rather than calling a
 * `start`. In a fresh process TurboFan compiles whatever is hot during the first burst, on
 * background threads that share the machine's cores with the burst; a function small enough to
 * inline (bytecode under V8's limit, 460 bytes) is compiled again inside every hot caller — the
 * start inside the pump and on its own, the pump inside settle, inside the worker's callback
 * and inside next(). Fused, the pump is too big to inline: its callers call it, and it is
 * compiled once — a third less compile work during a 10,000-job burst (BENCHMARKS.md, "Cold
 * bursts: compile each hot function once").
 */
function pump<J, R>(e: Lean<J, R>, given?: { job: J }): void {
  for (;;) {
    let job: J;
    // A job pulled after a stop (from inside the source's next()): started, then the pump ends.
    let last = false;
    if (given !== undefined) {
      job = given.job;
      given = undefined;
    } else {
      if (
        e.sourceDone ||
        e.stopped ||
        e.pulling ||
        e.running >= e.concurrency ||
        e.pulled >= e.yielded + e.concurrency + e.buffer ||
        e.parked !== undefined
      ) {
        return;
      }
      if (e.isAsync) {
        pullAsync(e);
        return;
      }
      // Pulling while the source's next() runs, as for an async pull: a next(), return() or
      // abort it makes on this iteration pulls nothing more (no job beyond `concurrency`).
      e.pulling = true;
      // The step is read inside the try, as for-of reads it: a non-object or a throwing `done`
      // or `value` getter is the source failing.
      try {
        const step = (e.source as Iterator<J>).next();
        if (typeof step !== 'object' || step === null) throw notAnObject(step);
        if (step.done) {
          e.pulling = false;
          e.sourceDone = true;
          deliver(e);
          return;
        }
        job = step.value;
      } catch (error) {
        e.pulling = false;
        sourceFailed(e, error);
        return;
      }
      e.pulling = false;
      // Stopped meanwhile (from inside that next()): as an async pull's value (see onStep).
      if (e.stopped) {
        if (e.returned || e.cancelWith !== undefined) {
          if (!e.returned) cancelUnstarted(e, job, e.cancelWith as Error);
          deliver(e);
          return;
        }
        last = true;
      }
    }
    // The start. The index is the job's before any user code runs: an `accepted` subscriber
    // may pull the next job (calling next()), which must get the next index, not this one's.
    const index = e.pulled++;
    // Its slot is held from here (before user code runs): see `Lean.running`.
    e.running++;
    const observed = e.hooks.accepted(job, index);
    if (e.rate !== undefined && !permitted(e, job, index, observed)) {
      // Parked for its permit (nothing is pulled until it starts), or settled without running.
    } else if (observed || deadlockStorageActive()) {
      // Lean, or as a JobRun when its events are wanted or some pool detects self-deadlocks (as
      // the full engine decides, per job). The subscriber may have aborted the signal or ended
      // the iteration.
      if (!(observed && settleIfStopped(e, job, index))) startRun(e, job, index, observed);
    } else {
      // What the worker's callbacks capture is declared in this block only: one context per
      // job, as a function of its own had.
      const engine = e;
      const jobIndex = index;
      const pulledJob = job;
      const workerId = engine.free.length > 0 ? (engine.free.pop() as number) : engine.minted++;
      const ctx = new LeanContext(jobIndex, workerId);
      engine.busy[workerId] = ctx;
      engine.busyJob[workerId] = pulledJob;
      engine.busyIndex[workerId] = jobIndex;
      // Called as a plain function, as the full engine calls it: `e.worker(…)` would hand the
      // worker the engine's state as its `this`.
      const worker = engine.worker;
      let out: R | PromiseLike<R> | undefined;
      try {
        out = worker(pulledJob, ctx);
        if (isThenable<R>(out)) {
          // Adopted as `await` adopts it, never re-entrantly (see RunCore.start in job-run.ts):
          // a thenable that calls back at once settles on a microtask; a throwing `then` (or
          // getter) fails the job.
          promiseThen.call(
            Promise.resolve(out),
            (value: R) => settle(engine, ctx, pulledJob, jobIndex, workerId, undefined, value),
            (error: unknown) =>
              settle(engine, ctx, pulledJob, jobIndex, workerId, toError(error), undefined),
          );
        } else {
          // Never re-entrantly: a sync return (or throw, below) settles on a microtask.
          queueMicrotask(() =>
            settle(engine, ctx, pulledJob, jobIndex, workerId, undefined, out as R),
          );
        }
      } catch (error) {
        queueMicrotask(() =>
          settle(engine, ctx, pulledJob, jobIndex, workerId, toError(error), undefined),
        );
      }
    }
    if (last) {
      deliver(e);
      return;
    }
  }
}

/**
 * A lone rate's say on a pulled job about to start: true when it may start now. Otherwise it
 * waits parked for its permit (the gate wakes the engine when it is due), or — the iteration
 * stopped, by an `accepted` subscriber or by the limiter (user code) — it settles as canceled
 * without running: parked, it would wait for a wake-up that a stopped gate never sends.
 */
function permitted<J, R>(e: Lean<J, R>, job: J, index: number, observed: boolean): boolean {
  if (settleIfStopped(e, job, index, observed)) return false;
  // Nothing is pulled while the limiter (user code) is asked: see ASKING_RATE.
  e.parked = ASKING_RATE;
  const granted = (e.rate as RateGate).take();
  if (e.parked === ASKING_RATE) e.parked = undefined;
  if (settleIfStopped(e, job, index, observed)) return false;
  if (granted) return true;
  e.parked = { job, index, observed };
  return false;
}

/** Takes the parked job out of its wait: pulls may resume. */
function unpark<J, R>(e: Lean<J, R>): Parked<J> | undefined {
  const parked = e.parked;
  e.parked = undefined;
  return parked;
}

/** The rate's permit for the parked job may be due: start it if the rate now allows. */
function wakeParked<J, R>(e: Lean<J, R>): void {
  if (e.parked === undefined || e.parked === ASKING_RATE) return;
  if (e.cancelWith === undefined && !(e.rate as RateGate).take()) return;
  const { job, index, observed } = unpark(e) as Parked<J>;
  // Aborted before, or by the limiter (user code) just now: settles without running. Started
  // as the full engine starts every job (a woken job is rare, and its start is not hot).
  if (!settleIfStopped(e, job, index, observed)) startRun(e, job, index, observed);
  pump(e);
  deliver(e);
}

/** The rate limiter failed (threw, rejected, answered a bad wait): the parked job fails. */
function failParked<J, R>(e: Lean<J, R>, error: Error): void {
  if (e.parked === undefined || e.parked === ASKING_RATE) return;
  const { job, index, observed } = unpark(e) as Parked<J>;
  settleUnstarted(e, job, index, observed, error);
  pump(e);
}

/** A stop that cancels: no more permits (the gate's timer is cleared); the parked job settles. */
function cancelParked<J, R>(e: Lean<J, R>, error: Error): void {
  (e.rate as RateGate).stop();
  // Asked (the limiter stopped the pool): the job asked about settles once take() returns.
  if (e.parked === ASKING_RATE) return;
  const parked = unpark(e);
  if (parked !== undefined) settleUnstarted(e, parked.job, parked.index, parked.observed, error);
}

function pullAsync<J, R>(e: Lean<J, R>): void {
  e.pulling = true;
  let step: Promise<unknown>;
  try {
    // A next() that throws synchronously is the source failing, as in for await. Promise.resolve,
    // like for await's Await(): a plain { value, done } is accepted, a thenable adopted, a native
    // promise used as is (no extra tick) — and a throw reading its `constructor` (user code on a
    // hostile promise) is the source failing too, as for await's.
    step = Promise.resolve((e.source as AsyncIterator<J>).next());
  } catch (error) {
    e.pulling = false;
    sourceFailed(e, error);
    return;
  }
  promiseThen.call(
    step,
    (settled) => onStep(e, settled),
    (error: unknown) => {
      if (e.abandoned) return;
      e.pulling = false;
      // After a stop the source was closed by us: its failure to answer is not news.
      if (e.stopped) deliver(e);
      else sourceFailed(e, error);
    },
  );
}

/** An async pull settled with `step`. */
function onStep<J, R>(e: Lean<J, R>, step: unknown): void {
  if (e.abandoned) return;
  e.pulling = false;
  // After return() nobody reads results: the source is being closed, the value is not wanted.
  if (e.returned) return;
  let job: J;
  try {
    if (typeof step !== 'object' || step === null) throw notAnObject(step);
    const { done } = step as IteratorResult<J>;
    if (done) {
      e.sourceDone = true;
      deliver(e);
      return;
    }
    job = (step as IteratorResult<J>).value;
  } catch (error) {
    if (e.stopped) deliver(e);
    else sourceFailed(e, error);
    return;
  }
  if (e.cancelWith !== undefined) {
    cancelUnstarted(e, job, e.cancelWith);
    pump(e);
  } else {
    pump(e, { job });
  }
  deliver(e);
}

function stopSource<J, R>(e: Lean<J, R>): Promise<void> {
  if (e.sourceDone) return Promise.resolve();
  e.sourceDone = true;
  return closeSource(e.source, () => {
    if (!e.pulling) return;
    e.pulling = false;
    e.abandoned = true;
    deliver(e);
  });
}

/** Cancels every running job with `error`: each settles (and yields) as that failure. */
function cancelRunning<J, R>(e: Lean<J, R>, error: Error): void {
  setState(e, 'aborted');
  // Not re-entrant: a call from a subscriber of the canceled jobs' settlement (return(), or the
  // signal's abort) leaves them to this one — canceling the next job itself went one level
  // deeper per job.
  if (e.cancelingRunning) return;
  e.cancelingRunning = true;
  try {
    // The parked job first, as the full engine cancels it: its result comes before the others'.
    if (e.rate !== undefined) cancelParked(e, error);
    cancelEach(e, error);
  } finally {
    e.cancelingRunning = false;
  }
}

function cancelEach<J, R>(e: Lean<J, R>, error: Error): void {
  // A snapshot in slot order: settling one job frees its slot as it goes.
  const ids: number[] = [];
  for (let id = 0; id < e.busy.length; id++) if (e.busy[id] !== undefined) ids.push(id);
  for (const workerId of ids) {
    const item = e.busy[workerId];
    if (item === undefined) continue;
    if (item instanceof JobRun) {
      item.cancel(error);
      continue;
    }
    // As JobRun.cancel: the signal aborts before the slot is freed for the next job.
    abortContext(item, error);
    settle(
      e,
      item,
      e.busyJob[workerId] as J,
      e.busyIndex[workerId] as number,
      workerId,
      error,
      undefined,
    );
  }
}

/** Stops pulling; a pull already pending is waited for (its value settles as `cancel`). */
function stopPulling<J, R>(e: Lean<J, R>, cancel?: Error): void {
  setState(e, cancel === undefined ? 'closing' : 'aborted');
  e.cancelWith ??= cancel;
  if (e.stopped) return;
  stop(e);
  void stopSource(e);
  deliver(e);
}

/** The results iterator runPool returns: its state out of the user's reach. */
class LeanIterator<J, R> implements AsyncIterableIterator<Result<J, R>> {
  readonly #e: Lean<J, R>;

  constructor(e: Lean<J, R>) {
    this.#e = e;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Result<J, R>, undefined>> {
    const e = this.#e;
    if (e.returned) return Promise.resolve(DONE);
    if (e.consumers.length === 0) {
      const result = take(e);
      if (result !== undefined) {
        pump(e);
        return Promise.resolve({ done: false, value: result });
      }
      if (finished(e)) return end(e);
    }
    return new Promise((resolve, reject) => {
      e.consumers.push({ resolve, reject });
      pump(e);
      deliver(e);
    });
  }

  /**
   * Breaking out of `for await`: stop pulling, abort running workers, drop their results, and
   * close the source (awaited unless a pull is pending: see PullEngine's `return()`).
   */
  async return(): Promise<IteratorResult<Result<J, R>, undefined>> {
    const e = this.#e;
    e.returned = true;
    setState(e, 'aborted');
    stop(e);
    cancelRunning(e, new AbortError(undefined, 'result iteration stopped'));
    e.ready.fill(undefined);
    e.readyCount = 0;
    e.byIndex.clear();
    for (let c = e.consumers.shift(); c; c = e.consumers.shift()) c.resolve(DONE);
    const closing = stopSource(e);
    if (!e.pulling) await closing;
    return DONE;
  }

  async throw(error?: unknown): Promise<IteratorResult<Result<J, R>, undefined>> {
    await this.return();
    throw error;
  }
}

/**
 * The results of `worker` over `jobs` as an async iterator, runPool's contract (see runPool's
 * documentation) for the lean configuration. `hooks.accepted` is called for each pulled job; a
 * job it wants (someone listens) or pulled while self-deadlock detection is active anywhere runs
 * as the full engine runs it.
 */
export function leanEngine<J, R>(
  jobs: Iterable<J> | AsyncIterable<J>,
  worker: WorkerFunction<J, R>,
  opts: LeanEngineOptions<J>,
): AsyncIterableIterator<Result<J, R>> {
  const e = new Lean<J, R>(jobs, worker, opts);
  const { signal } = opts;
  // Already aborted: nothing is pulled, and the pool ends aborted (as an abort during the run).
  if (signal?.aborted) stopPulling(e, abortErrorFrom(signal));
  else if (signal) {
    e.unsubscribe = onAbort(signal, () => {
      const error = abortErrorFrom(signal);
      stopPulling(e, error);
      cancelRunning(e, error);
    });
  }
  return new LeanIterator(e);
}

/**
 * An idle engine, its iterator and a context, kept for the life of the process, as PullEngine's
 * `pinnedForOptimisedCode`: the optimised code specialised on their maps survives a full GC
 * between two runPools. Exported only so that the module keeps them; not part of the API.
 */
export const pinnedLeanInstances: readonly object[] = pinLean();

function pinLean(): object[] {
  const e = new Lean<unknown, unknown>([], () => undefined, {
    concurrency: 1,
    buffer: 0,
    ordered: false,
    signal: undefined,
    hooks: { accepted: () => false },
    events: { name: 'pinned', kind: 'run-pool' },
    rate: undefined,
  });
  return [e, new LeanIterator(e), new LeanContext(0, 0)];
}
