import { AbortError, abortErrorFrom, toError } from '../errors.js';
import { type AdaptiveConcurrency, feedLimit } from '../gates/adaptive.js';
import { type Gates, keyOf } from '../gates/gate-options.js';
import { KeyWake, RateGate } from '../gates/rate-gate.js';
import type { RateLimiter } from '../gates/rate-limiter.js';
import { attemptsResult } from '../gates/retry.js';
import type { Queued, RunQueue } from '../gates/run-queue.js';
import { type PoolKind, type PoolState, publishPoolState } from '../observability/channels.js';
import { publishRateLimited } from '../observability/gate-channels.js';
import type { Watchdog } from '../observability/watchdog.js';
import { makeResult, type Result } from '../result.js';
import type { CoreHooks } from '../scheduler/hooks.js';
import { deadlockStorageActive, outsideJobs } from '../scheduler/self-deadlock.js';
import { type Outcome, outcomeOf, type StatsRecorder } from '../stats.js';
import { onAbort } from './abort-fanout.js';
import { closeSource } from './close-source.js';
import { Deque } from './deque.js';
import {
  type JobOwner,
  JobRun,
  LINGER,
  promiseThen,
  RunCore,
  SETTLE,
  startWorker,
  type WorkerFunction,
} from './job-run.js';
import { coded } from './options.js';
import { Slots } from './slots.js';

export interface EngineOptions<J = unknown> {
  concurrency: number;
  /** An adaptive limit fed by each started attempt; `concurrency` is its starting value. */
  adaptive?: AdaptiveConcurrency | undefined;
  /** Finished results held for the consumer beyond the running ones. */
  buffer: number;
  ordered: boolean;
  timeout: number | undefined;
  signal: AbortSignal | undefined;
  stats: StatsRecorder | undefined;
  /** Jobs for which it returns true skip the worker and yield `ok` with the job as value. */
  bypass?: ((job: J) => boolean) | undefined;
  /** Start gates and retries; undefined = none (the fast path). */
  gates?: EngineGates<J> | undefined;
  /** Names the engine in its `sluice:pool:state` events (none without it). */
  events?: { name: string; kind: PoolKind } | undefined;
  /** Lifecycle hooks (see scheduler/hooks.ts). */
  hooks?: CoreHooks<J> | undefined;
  /** The `watchdog` option's watchdog (fed by `hooks`; told here of zombies). */
  watchdog?: Watchdog | undefined;
  /** The job as the watchdog reports it (a stage's envelope → its value). */
  view?: ((job: J) => unknown) | undefined;
}

/** The gates of a runPool or a stage: a pool's gates, with priority as a function of the job. */
export interface EngineGates<J> extends Gates<J> {
  priority: ((job: J) => number) | undefined;
}

/** A pulled job in a gated engine: queued for its gates, then one attempt's run. */
class GatedRun<J, R> extends RunCore<J, R> implements Queued {
  // JobRun's fields, declared here rather than inherited: a subclass of JobRun (which has a
  // constructor) pays V8's generic construct stub per job (see RunCore).
  readonly job: J;
  readonly index: number;
  workerId = -1;
  startedAt = 0;
  queuedAt: number | undefined = undefined;
  observed = false;
  controller: AbortController | undefined = undefined;
  timer: NodeJS.Timeout | undefined = undefined;
  isSettled = false;
  isCanceled = false;
  readonly owner: JobOwner<J, R>;
  prev: Queued | undefined = undefined;
  next: Queued | undefined = undefined;
  linked = false;
  priority = 0;
  key: string | undefined = undefined;
  order = 0;
  heapIndex = -1;
  attempt = 1;
  errors: Error[] | undefined = undefined;

  constructor(job: J, index: number, owner: JobOwner<J, R>) {
    super();
    this.job = job;
    this.index = index;
    this.owner = owner;
  }
}

/** A job waiting out its retry backoff. */
interface RetryWait<J, R> {
  readonly run: GatedRun<J, R>;
  readonly timer: NodeJS.Timeout;
}

type Source<J> = Iterator<J> | AsyncIterator<J>;

/** A pulled job waiting for its rate permit (the rate-only path: at most one at a time). */
interface Parked<J> {
  readonly job: J;
  readonly index: number;
  readonly observed: boolean;
}

/**
 * The parked job's place while the rate limiter (user code) is asked about a job: nothing more
 * is pulled meanwhile, as while a job is parked. A next() called from the limiter, or from a
 * `sluice:job:rate-limited` subscriber, pulled another job, which asked the same gate, was
 * parked, and was then overwritten by the first: its result never came.
 */
