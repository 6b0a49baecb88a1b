/**
 * Hands accepted jobs to threads and turns what threads report into settled jobs: batching,
 * cancellation and timeouts, crashes, replacement with start-up backoff. Internal; the
 * ThreadPool façade puts a `Pool` in front of it for intake, lifecycle and outcome counts.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { ResourceLimits } from 'node:worker_threads';
import { TimeoutError, toError, WorkerCrashedError, type WorkerStartupError } from '../errors.js';
import { coded } from '../internal/options.js';
import type { Watchdog } from '../observability/watchdog.js';
import type { ExecutorJob } from '../scheduler/executor.js';
import { outcomeOf, StatsRecorder } from '../stats.js';
import { BATCH_BUDGET_MS, BatchSize } from './batch-size.js';
import { Fifo } from './fifo.js';
import { serializeError } from './messages.js';
import type { ThreadSpec } from './module-spec.js';
import { Startup } from './startup.js';
import { type Sent, Thread, type ThreadEvents } from './thread.js';

/**
 * The scheduler's record of one job: an object literal (built from one boilerplate, cheaper
 * than a class's field definitions), with no number of its own that is not a small integer —
 * its acceptance time is read from the core's job, its hand-over time is one object per batch.
 * A double in an object field is a separate 16-byte heap number, and with 100,000 tiny jobs a
 * round every byte per job is paid again in young-generation collections.
 */
interface Job extends Sent {
  /**
   * The core's job: its outcome goes to `target.complete`. Its job, index, transfer list and
   * priority are read from it, not copied here (each copy is 8 bytes more per job).
   */
  readonly target: ExecutorJob<unknown, unknown>;
  settled: boolean;
  thread: Thread<Job> | undefined;
  /** The timeout, while the job is with a thread. */
  timer: NodeJS.Timeout | undefined;
  /** Armed when the job was canceled while running: its thread's deadline to let it go. */
  grace: NodeJS.Timeout | undefined;
  /** When it was first sent to a thread (shared by its batch); undefined before. */
  handover: Handover | undefined;
  /**
   * The job came with a transfer list. Once sent, its moved objects live only in the thread's
   * copy, so it cannot be taken back and sent elsewhere: it travels alone, to an idle thread.
   */
  moved: boolean;
  /** Travels in a message of its own: `moved`, or its batch could not be decoded in a thread. */
  alone: boolean;
  /** Higher is sent to a thread first (the submit's `priority`); FIFO within one. */
  priority: number;
}

/** One hand-over of a batch to a thread: the clock reading its jobs share. */
interface Handover {
  readonly at: number;
}

export interface SchedulerOptions {
  threads: number;
  timeout: number | undefined;
  abortGrace: number;
  maxStartupFailures: number;
  resourceLimits: ResourceLimits | undefined;
  /** The `watchdog` option's: told of hand-overs, settlements and threads running on. */
  watchdog?: Watchdog | undefined;
  /** Called once when the pool gives up on starting threads. */
  onFail: (error: WorkerStartupError) => void;
  /**
   * The jobs one thread holds at most changed (see {@link Scheduler.held}): the pool in front
   * admits that many per thread on top of its queue.
   */
  onHeld?: (held: number) => void;
}

export class Scheduler implements ThreadEvents<Job> {
  readonly #spec: ThreadSpec;
  readonly #opts: SchedulerOptions;
  readonly #slots: (Thread<Job> | undefined)[] = [];
  readonly #retired = new Set<Thread<Job>>();
  /** Jobs waiting for a thread; jobs taken back from a thread go back in front. */
  readonly #fifo = new Fifo<Job>();
  /** Canceled jobs still running, each with its own grace timer. */
  readonly #inGrace = new Set<Job>();
  /** Jobs each slot's threads reported, across replacements: indexed by slot. */
  readonly #completed: number[] = [];
  readonly #timing: StatsRecorder;
  readonly #startup: Startup;
  readonly #batchSize = new BatchSize();
  #target: number;
  #stopped = false;
  #held = 1;

