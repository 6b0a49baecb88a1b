/**
 * The code every ThreadPool thread runs: loads the worker module, then runs the jobs it is sent,
 * one at a time, and sends their results in batches (see `outbox.ts`). Internal; started by
 * `thread.ts`.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { workerData } from 'node:worker_threads';
import { coded } from '../internal/options.js';
import {
  deserializeError,
  type FromThread,
  type RunMessage,
  serializeError,
  type ThreadData,
  type ToThread,
} from './messages.js';
import { cloneFailure, Outbox } from './outbox.js';
import type { TransferListItem } from './transfer.js';
import type { ThreadJobContext } from './types.js';

type ThreadWorker = (job: unknown, ctx: ThreadJobContext) => unknown;

const data = workerData as ThreadData;
const port = data.port;
const cursor = new Int32Array(data.cursor, 0, 1);
/** Start time of the job claimed last (only written when the pool has a timeout). */
const clock = data.timed ? new Float64Array(data.cursor, 8, 1) : undefined;
const timeOrigin = performance.timeOrigin;
const outbox = new Outbox(port, new Int32Array(data.cursor, 4, 1));
const batches: RunMessage[] = [];
/** Where the next `run` message begins: the end of the last one decoded. */
let expected = 0;
let draining = false;
/** The job running now: cancel messages abort its controller. */
let current: JobCtx | undefined;

function post(message: FromThread, transfer?: readonly TransferListItem[]): void {
  // Two calls: newer @types/node types the second parameter as a list or options, never undefined.
  if (transfer === undefined) port.postMessage(message);
  else port.postMessage(message, transfer as TransferListItem[]);
}

class JobCtx implements ThreadJobContext {
  readonly seq: number;
  readonly index: number;
  readonly workerId = data.id;
  transferList: TransferListItem[] | undefined;
  #controller: AbortController | undefined;

  constructor(seq: number, index: number) {
    this.seq = seq;
    this.index = index;
  }

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  transfer(list: readonly TransferListItem[]): void {
    this.transferList = [...list];
  }

  abort(reason: Error): void {
    this.#controller ??= new AbortController();
    this.#controller.abort(reason);
  }
}

async function load(): Promise<ThreadWorker | undefined> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(data.module)) as Record<string, unknown>;
  } catch (error) {
    post({ t: 'init-failed', error: serializeError(error), permanent: false });
    return undefined;
  }
  // A CommonJS module compiled from `export default` arrives as { default: { default: fn } }.
  let candidate = mod.default;
  if (typeof candidate !== 'function' && candidate !== null && typeof candidate === 'object') {
    candidate = (candidate as Record<string, unknown>).default;
  }
  if (typeof candidate !== 'function') {
    const error = coded(
      new TypeError(
        `ThreadPool module ${data.module} has no function default export (got ${typeof mod.default})`,
      ),
      'ERR_INVALID_MODULE',
    );
    post({ t: 'init-failed', error: serializeError(error), permanent: true });
    return undefined;
  }
  return candidate as ThreadWorker;
}

function succeed(ctx: JobCtx, value: unknown): void {
  // A result that moves objects travels alone, right away, as a job that moves objects does.
  if (!ctx.transferList) {
    outbox.ok(ctx.seq, value);
    return;
  }
  outbox.flush();
  try {
    post({ t: 'ok', seq: ctx.seq, value }, ctx.transferList);
  } catch (error) {
    fail(ctx, cloneFailure(error));
    return;
  }
  outbox.finished(ctx.seq);
}

/** Reports a job's failure. Whatever was thrown, the pool hears of it: the job always settles. */
function fail(ctx: JobCtx, error: unknown): void {
  outbox.err(ctx.seq, serializeError(error));
}

/** Runs one job; returns a promise only when the worker did (sync jobs cost no await). */
function runOne(worker: ThreadWorker, ctx: JobCtx, job: unknown): Promise<void> | undefined {
  let out: unknown;
  try {
    out = worker(job, ctx);
    // Inside the try: a `then` getter that throws fails the job, not the thread.
    if (
      out !== null &&
      (typeof out === 'object' || typeof out === 'function') &&
      typeof (out as { then?: unknown }).then === 'function'
    ) {
      // Adopted as `await` adopts it: a `then` that throws fails the job (the thread stays), a
      // thenable it fulfils with is adopted in turn, and the job ends when `then` calls back —
      // not when whatever `then` returned settles (a thenable's `then` may return anything).
      return Promise.resolve(out).then(
        (value) => succeed(ctx, value),
        (error: unknown) => fail(ctx, error),
      );
    }
  } catch (error) {
    fail(ctx, error);
    return undefined;
  }
  succeed(ctx, out);
  return undefined;
}

async function drain(worker: ThreadWorker): Promise<void> {
  draining = true;
  outbox.begin(performance.now());
  for (let batch = batches.shift(); batch; batch = batches.shift()) {
    for (let i = 0; i < batch.jobs.length; i++) {
      const seq = (batch.seq + i) | 0;
      if (clock) {
        // Written before the claim, so the pool never reads an older job's start for this one.
        const now = performance.now();
        clock[0] = timeOrigin + now;
        outbox.due(now);
      }
      // The pool moved the cursor past this job: it took the rest of the batch back.
      if (Atomics.compareExchange(cursor, 0, seq, (seq + 1) | 0) !== seq) break;
      const index = batch.indexes === undefined ? batch.index + i : (batch.indexes[i] as number);
      current = new JobCtx(seq, index);
      const pending = runOne(worker, current, batch.jobs[i]);
      if (pending) {
        // The job may wait for the event loop: the results before it leave meanwhile.
        outbox.flushSoon();
        await pending;
      }
      current = undefined;
    }
  }
  draining = false;
  outbox.flush();
}

const worker = await load();
if (worker) {
  // Results still in the outbox leave before the thread dies: a thread emits 'exit' when it
  // ends by process.exit() and when an uncaught exception (or a rejection nobody handles) ends
  // it. Only a thread killed from outside (out of memory, terminated) loses them.
  process.on('exit', () => outbox.flush());
  port.on('message', (message: ToThread) => {
    if (message.t === 'run') {
      expected = (message.seq + message.jobs.length) | 0;
      batches.push(message);
      if (!draining) void drain(worker);
    } else if (current?.seq === message.seq) {
      current.abort(deserializeError(message.reason));
    }
  });
  // A run message this thread cannot decode (say, a typed array whose buffer was detached before
  // it was listed for transfer): none of its jobs can start, so the pool must hear of it.
  port.on('messageerror', (error: Error) => {
    post({ t: 'undecodable', seq: expected, error: serializeError(error) });
  });
  post({ t: 'ready' });
}