export const ASKING_RATE: {
  readonly job: never;
  readonly index: number;
  readonly observed: boolean;
} = Object.freeze({ job: undefined as never, index: -1, observed: false });

interface Consumer<J, R> {
  resolve: (result: IteratorResult<Result<J, R>, undefined>) => void;
  reject: (error: unknown) => void;
}

const DONE: IteratorResult<never, undefined> = Object.freeze({ done: true, value: undefined });

/**
 * The pull-based worker loop behind each pipeline stage and a `runPool` with gates other than a
 * lone rate, a timeout, an adaptive limit, a watchdog or hooks (any other runPool has its own
 * lean engine, scheduler/lean-engine.ts, with the same contract): N slots pulling from one
 * source, never more than `concurrency + buffer` jobs ahead of the consumer, so a slow consumer
 * slows the pulling (backpressure) instead of piling results up. Internal.
 */
export class PullEngine<J, R> implements AsyncIterableIterator<Result<J, R>>, JobOwner<J, R> {
  readonly #source: Source<J>;
  readonly #isAsync: boolean;
  readonly #worker: WorkerFunction<J, R>;
  readonly #opts: EngineOptions<J>;
  readonly #slots: Slots<JobRun<J, R>>;
  /** With `rate` as the only gate: the pulled job waiting for its permit. */
  #parked: Parked<J> | undefined = undefined;
  /** Start times are read (for stats or an adaptive limit). */
  readonly #timed: boolean;
  readonly #ready = new Deque<Result<J, R>>();
  readonly #byIndex = new Map<number, Result<J, R>>();
  #pulled = 0;
  #yielded = 0;
  #pulling = false;
  #sourceDone = false;
  #sourceError: { error: unknown } | undefined;
  #stopped = false;
  /** Set when a stop cancels: a value a pending pull yields after it settles as this error. */
  #cancelWith: Error | undefined;
  /** The pull pending at a stop outlived the source's `return()`: what it yields is not ours. */
  #abandoned = false;
  /** Waiting `next()` calls, oldest first (callers may call next() again without awaiting). */
  readonly #consumers = new Deque<Consumer<J, R>>(4);
  #unsubscribe: (() => void) | undefined;
  #returned = false;
  /** With gates other than a lone rate: pulled jobs waiting to start, in the gates' order. */
  readonly #queue: RunQueue<GatedRun<J, R>> | undefined;
  readonly #retrying = new Set<RetryWait<J, R>>();
  /** Jobs taken off the queue and retry waits by an abort, not yet settled (see #cancelGated). */
  #canceling = 0;
  /**
   * Inside a `settled` hook (user code: a subscriber) whose job's result is not queued yet: the
   * iteration must not end (done) meanwhile — a subscriber that aborts the signal would deliver
   * the end, and the result would come after it and be lost.
   */
  #inSettledHook = 0;
  /** Inside {@link cancelRunning}. */
  #cancelingRunning = false;
  /** Counts `#startQueued` passes: a rate permit given back is kept for its own pass only. */
  #passes = 0;
  /**
   * Set by {@link cancelRunning} on an engine with gates: its rate and key wake-ups are stopped,
   * so a job pulled after it (a later pipeline stage still takes what the stages before it
   * yield) settles as this error instead of waiting for a permit or a turn that never comes.
   */
  #gatesStopped: Error | undefined;
  /**
   * Jobs pulled and not yet placed (started, parked, queued or settled) while user code runs for
   * them — an `accepted` subscriber, a limiter, a key or priority function. Each holds a slot (a
   * next() from that code must not start a job in it) and keeps the iteration from ending (an
   * abort from that code must not deliver the end before the job's result).
   */
  #accepting = 0;
  readonly #rate: RateGate | undefined;
  readonly #keyWake: KeyWake | undefined;
  #order = 0;
  #state: PoolState = 'open';

  constructor(
    source: Iterable<J> | AsyncIterable<J>,
    worker: WorkerFunction<J, R>,
    opts: EngineOptions<J>,
  ) {
    const { iterator, isAsync } = openIterator(source);
    this.#isAsync = isAsync;
    this.#source = iterator;
    this.#worker = worker;
    this.#opts = opts;
    this.#slots = new Slots(opts.concurrency);
    this.#timed = opts.stats !== undefined || opts.adaptive !== undefined;
    const gates = opts.gates;
    const events = opts.events;
    const onWait =
      events &&
      ((ms?: number) => publishRateLimited(events.name, events.kind, 'rate', undefined, ms));
    if (gates !== undefined && rateOnly(gates) && opts.adaptive === undefined) {
      // A lone rate needs no queue: a pulled job starts as soon as its permit is granted, and
      // waits parked (no more pulls) otherwise — the ungated engine plus one check per start.
      this.#rate = new RateGate(
        gates.rate as RateLimiter,
        () => this.#wakeParked(),
        (error) => this.#failParked(error),
        onWait,
      );
    } else if (gates !== undefined) {
      this.#queue = gates.newQueue();
      const wake = () => this.#startQueued();
      this.#rate =
        gates.rate && new RateGate(gates.rate, wake, (error) => this.#failNext(error), onWait);
      this.#keyWake = new KeyWake(wake);
    }
    const { signal } = opts;
    // Already aborted: nothing is pulled, and the pool ends aborted (as an abort during the run).
    if (signal?.aborted) this.stopPulling(abortErrorFrom(signal));
    else if (signal) this.#unsubscribe = onAbort(signal, () => this.#abort(signal));
  }