  constructor(spec: ThreadSpec, opts: SchedulerOptions) {
    this.#spec = spec;
    this.#opts = opts;
    this.#target = opts.threads;
    this.#timing = new StatsRecorder(opts.threads);
    this.#startup = new Startup(opts.maxStartupFailures, displayPath(spec.module));
    for (let id = 0; id < this.#target; id++) this.#spawn(id);
  }

  /** Resolves once a thread loaded the module; rejects when the pool gave up. */
  get ready(): Promise<void> {
    return this.#startup.ready;
  }

  get failure(): WorkerStartupError | undefined {
    return this.#startup.failure;
  }

  /**
   * Runs one accepted job; its outcome goes to `target.complete`, exactly once, on a microtask
   * (see {@link #settle}). `target.queuedAt` (performance.now()) is when the pool accepted it
   * (no wait is counted when undefined); jobs of a higher `target.priority` go to threads first;
   * `target.index` identifies it for {@link cancel}.
   */
  run(target: ExecutorJob<unknown, unknown>): void {
    const transfer = target.transfer;
    const moved = transfer !== undefined && transfer.length > 0;
    const job: Job = {
      seq: 0,
      batchSeq: 0,
      target,
      settled: false,
      thread: undefined,
      timer: undefined,
      grace: undefined,
      handover: undefined,
      moved,
      alone: moved,
      priority: target.priority,
    };
    if (this.#startup.failure) {
      this.#settle(job, this.#startup.failure, undefined);
      return;
    }
    this.#fifo.push(job);
    this.#scheduleDispatch();
  }

  /**
   * The pool canceled job `index` (its signal aborted): drop it if it waits, stop it if it runs.
   * A linear search: cancellations are rare, and this keeps per-job bookkeeping at zero.
   */
  cancel(index: number, error: Error): void {
    const job = this.#find((candidate) => candidate.target.index === index);
    if (job) this.#cancel(job, error);
  }

  /** Cancels every job this scheduler holds (pool abort, drain deadline). */
  cancelAll(error: Error): void {
    for (let job = this.#find(() => true); job; job = this.#find(() => true)) {
      this.#cancel(job, error);
    }
  }

  /**
   * Jobs one thread holds at most, by the measured time per job: 1 (one job at a time) until
   * jobs are measured, and for jobs of about 1 ms or more; else two batches (`2 × limit`, up to
   * `2 × MAX_BATCH`): one running while the other's results travel back and the next comes.
   */
  get held(): number {
    return this.#held;
  }

  /** Jobs accepted and not started in a thread. */
  get waiting(): number {
    let unstarted = 0;
    for (const thread of this.#slots) unstarted += thread?.unstarted ?? 0;
    return this.#fifo.length + unstarted;
  }

  /** While paused, nothing new is sent to a thread; jobs already sent go on. */
  get paused(): boolean {
    return this.#paused;
  }

  set paused(paused: boolean) {
    this.#paused = paused;
    if (!paused) this.#scheduleDispatch();
  }

  #paused = false;

  /**
   * Changes the thread count: surplus threads leave once idle; a slot wanted again takes back
   * the thread that left it if that one still runs its last job (so a job never runs beyond the
   * count), else a new thread starts now.
   */
  resize(threads: number): void {
    this.#target = threads;
    this.#timing.setConcurrency(threads);
    for (let id = 0; id < threads; id++) if (!this.#slots[id]) this.#revive(id);
    for (let id = threads; id < this.#slots.length; id++) {
      const thread = this.#slots[id];
      if (thread) this.#retire(thread);
      this.#slots[id] = undefined;
    }
    this.#slots.length = Math.min(this.#slots.length, threads);
    this.#scheduleDispatch();
  }

  /**
   * Terminates every thread. Call once no job is pending. `ready`, if still pending, rejects
   * with `error`.
   */
  async stop(error: Error): Promise<void> {
    this.#stopped = true;
    this.#startup.stop(error);
    for (const job of this.#inGrace) {
      clearTimeout(job.grace);
      this.#opts.watchdog?.returned(job); // its thread is terminated below
    }
    this.#inGrace.clear();
    const threads = [...this.#slots, ...this.#retired].filter((t): t is Thread<Job> => !!t);
    this.#slots.length = 0;
    await Promise.all(threads.map((thread) => thread.terminate()));
  }

  /** `running` counts every thread busy with a job, including threads on their way out. */
  timings(): { running: number; stats: ReturnType<StatsRecorder['snapshot']> } {
    let running = 0;
    for (const thread of this.#slots) if (thread?.running()) running++;
    for (const thread of this.#retired) if (thread.running()) running++;
    return { running, stats: this.#timing.snapshot(this.#target, running, this.waiting) };
  }

  threadStats(): { id: number; utilization: number; completed: number }[] {
    return this.#slots.flatMap((thread) =>
      thread
        ? [
            {
              id: thread.id,
              utilization: thread.utilization(),
              completed: this.#completed[thread.id] ?? 0,
            },
          ]
        : [],
    );
  }

  // ---- ThreadEvents ----

  onReady(thread: Thread<Job>): void {
    this.#startup.succeeded();
    if (this.#stopped || thread.retiring) void thread.terminate();
    this.#scheduleDispatch();
  }

  onStartFailed(thread: Thread<Job>, error: Error, permanent: boolean): void {
    if (this.#slots[thread.id] === thread) this.#slots[thread.id] = undefined;
    // A thread we terminated while it started (stop, resize) did not fail on its own.
    if (this.#stopped || this.#startup.failure || thread.retiring) return;
    const failure = this.#startup.failed(error, permanent, () => this.#refill());
    if (failure) this.#fail(failure);
  }

  onResult(
    thread: Thread<Job>,
    job: Job,
    error: Error | undefined,
    value: unknown,
    at: number,
  ): void {
    this.#completed[thread.id] = (this.#completed[thread.id] ?? 0) + 1;
    if (job.grace !== undefined) this.#clearGrace(job);
    this.#settle(job, error, value, at);
  }

  onResults(thread: Thread<Job>, count: number, busy?: number): void {
    this.#measure(thread, count, busy);
    if (thread.retiring && !thread.busy) void thread.terminate();
    this.#scheduleDispatch();
  }

  onUndecodable(thread: Thread<Job>, seq: number, error: Error): void {
    // Only news while that message's first job is still here, not started.
    if (!thread.find((job) => job.seq === seq && !thread.hasStarted(job))) return;
    // The thread cannot start anything past the message it lost: take back all of it.
    const taken = thread.takeBack();
    const lost = taken.filter((job) => job.batchSeq === seq);
    if (lost.length === 1) {
      const job = lost[0] as Job;
      job.thread = undefined;
      this.#settle(job, dataCloneError('job cannot be received by its thread', error), undefined);
      this.#requeue(taken.filter((other) => other !== job));
    } else {
      // Which of them the thread could not decode is unknown: each goes again on its own.
      for (const job of lost) job.alone = true;
      this.#requeue(taken);
    }
    this.#scheduleDispatch();
  }

  onExit(
    thread: Thread<Job>,
    exitCode: number,
    error: Error | undefined,
    running: Job | undefined,
    lost: Job[],
  ): void {
    this.#retired.delete(thread);
    for (const job of lost) {
      if (job.grace !== undefined) this.#clearGrace(job);
      const message = `worker thread ${thread.id} died (exit code ${exitCode}${error ? `: ${error.message}` : ''}) after job ${job.target.index} finished but before its result left the thread: the job ran once, its outcome is lost`;
      this.#settle(job, new WorkerCrashedError(message, exitCode, { cause: error }), undefined);
    }
    if (running?.grace !== undefined) this.#clearGrace(running);
    if (running) {
      const crash = new WorkerCrashedError(
        `worker thread ${thread.id} died while running job ${running.target.index} (exit code ${exitCode}${error ? `: ${error.message}` : ''})`,
        exitCode,
        { cause: error },
      );
      this.#settle(running, crash, undefined);
    }
    this.#requeue(thread.takeBack(), (job) => {
      const message = `worker thread ${thread.id} died before job ${job.target.index} started, and the objects transferred with the job went with it (exit code ${exitCode})`;
      return new WorkerCrashedError(message, exitCode, { cause: error });
    });
    const wasSlot = this.#slots[thread.id] === thread;
    if (wasSlot) this.#slots[thread.id] = undefined;
    // A thread that died after start-up is replaced at once; start-up failures back off instead.
    if (
      wasSlot &&
      thread.everReady &&
      !this.#stopped &&
      !this.#startup.failure &&
      thread.id < this.#target
    ) {
      this.#spawn(thread.id);
    }
    this.#scheduleDispatch();
  }

  // ---- internals ----

  #find(match: (job: Job) => boolean): Job | undefined {
    const waiting = this.#fifo.find((job) => !job.settled && match(job));
    if (waiting) return waiting;
    const unsettled = (job: Job) => !job.settled && match(job);
    for (const thread of this.#slots) {
      const found = thread?.find(unsettled);
      if (found) return found;
    }
    for (const thread of this.#retired) {
      const found = thread.find(unsettled);
      if (found) return found;
    }
    return undefined;
  }

  #spawn(id: number): void {
    const timed = this.#opts.timeout !== undefined;
    try {
      this.#slots[id] = new Thread<Job>(id, this.#spec, this.#opts.resourceLimits, this, timed);
    } catch (error) {
      // Node refused to start the thread (ERR_WORKER_INIT_FAILED: EAGAIN when the process is
      // out of threads or memory, or a stack it cannot give): a start-up failure of this slot,
      // retried with backoff until the pool gives up, as a thread that dies loading the module.
      // Handled on a microtask, never thrown: a replacement is spawned from a dead thread's
      // 'exit' handler or a restart timer (an uncaught exception there ended the process),
      // and the first threads from the ThreadPool's constructor, before its Pool exists.
      this.#slots[id] = undefined;
      queueMicrotask(() => {
        if (this.#stopped || this.#startup.failure) return;
        const failure = this.#startup.failed(toError(error), false, () => this.#refill());
        if (failure) this.#fail(failure);
      });
    }
  }

  /**
   * Fills empty slot `id`: with the thread resize took out of it, when that one is still alive
   * and not being terminated (it runs its last job: a new thread next to it would run one job
   * too many), else with a new thread.
   */
  #revive(id: number): void {
    for (const thread of this.#retired) {
      if (thread.id !== id || thread.terminating) continue;
      this.#retired.delete(thread);
      thread.retiring = false;
      this.#slots[id] = thread;
      return;
    }
    this.#spawn(id);
  }

  #refill(): void {
    if (this.#stopped || this.#startup.failure) return;
    for (let id = 0; id < this.#target; id++) if (!this.#slots[id]) this.#spawn(id);
  }

  #retire(thread: Thread<Job>): void {
    thread.retiring = true;
    this.#retired.add(thread);
    // Unstarted jobs move to other threads, unless one of them carries moved objects.
    if (!thread.find((job) => job.moved)) this.#requeue(thread.takeBack());
    if (!thread.busy) void thread.terminate();
  }

  /** Every waiting job gets the one start-up error; the façade then closes the pool. */
  #fail(failure: WorkerStartupError): void {
    for (let job = this.#fifo.shift(); job; job = this.#fifo.shift()) {
      this.#settle(job, failure, undefined);
    }
    this.#opts.onFail(failure);
  }

  /**
   * Dispatch runs once per event-loop turn, after the turn's results settled their jobs and the
   * pool accepted the next ones: the jobs that arrived meanwhile then leave in one message
   * instead of one each. The cost is one `setImmediate` of latency.
   */
  #scheduleDispatch(): void {
    if (this.#dispatchPending) return;
    this.#dispatchPending = true;
    setImmediate(this.#dispatchNow);
  }

  #dispatchPending = false;

  /**
   * The callback of {@link #scheduleDispatch}, made once: a closure created in that method
   * (called once per job) would make V8 allocate its context — holding `this` — on every call,
   * also when the dispatch is already pending (~100 bytes per job, the sampling heap profiler).
   */
  readonly #dispatchNow = (): void => {
    this.#dispatchPending = false;
    this.#dispatch();
  };

  #dispatch(): void {
    if (this.#startup.failure || this.#paused) return;
    if (this.#fifo.length === 0) this.#rebalance();
    const limit = this.#batchSize.limit();
    // Two rounds: a thread can hold two batches, one for each round.
    for (let round = 0; round < 2; round++) {
      // The backlog is shared among the threads that can take a batch now, not all of them: a
      // thread that already holds two batches takes none, and counting it halved the batch of
      // the one that asked (64 results back, 64 jobs admitted: two messages of 32, not one of 64).
      let takers = 0;
      for (const thread of this.#slots) if (thread && canTake(thread, limit)) takers++;
      for (const thread of this.#slots) {
        if (!thread || !canTake(thread, limit)) continue;
        const size = this.#batchSize.next(this.#fifo.length, takers--);
        if (size === 0) return;
        // Tiny jobs: a thread holds up to two batches, so it runs one while the results of the
        // other travel back (they leave together, at the end of a batch) and the next comes:
        // it never waits for a round trip. Anything else: one batch at a time.
        if (thread.busy && (size === 1 || thread.unstarted > size)) continue;
        // A job with moved objects goes alone to an idle thread, and nothing is queued behind it
        // (so while a thread holds one, it is its oldest job).
        if (thread.busy && (this.#fifo.peek()?.moved || thread.oldest()?.moved)) continue;
        const batch: Job[] = [];
        while (batch.length < size) {
          const job = this.#fifo.peek();
          if (!job || (job.alone && batch.length > 0)) break;
          batch.push(this.#fifo.shift() as Job);
          if (job.alone) break;
        }
        this.#start(thread, batch);
      }
    }
  }

  /** An idle thread and nothing waiting: take back what a busy thread has not started. */
  #rebalance(): void {
    let idle = false;
    let victim: Thread<Job> | undefined;
    for (const thread of this.#slots) {
      if (!thread?.ready) continue;
      if (!thread.busy) idle = true;
      else if (thread.unstarted > 1 && thread.unstarted > (victim?.unstarted ?? 1)) victim = thread;
    }
    if (idle && victim) this.#requeue(victim.takeBack());
  }

  #start(thread: Thread<Job>, batch: Job[]): void {
    try {
      thread.send(batch);
    } catch (error) {
      // Some job cannot be cloned (a function, a class with native state, …). Send one by one,
      // so only the jobs that cannot travel fail.
      if (batch.length > 1) {
        for (const job of batch) this.#start(thread, [job]);
      } else if (batch[0]) {
        const failure = dataCloneError('job cannot be sent to a thread', error as Error);
        this.#settle(batch[0], failure, undefined);
        this.#scheduleDispatch(); // the thread is still free for the next job
      }
      return;
    }
    const now = performance.now();
    // One clock reading for the whole batch: its jobs are handed over together.
    const handover: Handover = { at: now };
    const watchdog = this.#opts.watchdog;
    for (const job of batch) {
      job.thread = thread;
      watchdog?.started(job.target.job, job.target.index, now);
      if (job.handover === undefined) {
        this.#timing.recordStart(now, now - (job.target.queuedAt ?? now));
        job.handover = handover;
      }
      // Armed at hand-over, as the thread may start the job any time now; when it goes off,
      // #timeUp counts from the job's own start.
      if (this.#opts.timeout !== undefined) this.#armTimeout(job, this.#opts.timeout);
    }
  }

  /**
   * Arms `job`'s timeout. A method of its own: a closure over the loop's `job` in
   * {@link #start} would allocate a context for every job of every batch, timeout or not.
   */
  #armTimeout(job: Job, timeout: number): void {
    job.timer = setTimeout(() => this.#timeUp(job), timeout);
  }

  /**
   * The timeout armed at hand-over went off. A job that started later than that gets the rest
   * of its time from its own start (the thread wrote it before claiming the job); one that has
   * not started goes back to wait; one that ran its whole limit times out. So no job times out
   * before it ran `timeout` ms.
   */
  #timeUp(job: Job): void {
    job.timer = undefined;
    const thread = job.thread;
    const timeout = this.#opts.timeout as number;
    if (job.settled || !thread) return;
    if (job.moved && !thread.hasStarted(job)) {
      // Its moved objects are in the thread, so it cannot go elsewhere: it waits there.
      job.timer = setTimeout(() => this.#timeUp(job), timeout);
      return;
    }
    if (!thread.hasStarted(job)) {
      // Not started yet: it goes back to wait its turn. Taken back first and checked after, as
      // the thread may claim it in between; then it is timed from its start like any other.
      const taken = thread.takeBack();
      this.#requeue(taken);
      this.#scheduleDispatch();
      if (taken.includes(job)) return;
    }
    if (thread.hasStarted(job)) {
      thread.receive(); // it may have ended: its result would be waiting on the port
      if (job.settled) return;
      // It ended in time and its result waits in the thread's outbox: it leaves soon.
      if (thread.hasFinished(job)) {
        job.timer = setTimeout(() => this.#timeUp(job), timeout);
        return;
      }
      // The start of the latest job the thread claimed: this one's, or a later one's.
      const ran = performance.timeOrigin + performance.now() - thread.startTime();
      if (ran < timeout) {
        job.timer = setTimeout(() => this.#timeUp(job), Math.max(1, Math.ceil(timeout - ran)));
        return;
      }
    }
    this.#cancel(job, new TimeoutError(timeout));
  }

  /**
   * Feeds the batch sizer the time `count` results took: the gap since the thread's previous
   * event here, which holds the messages' own cost too (a batch of 64 KiB jobs is cloned, sent
   * and received whole, so it should stay small) — but at most {@link BATCH_BUDGET_MS} more than
   * the time the thread says it spent on them (`busy`, in `results` messages). The gap also
   * holds every stall of the main thread (a scavenge of 10–30 ms while 100,000 submits wait):
   * uncapped, one stall made tiny jobs look like ~0.5 ms jobs, batches fell from 64 to 2–6 and
   * took a dozen messages to grow back (~400 times per 100,000 jobs).
   */
  #measure(thread: Thread<Job>, count: number, busy: number | undefined): void {
    const now = performance.now();
    const gap = now - thread.lastEventAt;
    this.#batchSize.observe(
      busy === undefined ? gap : Math.min(gap, busy + BATCH_BUDGET_MS),
      count,
    );
    thread.lastEventAt = now;
    const limit = this.#batchSize.limit();
    const held = limit === 1 ? 1 : 2 * limit;
    if (held !== this.#held) {
      this.#held = held;
      this.#opts.onHeld?.(held);
    }
  }

  #cancel(job: Job, error: Error): void {
    if (job.settled) return;
    const thread = job.thread;
    if (!thread) {
      this.#fifo.remove(job);
      this.#settle(job, error, undefined);
      return;
    }
    if (!thread.hasStarted(job)) {
      const taken = thread.takeBack();
      this.#requeue(taken.filter((other) => other !== job));
      this.#scheduleDispatch();
      if (taken.includes(job)) {
        this.#settle(job, error, undefined);
        return;
      }
      // The thread claimed it meanwhile: it is running, so it is stopped as below.
    }
    this.#settle(job, error, undefined);
    thread.cancel(job, serializeError(error));
    this.#opts.watchdog?.abandoned(job, job.target.job, job.target.index, error);
    this.#armGrace(thread, job);
  }

  /**
   * A canceled job still running after the grace period costs its thread. Each canceled job has
   * its own deadline, and its timer only ever stops that job: never one that started after it.
   */
  #armGrace(thread: Thread<Job>, job: Job): void {
    if (job.grace !== undefined) return;
    job.grace = setTimeout(() => this.#graceOver(thread, job), this.#opts.abortGrace);
    this.#inGrace.add(job);
  }

  #graceOver(thread: Thread<Job>, job: Job): void {
    this.#inGrace.delete(job);
    job.grace = undefined;
    // Past its grace the job either ended or loses its thread: it runs on no longer either way.
    this.#opts.watchdog?.returned(job);
    if (this.#stopped || !thread.isRunning(job)) return;
    // Its result may be waiting on the port (the event loop was busy): then it ended in time.
    thread.receive();
    if (!thread.isRunning(job)) return;
    // Keep the thread from starting anything else, then look once more: the job may have
    // ended in between, and then the thread is fine and the jobs simply go elsewhere.
    const taken = thread.takeBack();
    thread.receive();
    if (!thread.isRunning(job)) {
      this.#requeue(taken);
      this.#scheduleDispatch();
      return;
    }
    this.#requeue(taken, (lost) => this.#lostWithThread(thread, lost));
    thread.retiring = true;
    void thread.terminate(); // `exit` then replaces it
  }

  #clearGrace(job: Job): void {
    this.#opts.watchdog?.returned(job);
    clearTimeout(job.grace);
    job.grace = undefined;
    this.#inGrace.delete(job);
  }

  /**
   * Puts taken-back jobs in front of the queue. A job whose objects were moved to the thread
   * cannot be sent again: it settles with `lost(job)` (by default a crash of its thread).
   */
  #requeue(jobs: Job[], lost?: (job: Job) => Error): void {
    const again: Job[] = [];
    for (const job of jobs) {
      job.thread = undefined;
      this.#opts.watchdog?.ended(job.target.index); // back to waiting: its age starts again when sent
      clearTimeout(job.timer);
      job.timer = undefined;
      if (job.settled) continue;
      if (job.moved)
        this.#settle(job, lost?.(job) ?? this.#lostWithThread(undefined, job), undefined);
      else again.push(job);
    }
    this.#fifo.unshiftAll(again);
  }

  #lostWithThread(thread: Thread<Job> | undefined, job: Job): Error {
    const where = thread ? `worker thread ${thread.id}` : 'its worker thread';
    return new WorkerCrashedError(
      `job ${job.target.index} was taken back from ${where} before it started, but the objects transferred with it cannot be sent again`,
    );
  }

  /**
   * `at`: when the outcome became known (performance.now()); read here when not given. The
   * outcome reaches the core on a microtask, never re-entrantly (the core may run user code and
   * call back in): every outcome of the same turn in one microtask, in order.
   */
  #settle(job: Job, error: Error | undefined, value: unknown, at?: number): void {
    if (job.settled) return;
    job.settled = true;
    this.#opts.watchdog?.ended(job.target.index);
    if (job.timer !== undefined) clearTimeout(job.timer);
    const handover = job.handover;
    if (handover !== undefined) this.#timing.settled(outcomeOf(error), handover.at, at);
    const outbox = this.#outcomes;
    const slot = this.#outcomeSlots;
    if (slot === 0) queueMicrotask(this.#deliver);
    if (slot === outbox.length) outbox.push(job.target, error, value);
    else {
      outbox[slot] = job.target;
      outbox[slot + 1] = error;
      outbox[slot + 2] = value;
    }
    this.#outcomeSlots = slot + 3;
  }

  /**
   * Outcomes waiting for {@link #deliver}: target, error, value, target, … in the first
   * {@link #outcomeSlots} slots. Two arrays in turn, kept with their capacity (setting `length`
   * to 0 would drop it): a new array per delivery grew again, reallocation after reallocation,
   * every turn.
   */
  #outcomes: unknown[] = [];
  #outcomeSlots = 0;
  #spare: unknown[] = [];

  readonly #deliver = (): void => {
    const outcomes = this.#outcomes;
    const slots = this.#outcomeSlots;
    // Outcomes of jobs settled by what complete() runs go to the other array (a new delivery).
    this.#outcomes = this.#spare;
    this.#outcomeSlots = 0;
    for (let i = 0; i < slots; i += 3) {
      const target = outcomes[i] as ExecutorJob<unknown, unknown>;
      const error = outcomes[i + 1] as Error | undefined;
      const value = outcomes[i + 2];
      // Cleared before the call, so nothing delivered stays alive here.
      outcomes[i] = outcomes[i + 1] = outcomes[i + 2] = undefined;
      target.complete(error, value);
    }
    this.#spare = outcomes;
  };
}

/**
 * Whether `thread` may get a batch of up to `limit` jobs now: ready, and idle or (tiny jobs)
 * holding no more than one batch it has not started.
 */
function canTake(thread: Thread<Job>, limit: number): boolean {
  return thread.ready && (!thread.busy || (limit > 1 && thread.unstarted <= limit));
}

function dataCloneError(what: string, cause: Error): Error {
  return coded(new TypeError(`${what}: ${cause.message}`, { cause }), 'ERR_DATA_CLONE');
}

/** A file: URL as its path (what a user passed, usually); any other URL as it is. */
function displayPath(url: string): string {
  return url.startsWith('file:') ? fileURLToPath(url) : url;
}
