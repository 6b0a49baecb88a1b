/**
 * One worker thread as the pool sees it: start-up, the jobs sent to it (in sequence order), the
 * shared cursor that says which of them started, and its death. Internal.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import {
  MessageChannel,
  type MessagePort,
  type ResourceLimits,
  receiveMessageOnPort,
  Worker,
} from 'node:worker_threads';
import { formatValue } from '../internal/format-value.js';
import { coded } from '../internal/options.js';
import {
  assertAttached,
  deserializeError,
  type FromThread,
  type RunMessage,
  type SerializedError,
  type ThreadData,
} from './messages.js';
import { BOOTSTRAP, type ThreadSpec } from './module-spec.js';
import { SentList } from './sent-list.js';
import type { TransferListItem } from './transfer.js';

/** A job handed to a thread. The scheduler owns the rest of its state. */
export interface Sent {
  seq: number;
  /** `seq` of the first job of the message it travelled in. */
  batchSeq: number;
  /** What travels: the job, its index (the thread's `ctx.index`) and the objects it moves. */
  readonly target: {
    readonly job: unknown;
    readonly index: number;
    readonly transfer: readonly TransferListItem[] | undefined;
  };
}

/** What a thread reports to its owner. */
export interface ThreadEvents<S extends Sent> {
  onReady(thread: Thread<S>): void;
  /** The module failed to load; the thread is ending (or dead). */
  onStartFailed(thread: Thread<S>, error: Error, permanent: boolean): void;
  /**
   * A job finished in the thread (`error` undefined = success); `at` is when its result arrived
   * (performance.now(), read once per message).
   */
  onResult(thread: Thread<S>, sent: S, error: Error | undefined, value: unknown, at: number): void;
  /**
   * `count` results arrived in one message (each reported to {@link onResult} before);
   * `busy`: the ms the thread says it spent on them, when the message says (a `results` one).
   */
  onResults(thread: Thread<S>, count: number, busy?: number): void;
  /**
   * The thread could not decode the message that began with job `seq`: none of the jobs sent
   * from there on can start until the pool takes them back.
   */
  onUndecodable(thread: Thread<S>, seq: number, error: Error): void;
  /**
   * The thread is gone. `running` is the job it was running, if any; `lost` the jobs that had
   * finished in it but whose results never left it (killed from outside with results waiting).
   */
  onExit(
    thread: Thread<S>,
    exitCode: number,
    error: Error | undefined,
    running: S | undefined,
    lost: S[],
  ): void;
}

export class Thread<S extends Sent> {
  readonly id: number;
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #cursor: Int32Array;
  /** Sequence number after the last job that finished in the thread; see messages.ts. */
  readonly #progress: Int32Array;
  /** Start time (ms since the epoch) of the job the thread claimed last; see messages.ts. */
  readonly #clock: Float64Array;
  readonly #events: ThreadEvents<S>;
  /** Jobs sent and not yet reported, oldest first. */
  readonly #sent = new SentList<S>();
  #state: 'starting' | 'ready' | 'failed' | 'dead' = 'starting';
  #nextSeq = 0;
  #error: Error | undefined;
  #everReady = false;
  #terminating = false;
  /** performance.now() of the latest result, or of the send that ended an idle spell. */
  lastEventAt = 0;
  /** Set when the pool decided to terminate this thread (abort grace, resize, drain). */
  retiring = false;