  /** open, closing, drained or aborted (see {@link #setState}). */
  get state(): PoolState {
    return this.#state;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#slots.running;
  }

  /** Finished results not yet taken by the consumer. */
  get buffered(): number {
    return this.#ready.length + this.#byIndex.size;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Result<J, R>, undefined>> {
    if (this.#returned) return Promise.resolve(DONE);
    if (this.#consumers.length === 0) {
      const result = this.#take();
      if (result) {
        this.#fill();
        return Promise.resolve({ done: false, value: result });
      }
      if (this.#finished()) return this.#end();
    }
    return new Promise((resolve, reject) => {
      this.#consumers.push({ resolve, reject });
      this.#fill();
      this.#deliver();
    });
  }

  /**
   * Breaking out of `for await`: stop pulling, abort running workers, drop their results, and
   * close the source. The source's `return()` is awaited unless a pull is pending: an async
   * generator queues `return()` behind its pending `next()`, which may never settle.
   */
  async return(): Promise<IteratorResult<Result<J, R>, undefined>> {
    this.#returned = true;
    this.#setState('aborted');
    this.#stop();
    this.cancelRunning(new AbortError(undefined, 'result iteration stopped'));
    this.#ready.drain();
    this.#byIndex.clear();
    for (let c = this.#consumers.shift(); c; c = this.#consumers.shift()) c.resolve(DONE);
    const closing = this.#closeSource();
    if (!this.#pulling) await closing;
    return DONE;
  }

  async throw(error?: unknown): Promise<IteratorResult<Result<J, R>, undefined>> {
    await this.return();
    throw error;
  }

  /**
   * Cancels every running job with `error` — and, with gates, every queued job and every job
   * waiting to retry; they settle (and yield) as failures.
   */
  cancelRunning(error: Error): void {
    this.#setState('aborted');
    // Not re-entrant: a call from user code run while the jobs below are canceled (a subscriber
    // of their settlement calling return() or the pipeline's abort()) leaves them to this one —
    // canceling the next job itself went one level deeper per job.
    if (this.#cancelingRunning) return;
    this.#cancelingRunning = true;
    if (this.#queue !== undefined || this.#rate !== undefined) this.#gatesStopped ??= error;
    try {
      if (this.#queue !== undefined) this.#cancelGated(error);
      else if (this.#rate !== undefined) this.#cancelParked(error);
      for (const run of this.#slots.items()) run.cancel(error);
    } finally {
      this.#cancelingRunning = false;
    }
  }

  /**
   * Stops pulling the source; what was pulled still yields its results. A pull already pending
   * is waited for until the source's `return()` settles: a value it yields meanwhile runs (a
   * drain) or, with `cancelWith`, settles as that error without running (an abort) — never
   * dropped.
   */
  stopPulling(cancelWith?: Error): void {
    this.#setState(cancelWith === undefined ? 'closing' : 'aborted');
    this.#cancelWith ??= cancelWith;
    if (this.#stopped) return;
    this.#stop();
    void this.#closeSource();
    this.#deliver();
  }

  #abort(signal: AbortSignal): void {
    const error = abortErrorFrom(signal);
    this.stopPulling(error);
    this.cancelRunning(error);
  }

  /** open → closing (stopped pulling) → drained (every result delivered), or → aborted; the
   * end states are final. Published on `sluice:pool:state` when the engine is named. */
  #setState(state: PoolState): void {
    const previous = this.#state;
    if (previous === state || previous === 'drained' || previous === 'aborted') return;
    this.#state = state;
    const events = this.#opts.events;
    if (events !== undefined) publishPoolState(events.name, events.kind, previous, state);
  }

  #stop(): void {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  #closeSource(): Promise<void> {
    if (this.#sourceDone) return Promise.resolve();
    this.#sourceDone = true;
    return closeSource(this.#source, () => {
      if (!this.#pulling) return;
      this.#pulling = false;
      this.#abandoned = true;
      this.#deliver();
    });
  }

  #take(): Result<J, R> | undefined {
    let result: Result<J, R> | undefined;
    if (this.#opts.ordered) {
      result = this.#byIndex.get(this.#yielded);
      if (result) this.#byIndex.delete(this.#yielded);
    } else {
      result = this.#ready.shift();
    }
    // No pulling from here: callers refill once the consumer is settled (re-entrancy safe).
    if (result) this.#yielded++;
    return result;
  }

  #finished(): boolean {
    // A pull still pending is waited for even once stopped (what it yields must settle), until
    // the source's return() settles (see #closeSource).
    return (
      !this.#pulling &&
      (this.#stopped || this.#sourceDone) &&
      this.#slots.running === 0 &&
      this.#parked === undefined &&
      (this.#queue === undefined ||
        (this.#queue.length === 0 && this.#retrying.size === 0 && this.#canceling === 0)) &&
      this.#inSettledHook === 0 &&
      this.#accepting === 0 &&
      this.#ready.length === 0 &&
      this.#byIndex.size === 0
    );
  }

  #end(): Promise<IteratorResult<Result<J, R>, undefined>> {
    this.#setState('drained');
    this.#stop();
    const failure = this.#sourceError;
    if (failure) {
      this.#sourceError = undefined;
      return Promise.reject(failure.error);
    }
    return Promise.resolve(DONE);
  }

  #deliver(): void {
    while (this.#consumers.length > 0) {
      const result = this.#take();
      if (result) {
        // Taken off the queue before resolving, so a re-entrant call cannot serve it twice.
        (this.#consumers.shift() as Consumer<J, R>).resolve({ done: false, value: result });
        this.#fill();
      } else if (this.#finished()) {
        const consumer = this.#consumers.shift() as Consumer<J, R>;
        this.#end().then(consumer.resolve, consumer.reject);
      } else {
        return;
      }
    }
  }

  #canPull(): boolean {
    const { buffer } = this.#opts;
    const concurrency = this.#slots.limit;
    // With a gates' queue, jobs are pulled ahead of free slots (up to the same bound): the gates
    // choose among them (priority, per-key turns). A lone rate pulls one job per free slot and
    // none while that job waits for its permit (parked).
    return (
      !this.#sourceDone &&
      !this.#stopped &&
      !this.#pulling &&
      ((this.#slots.running + this.#accepting < this.#slots.limit && this.#parked === undefined) ||
        this.#queue !== undefined) &&
      this.#pulled < this.#yielded + concurrency + buffer
    );
  }

  #fill(): void {
    while (this.#canPull()) {
      if (this.#isAsync) {
        this.#pullAsync();
        return;
      }
      let job: J;
      // Pulling while the source's next() runs, as for an async pull: a next(), return() or
      // abort it makes on this iteration pulls nothing more (no job beyond `concurrency`).
      this.#pulling = true;
      // The step is read inside the try, as for-of reads it: a non-object or a throwing `done`
      // or `value` getter is the source failing.
      try {
        const step = (this.#source as Iterator<J>).next();
        if (typeof step !== 'object' || step === null) throw notAnObject(step);
        if (step.done) {
          this.#pulling = false;
          this.#sourceDone = true;
          this.#deliver();
          return;
        }
        job = step.value;
      } catch (error) {
        this.#pulling = false;
        this.#sourceFailed(error);
        return;
      }
      this.#pulling = false;
      // Stopped meanwhile (from inside that next()): as an async pull's value (see #onStep).
      if (this.#stopped) {
        if (!this.#returned) {
          const cancel = this.#cancelWith;
          if (cancel !== undefined) this.#cancelUnstarted(job, cancel);
          else this.#start(job);
        }
        this.#deliver();
        return;
      }
      this.#start(job);
    }
  }

  #pullAsync(): void {
    this.#pulling = true;
    let step: Promise<unknown>;
    try {
      // A next() that throws synchronously is the source failing, as in for await. Promise.resolve,
      // like for await's Await(): a plain { value, done } is accepted, a thenable adopted, a native
      // promise used as is (no extra tick) — and a throw reading its `constructor` (user code on
      // a hostile promise) is the source failing too, as for await's.
      step = Promise.resolve((this.#source as AsyncIterator<J>).next());
    } catch (error) {
      this.#pulling = false;
      this.#sourceFailed(error);
      return;
    }
    promiseThen.call(
      step,
      (settled) => this.#onStep(settled),
      (error: unknown) => {
        if (this.#abandoned) return;
        this.#pulling = false;
        // After a stop the source was closed by us: its failure to answer is not news.
        if (this.#stopped) this.#deliver();
        else this.#sourceFailed(error);
      },
    );
  }

  /** An async pull settled with `step`. */
  #onStep(step: unknown): void {
    if (this.#abandoned) return;
    this.#pulling = false;
    // After return() nobody reads results: the source is being closed, the value is not wanted.
    if (this.#returned) return;
    let job: J;
    try {
      if (typeof step !== 'object' || step === null) throw notAnObject(step);
      const { done } = step as IteratorResult<J>;
      if (done) {
        this.#sourceDone = true;
        this.#deliver();
        return;
      }
      job = (step as IteratorResult<J>).value;
    } catch (error) {
      if (this.#stopped) this.#deliver();
      else this.#sourceFailed(error);
      return;
    }
    const cancel = this.#cancelWith;
    if (cancel !== undefined) this.#cancelUnstarted(job, cancel);
    else this.#start(job);
    this.#fill();
    this.#deliver();
  }

  /** A job pulled after an abort: it settles as `error` without running. */
  #cancelUnstarted(job: J, error: Error): void {
    const index = this.#pulled++;
    this.#accepting++;
    const observed = this.#opts.hooks?.accepted(job, index) === true;
    this.#accepting--;
    this.#settleUnstarted(job, index, observed, error);
  }

  /**
   * A pulled job settles as `error` without having run — pulled after an abort, failed by its
   * key or priority function, or parked for a rate permit that never came (the rate-only path):
   * counted (as `outcome`), its `settled` hook called, its result yielded (dropped after
   * `return()`).
   */
  #settleUnstarted(
    job: J,
    index: number,
    observed: boolean,
    error: Error,
    outcome: Outcome = outcomeOf(error),
  ): void {
    this.#opts.stats?.settledUnstarted(outcome);
    if (observed) this.#settledHook(job, index, error);
    if (!this.#returned) this.#push(this.#unstartedResult(job, index, error));
  }

  /** The result of a job that failed before any run; with `retry`, `attempts: 0` and `errors`
   * as every other result of a retrying pool carries. */
  #unstartedResult(job: J, index: number, error: Error): Result<J, R> {
    const result = makeResult<J, R>(job, index, error, undefined);
    if (this.#opts.gates?.retry === undefined) return result;
    return attemptsResult(result, { attempt: 1, errors: undefined, workerId: -1 }, error);
  }

  /**
   * A job pulled (`index`) while user code run since its pull — an `accepted` subscriber, a key,
   * priority or rate limiter function — aborted the signal or ended the iteration: it settles as
   * canceled without running (true), as one pulled after the stop would. False: still live.
   */
  #settleIfStopped(job: J, index: number, observed: boolean, accepting: boolean): boolean {
    const error =
      this.#cancelWith ??
      (this.#returned ? new AbortError(undefined, 'result iteration stopped') : undefined);
    if (error === undefined) return false;
    if (accepting) this.#accepting--;
    this.#settleUnstarted(job, index, observed, error);
    return true;
  }

  /** The `settled` hook, during which the iteration cannot end (see {@link #inSettledHook}). */
  #settledHook(job: J, index: number, error: Error | undefined): void {
    this.#inSettledHook++;
    try {
      this.#opts.hooks?.settled?.(job, index, error);
    } finally {
      this.#inSettledHook--;
    }
  }

  #sourceFailed(error: unknown): void {
    this.#sourceDone = true;
    this.#sourceError = { error };
    this.#deliver();
  }

  #start(job: J): void {
    // The index is the job's before any user code runs: an `accepted` subscriber may pull the
    // next job (calling next()), which must get the next index, not this one's.
    const index = this.#pulled++;
    // Holds its slot from here until placed (see #accepting).
    this.#accepting++;
    const observed = this.#opts.hooks?.accepted(job, index) === true;
    if (observed && this.#settleIfStopped(job, index, observed, true)) return;
    if (this.#opts.bypass?.(job)) {
      this.#accepting--;
      if (observed) this.#settledHook(job, index, undefined);
      this.#push(makeResult<J, R>(job, index, undefined, job as unknown as R));
      return;
    }
    if (this.#gatesStopped !== undefined) {
      this.#accepting--;
      this.#settleUnstarted(job, index, observed, this.#gatesStopped);
      return;
    }
    if (this.#queue !== undefined) {
      this.#admit(job, index, observed);
      return;
    }
    if (this.#rate !== undefined) {
      this.#parked = ASKING_RATE;
      const granted = this.#rate.take();
      if (this.#parked === ASKING_RATE) this.#parked = undefined;
      // The limiter (user code) may have aborted the signal, ended the iteration or canceled
      // the stage — then no wake-up comes for a parked job (the gate is stopped): it settles now.
      if (this.#settleIfStopped(job, index, observed, true)) return;
      if (!granted) {
        this.#accepting--;
        if (this.#gatesStopped !== undefined) {
          this.#settleUnstarted(job, index, observed, this.#gatesStopped);
          return;
        }
        this.#parked = { job, index, observed };
        return;
      }
    }
    this.#accepting--;
    this.#startRun(job, index, observed);
  }

  /** Starts a pulled job on a free slot. */
  #startRun(job: J, index: number, observed: boolean): void {
    const run = new JobRun<J, R>(job, index, this);
    run.observed = observed;
    const workerId = this.#slots.acquire(run);
    if (this.#timed) {
      run.startedAt = performance.now();
      this.#opts.stats?.recordStart(run.startedAt, 0);
    }
    const around = observed ? this.#opts.hooks?.started?.(job, run.index, 1) : undefined;
    if (deadlockStorageActive())
      outsideJobs(startWorker, run, this.#worker, workerId, this.#opts.timeout, around);
    else run.start(this.#worker, workerId, this.#opts.timeout, around);
  }

  /** Feeds a finished attempt to the adaptive limit; resizes the slots when it moved. */
  #sample(run: JobRun<J, R>, error: Error | undefined): void {
    const adaptive = this.#opts.adaptive as AdaptiveConcurrency;
    const now = performance.now();
    const limit = feedLimit(adaptive, run.startedAt, error, now, this.#slots.running);
    if (limit === undefined) return;
    this.#slots.resize(limit);
    this.#opts.stats?.setConcurrency(limit);
  }

  /** A canceled job's worker runs on, then returns (the watchdog's zombies). */
  [LINGER](run: JobRun<J, R>, error: Error | undefined): void {
    const watchdog = this.#opts.watchdog;
    if (watchdog === undefined) return;
    if (error === undefined) watchdog.returned(run);
    else watchdog.abandoned(run, this.#opts.view?.(run.job) ?? run.job, run.index, error);
  }

  /** The rate's permit for the parked job may be due: start it if the rate now allows. */
  #wakeParked(): void {
    const parked = this.#parked;
    if (parked === undefined || parked === ASKING_RATE) return;
    if (this.#cancelWith === undefined && !(this.#rate as RateGate).take()) return;
    this.#parked = undefined;
    // Aborted before, or by the limiter (user code) just now: settles without running.
    if (!this.#settleIfStopped(parked.job, parked.index, parked.observed, false)) {
      this.#startRun(parked.job, parked.index, parked.observed);
    }
    this.#fill();
    this.#deliver();
  }

  /** The rate limiter failed: the parked job fails with that error, without running. */
  #failParked(error: Error): void {
    const parked = this.#parked;
    if (parked === undefined || parked === ASKING_RATE) return;
    this.#parked = undefined;
    this.#settleParked(parked, error);
    this.#fill();
  }

  /** Abort: no more permits; the parked job settles as `error` without running. */
  #cancelParked(error: Error): void {
    (this.#rate as RateGate).stop();
    const parked = this.#parked;
    // Asked (the limiter stopped the pool): the job asked about settles once take() returns.
    if (parked === undefined || parked === ASKING_RATE) return;
    this.#parked = undefined;
    this.#settleParked(parked, error);
  }

  #settleParked(parked: Parked<J>, error: Error): void {
    this.#settleUnstarted(parked.job, parked.index, parked.observed, error);
  }

  /** A job ended: free its slot, queue its result, pull the next. Called by the JobRun. */
  [SETTLE](run: JobRun<J, R>, error: Error | undefined, value: R | undefined): void {
    if (this.#queue !== undefined) {
      this.#settleGated(run as GatedRun<J, R>, error, value);
      return;
    }
    this.#slots.release(run.workerId);
    if (this.#opts.adaptive !== undefined && !run.canceled) this.#sample(run, error);
    this.#opts.stats?.settled(outcomeOf(error), run.startedAt, performance.now());
    if (run.observed) this.#settledHook(run.job, run.index, error);
    // After `return()` nobody will read results: drop them.
    if (this.#returned) return;
    this.#push(makeResult(run.job, run.index, error, value));
    this.#fill();
  }

  /** A pulled job enters the gates' queue (a throwing key or priority function fails it). */
  #admit(job: J, index: number, observed: boolean): void {
    const gates = this.#opts.gates as EngineGates<J>;
    const run = new GatedRun<J, R>(job, index, this);
    run.observed = observed;
    try {
      if (gates.key !== undefined) run.key = keyOf(gates.key, job);
      if (gates.priority !== undefined) run.priority = priorityOf(gates.priority, job);
    } catch (thrown) {
      this.#accepting--;
      // Counted as failed whatever it threw (a stage's stats; Pool counts it by its error).
      this.#settleUnstarted(job, run.index, observed, toError(thrown), 'failed');
      return;
    }
    // The key or priority function (user code) may have aborted the signal or ended the iteration.
    if (this.#settleIfStopped(job, run.index, observed, true)) return;
    this.#accepting--;
    this.#enqueue(run);
    this.#startQueued();
  }

  #enqueue(run: GatedRun<J, R>): void {
    run.order = this.#order++;
    (this.#queue as RunQueue<GatedRun<J, R>>).push(run);
  }

  /** Wakes the engine when the soonest key's rate allows; a new wait is published. */
  #armKeyWake(queue: RunQueue<GatedRun<J, R>>, now: number): void {
    const wait = queue.readyIn(now);
    const events = this.#opts.events;
    if (this.#keyWake?.arm(now, wait) === true && events !== undefined) {
      publishRateLimited(events.name, events.kind, 'key', queue.nextReadyKey?.(), wait);
    }
  }

  /** Starts queued jobs while a slot, the rate and their keys allow. */
  #startQueued(): void {
    const queue = this.#queue as RunQueue<GatedRun<J, R>>;
    const keyRate = this.#opts.gates?.keyRate === true;
    let now = performance.now();
    const pass = ++this.#passes;
    let first = true;
    while (this.#slots.available && queue.length > 0 && this.#cancelWith === undefined) {
      // A key's rate records the start at `now`: read again after a worker ran (its start is
      // user code), or the start would be stamped early.
      if (keyRate && !first) now = performance.now();
      first = false;
      if (this.#rate !== undefined) {
        // Only a job that may start now takes a permit (one held later would be stale).
        if (!queue.ready(now)) {
          this.#armKeyWake(queue, now);
          return;
        }
        if (!this.#rate.take(pass)) return;
      }
      const run = queue.take(now);
      if (run === undefined) {
        this.#rate?.giveBack(pass);
        this.#armKeyWake(queue, now);
        return;
      }
      const workerId = this.#slots.acquire(run);
      if (this.#timed) {
        run.startedAt = now;
        this.#opts.stats?.recordStart(now, 0);
      }
      const around = run.observed
        ? this.#opts.hooks?.started?.(run.job, run.index, run.attempt)
        : undefined;
      if (deadlockStorageActive()) {
        outsideJobs(startWorker, run, this.#worker, workerId, this.#opts.timeout, around);
      } else run.start(this.#worker, workerId, this.#opts.timeout, around);
    }
  }

  #settleGated(run: GatedRun<J, R>, error: Error | undefined, value: R | undefined): void {
    const now = performance.now();
    const queue = this.#queue as RunQueue<GatedRun<J, R>>;
    const started = run.workerId >= 0;
    if (started) {
      this.#slots.release(run.workerId);
      if (run.key !== undefined) queue.finished(run, now);
      if (this.#opts.adaptive !== undefined && !run.canceled) this.#sample(run, error);
    }
    const retry = this.#opts.gates?.retry;
    const live = !this.#returned && this.#cancelWith === undefined;
    if (retry !== undefined && error !== undefined && started && live) {
      const delay = retry.next(error, run.attempt);
      // retryIf or the backoff may have aborted the iteration (its signal) or ended it.
      const stillLive = !this.#returned && this.#cancelWith === undefined;
      if (!stillLive) {
        if (this.#cancelWith !== undefined) error = this.#cancelWith;
      } else if (delay >= 0) {
        if (this.#opts.stats) this.#opts.stats.retrying(run.startedAt, now);
        // Waiting before its subscribers hear of it: one that aborts the signal ends the wait.
        this.#retryLater(run, error, delay);
        if (run.observed)
          this.#opts.hooks?.retried?.(run.job, run.index, run.attempt, error, delay);
        this.#startQueued();
        return;
      }
    }
    if (started) this.#opts.stats?.settled(outcomeOf(error), run.startedAt, now);
    else this.#opts.stats?.settledUnstarted(outcomeOf(error));
    if (run.observed) this.#settledHook(run.job, run.index, error);
    if (!this.#returned) {
      const result = makeResult(run.job, run.index, error, value);
      this.#push(retry === undefined ? result : attemptsResult(result, run, error));
    }
    this.#startQueued();
    this.#fill();
  }

  #retryLater(failed: GatedRun<J, R>, error: Error, delay: number): void {
    const next = new GatedRun<J, R>(failed.job, failed.index, this);
    next.attempt = failed.attempt + 1;
    next.errors = [...(failed.errors ?? []), error];
    next.priority = failed.priority;
    next.key = failed.key;
    next.observed = failed.observed;
    const wait: RetryWait<J, R> = {
      run: next,
      timer: setTimeout(() => {
        if (!this.#retrying.delete(wait)) return;
        this.#enqueue(next);
        this.#startQueued();
      }, delay),
    };
    this.#retrying.add(wait);
  }

  /** The rate limiter failed: the job that needed the permit fails with that error. */
  #failNext(error: Error): void {
    const queue = this.#queue as RunQueue<GatedRun<J, R>>;
    const now = performance.now();
    const run = queue.take(now);
    if (run === undefined) return;
    if (run.key !== undefined) queue.finished(run, now);
    run.cancel(error);
  }

  /** Abort: queued jobs and retry waits settle as `error` without running. */
  #cancelGated(error: Error): void {
    this.#rate?.stop();
    this.#keyWake?.stop();
    const waiting = (this.#queue as RunQueue<GatedRun<J, R>>).clear();
    for (const wait of this.#retrying) {
      clearTimeout(wait.timer);
      waiting.push(wait.run);
    }
    this.#retrying.clear();
    waiting.sort((a, b) => a.index - b.index);
    // Out of the queue but not settled yet: the iteration must not end (done) while the first
    // of them delivers, or the results of the others would come after the end and be lost.
    this.#canceling = waiting.length;
    for (const run of waiting) {
      this.#canceling--;
      run.cancel(error);
    }
  }

  #push(result: Result<J, R>): void {
    if (this.#opts.ordered) this.#byIndex.set(result.index, result);
    else this.#ready.push(result);
    this.#deliver();
  }
}

/** True when `rate` is the only gate: the rate-only path, without the gates' queue. */
export function rateOnly<J>(gates: EngineGates<J>): boolean {
  return (
    gates.rate !== undefined &&
    gates.retry === undefined &&
    gates.key === undefined &&
    gates.priority === undefined
  );
}

/** The priority of `job` from the `priority` function: a finite number. */
function priorityOf<J>(priority: (job: J) => number, job: J): number {
  const value = priority(job);
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw coded(
      new TypeError(`the priority function returned ${String(value)}, expected a finite number`),
      'ERR_INVALID_RETURN_VALUE',
    );
  }
  return value;
}

/**
 * The source's iterator, opened as for-of / for await open it: its async iterator when it has
 * one, else its iterator; a factory answering a non-object is the source failing with the
 * TypeError for await throws (it would otherwise fail later, naming our internals).
 */
export function openIterator<J>(source: Iterable<J> | AsyncIterable<J>): {
  iterator: Iterator<J> | AsyncIterator<J>;
  isAsync: boolean;
} {
  const isAsync = typeof (source as AsyncIterable<J>)[Symbol.asyncIterator] === 'function';
  const iterator = isAsync
    ? (source as AsyncIterable<J>)[Symbol.asyncIterator]()
    : (source as Iterable<J>)[Symbol.iterator]();
  if ((typeof iterator !== 'object' && typeof iterator !== 'function') || iterator === null) {
    const method = isAsync ? 'Symbol.asyncIterator' : 'Symbol.iterator';
    throw new TypeError(`Result of the ${method} method is not an object`);
  }
  return { iterator, isAsync };
}

/** The TypeError for an iterator step that is not an object (as for-of and for await throw). */
export function notAnObject(step: unknown): TypeError {
  return new TypeError(
    `Iterator result ${typeof step === 'object' ? 'null' : typeof step} is not an object`,
  );
}

/**
 * An idle engine and job, kept for the life of the process on purpose. V8 keeps an object's
 * hidden classes (maps) only while some instance lives; once the last engine and its jobs are
 * garbage, a full GC drops the maps and with them every optimised function specialised on
 * them, so the next runPool re-warms from scratch (about 2x slower for its first ~200k jobs;
 * BENCHMARKS.md, "Core", finding 1). These instances pin the maps for a few hundred bytes.
 * Exported only so that the module keeps them; not part of the package's API.
 */
export const pinnedForOptimisedCode: readonly object[] = pinInstances();

function pinInstances(): object[] {
  const engine = new PullEngine<unknown, unknown>([], () => undefined, {
    concurrency: 1,
    buffer: 0,
    ordered: false,
    timeout: undefined,
    signal: undefined,
    stats: undefined,
  });
  const run = new JobRun<unknown, unknown>(undefined, 0, engine);
  // As real jobs leave it: a timestamp is a double (a different field representation).
  run.startedAt = performance.now();
  return [engine, run];
}