  constructor(
    id: number,
    spec: ThreadSpec,
    limits: ResourceLimits | undefined,
    events: ThreadEvents<S>,
    timed: boolean,
  ) {
    this.id = id;
    this.#events = events;
    const cursor = new SharedArrayBuffer(16);
    this.#cursor = new Int32Array(cursor, 0, 1);
    this.#progress = new Int32Array(cursor, 4, 1);
    this.#clock = new Float64Array(cursor, 8, 1);
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    const data: ThreadData & { entry: string; tsx: string | undefined } = {
      module: spec.module,
      id,
      cursor,
      timed,
      port: port2,
      entry: spec.entry,
      tsx: spec.tsx,
    };
    try {
      this.#worker = new Worker(BOOTSTRAP, {
        eval: true,
        workerData: data,
        transferList: [port2],
        ...(limits ? { resourceLimits: limits } : {}),
      });
    } catch (error) {
      // No thread (see the scheduler's #spawn): its channel goes with it.
      port1.close();
      port2.close();
      throw error;
    }
    // One 'message' event, then every message already queued is taken synchronously: cheaper
    // than an event per result when results arrive faster than the event loop turns.
    port1.on('message', (message: FromThread) => {
      this.#onMessage(message);
      this.#drainPort();
    });
    port1.on('messageerror', (error) => this.#onUndecodable(error));
    port1.unref();
    this.#worker.on('error', (error: unknown) => {
      // A thread's uncaught non-Error arrives as Node's text of it (a string): keep it readable.
      this.#error ??=
        error instanceof Error
          ? error
          : new Error(typeof error === 'string' ? error : formatValue(error));
    });
    this.#worker.on('exit', (code) => this.#onExit(code));
  }

  get ready(): boolean {
    return this.#state === 'ready' && !this.retiring;
  }

  /** True once the module loaded in this thread. */
  get everReady(): boolean {
    return this.#everReady;
  }

  /** True while any job sent to it has not been reported. */
  get busy(): boolean {
    return this.#sent.length > 0;
  }

  /** Jobs sent and not started. */
  get unstarted(): number {
    return Math.max(0, (this.#nextSeq - Atomics.load(this.#cursor, 0)) | 0);
  }

  /** The oldest job started and not reported, if any (it may wait in the thread's outbox). */
  running(): S | undefined {
    const head = this.#sent.first();
    return head && this.hasStarted(head) ? head : undefined;
  }

  hasStarted(sent: S): boolean {
    return ((Atomics.load(this.#cursor, 0) - sent.seq) | 0) > 0;
  }

  /** True once `sent` finished in the thread (its result may not have arrived yet). */
  hasFinished(sent: S): boolean {
    return ((Atomics.load(this.#progress, 0) - sent.seq) | 0) > 0;
  }

  /** True while `sent` runs here: started, not finished. */
  isRunning(sent: S): boolean {
    return this.#sent.includes(sent) && this.hasStarted(sent) && !this.hasFinished(sent);
  }

  /**
   * When a started job began (ms since the epoch, `performance.timeOrigin` based), as the thread
   * wrote it before claiming the job; only kept when the thread was started `timed`. Once a
   * later job started, this is that job's start: later, never earlier.
   */
  startTime(): number {
    return this.#clock[0] as number;
  }

  /** True once {@link terminate} was called. */
  get terminating(): boolean {
    return this.#terminating;
  }

  /** Handles every message the thread already posted, now, without waiting for an event. */
  receive(): void {
    if (this.#state !== 'dead') this.#drainPort();
  }

  /** Sends jobs as one message, numbering them. */
  send(batch: S[]): void {
    const count = batch.length;
    // Pushed, not preallocated: a holey array (new Array(n)) is cloned in the sparse format.
    const jobs: unknown[] = [];
    const index = batch[0]?.target.index ?? 0;
    // Indexes are sent only when they do not follow one another: usually they do.
    let consecutive = true;
    let transfer: TransferListItem[] | undefined;
    for (let i = 0; i < count; i++) {
      const target = (batch[i] as S).target;
      if (target.index !== index + i) consecutive = false;
      jobs.push(target.job);
      if (target.transfer !== undefined && target.transfer.length > 0) {
        assertAttached(target.transfer);
        transfer ??= [];
        transfer.push(...target.transfer);
      }
    }
    const first = this.#nextSeq;
    // Throws (DataCloneError) when a job cannot be cloned: nothing is recorded as sent then.
    const message: RunMessage = { t: 'run', seq: first, jobs, index };
    if (!consecutive) message.indexes = batch.map((sent) => sent.target.index);
    // Two calls, not `postMessage(message, transfer)` with `transfer` possibly undefined: newer
    // @types/node types the second parameter as a list or options, never undefined.
    if (transfer === undefined) this.#port.postMessage(message);
    else this.#port.postMessage(message, transfer);
    for (const sent of batch) {
      sent.seq = this.#nextSeq;
      sent.batchSeq = first;
      this.#nextSeq = (this.#nextSeq + 1) | 0;
      this.#sent.push(sent);
    }
    if (this.#sent.length === batch.length) {
      this.#worker.ref();
      this.lastEventAt = performance.now();
    }
  }

  /** Takes back every job that has not started; they will never start here. */
  takeBack(): S[] {
    for (;;) {
      const cursor = Atomics.load(this.#cursor, 0);
      if (cursor === this.#nextSeq) return [];
      if (Atomics.compareExchange(this.#cursor, 0, cursor, this.#nextSeq) !== cursor) continue;
      const taken = this.#sent.takeFrom((sent) => sent.seq === cursor);
      if (this.#sent.length === 0) this.#worker.unref();
      return taken;
    }
  }

  /** The oldest job sent and not yet reported. */
  oldest(): S | undefined {
    return this.#sent.first();
  }

  find(match: (sent: S) => boolean): S | undefined {
    return this.#sent.find(match);
  }

  /** Asks the thread to abort the signal of a running job. */
  cancel(sent: S, reason: SerializedError): void {
    if (this.#state === 'dead') return;
    this.#port.postMessage({ t: 'cancel', seq: sent.seq, reason });
  }

  /** Busy share of the thread's event loop since it started (0..1). */
  utilization(): number {
    if (this.#state === 'dead') return 0;
    return this.#worker.performance.eventLoopUtilization().utilization;
  }

  terminate(): Promise<number> {
    this.retiring = true;
    this.#terminating = true;
    return this.#worker.terminate();
  }

  /** Lets the process exit while this thread has no work. */
  unref(): void {
    this.#worker.unref();
  }

  #onMessage(message: FromThread): void {
    switch (message.t) {
      case 'results': {
        const { seq, values, failed, busy } = message;
        const at = performance.now();
        let next = 0;
        let count = 0;
        for (let i = 0; i < values.length; i++) {
          const isError = failed[next] === i;
          if (isError) next++;
          const sent = this.#next((seq + i) | 0);
          if (!sent) continue;
          count++;
          if (isError) {
            const error = deserializeError(values[i] as SerializedError);
            this.#events.onResult(this, sent, error, undefined, at);
          } else this.#events.onResult(this, sent, undefined, values[i], at);
        }
        if (count > 0) this.#events.onResults(this, count, busy);
        return;
      }
      case 'ok':
      case 'err': {
        const sent = this.#next(message.seq);
        if (!sent) return;
        const at = performance.now();
        if (message.t === 'ok') this.#events.onResult(this, sent, undefined, message.value, at);
        else this.#events.onResult(this, sent, deserializeError(message.error), undefined, at);
        this.#events.onResults(this, 1);
        return;
      }
      case 'undecodable':
        this.#events.onUndecodable(this, message.seq, deserializeError(message.error));
        return;
      case 'ready':
        this.#state = 'ready';
        this.#everReady = true;
        this.#worker.unref();
        this.#events.onReady(this);
        return;
      case 'init-failed':
        this.#state = 'failed';
        this.#events.onStartFailed(this, deserializeError(message.error), message.permanent);
        return;
    }
  }

  /**
   * Takes job `seq` off the sent list for its result; undefined when it is not there. Results
   * arrive in sequence order, so a result for a later job means the jobs before it had their
   * results in a message that could not be decoded here: they fail as that message's first did.
   */
  #next(seq: number): S | undefined {
    for (let sent = this.#sent.first(); sent; sent = this.#sent.first()) {
      const ahead = (seq - sent.seq) | 0;
      if (ahead < 0) return undefined; // stale: a job taken back or already reported
      this.#sent.shift();
      if (this.#sent.length === 0) this.#worker.unref();
      if (ahead === 0) return sent;
      this.#events.onResult(this, sent, this.#undecodable(undefined), undefined, performance.now());
    }
    return undefined;
  }

  #drainPort(): void {
    for (;;) {
      let next: { message: unknown } | undefined;
      try {
        next = receiveMessageOnPort(this.#port);
      } catch (error) {
        // Leave the rest to 'message' events: a message that failed to decode may still be queued.
        this.#onUndecodable(error as Error);
        return;
      }
      if (!next) return;
      this.#onMessage(next.message as FromThread);
    }
  }

  /** A message that cannot be decoded here is the result of the oldest started job. */
  #onUndecodable(error: Error): void {
    const sent = this.#sent.first();
    if (!sent || !this.hasStarted(sent)) return;
    this.#sent.shift();
    if (this.#sent.length === 0) this.#worker.unref();
    this.#lastUndecodable = error;
    this.#events.onResult(this, sent, this.#undecodable(error), undefined, performance.now());
    this.#events.onResults(this, 1);
  }

  #lastUndecodable: Error | undefined;

  #undecodable(error: Error | undefined): Error {
    const cause = error ?? this.#lastUndecodable;
    return coded(
      new TypeError(
        `job result cannot be received from the thread: ${cause?.message ?? 'its message could not be decoded'}`,
        { cause },
      ),
      'ERR_DATA_CLONE',
    );
  }

  #onExit(code: number): void {
    // Results the thread posted before it died are still queued on our side of the channel.
    this.#drainPort();
    this.#port.close();
    const before = this.#state;
    // What is left started is either finished (its result died with the thread) or was running.
    const lost: S[] = [];
    let running: S | undefined;
    for (let head = this.#sent.first(); head && this.hasStarted(head); head = this.#sent.first()) {
      const sent = this.#sent.shift() as S;
      if (this.hasFinished(sent)) lost.push(sent);
      else running = sent;
    }
    this.#state = 'dead';
    if (before === 'starting') {
      const error = this.#error ?? new Error(`thread exited with code ${code} while starting`);
      this.#events.onStartFailed(this, error, false);
    }
    this.#events.onExit(this, code, this.#error, running, lost);
  }
}
