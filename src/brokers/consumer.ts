/**
 * The one consumer loop shared by every broker adapter: it fetches at most the free slots, runs
 * the handler in a sluice `Pool`, acks only after success, retries with backoff, dead-letters
 * after `maxDeliveries` (and malformed messages at once), heartbeats long handlers and drains.
 *
 * Guarantees:
 * - **At-least-once.** A message is acked only after its handler succeeded; a crash, a lost lease
 *   or a broker outage can deliver it again, so handlers must be idempotent.
 * - **Bounded.** Messages held by the process (fetched and not yet acked, retried, dead-lettered
 *   or released) never exceed `concurrency` + 0: `fetch` is asked for at most the free slots and
 *   a source never returns more than it was asked for (the documented constant is 0). Retries wait
 *   in the broker, not here. The backlog stays in the broker; memory is O(concurrency). With a
 *   source that has `orderedAcks` (Redis), an issued ack frees its slot before it is confirmed
 *   (the ack is applied by the broker before the next fetch), so the broker's count of messages
 *   delivered to this consumer and not acked stays <= `concurrency` as well.
 * - **A lost lease is never settled.** Once a heartbeat reports that another consumer owns a
 *   message, its handler's signal aborts and its outcome is dropped (no ack, retry or dead
 *   letter); a source refuses a late settle itself where the broker can tell (`LeaseLostError`,
 *   counted in `leaseLost`).
 * - **Drained.** `drain()` stops fetching, lets running handlers finish (and acks them), hands
 *   messages that never started back to the broker and counts them.
 *
 * @module
 */
import { MalformedMessageError, toError } from '../errors.js';
import { onAbort as onAbortOf } from '../internal/abort-fanout.js';
import {
  argument,
  fn,
  invalidArgument,
  invalidOption,
  MAX_TIMER_MS,
  optionalDeadline,
  optionalDuration,
  optionalSignal,
  optionsObject,
  positiveInt,
} from '../internal/options.js';
import { Pool } from '../pool.js';
import { ConsumerJob } from './consumer-job.js';
import {
  type BackoffFunction,
  type BackoffOptions,
  backoffFunction,
  DEFAULT_DRAIN_TIMEOUT,
  DEFAULT_MAX_BODY_SIZE,
  DEFAULT_MAX_DELIVERIES,
  type Decoder,
  jsonDecode,
  nonNegative,
  pause,
} from './consumer-options.js';
import type {
  ConsumeOptions,
  Consumer,
  ConsumerOperation,
  ConsumerReport,
  ConsumerStats,
  MessageHandler,
} from './consumer-types.js';
import { errorMessage, errorStringCode } from './dead-letter.js';
import type { BrokerMessage, BrokerSource } from './source.js';

export type { BackoffFunction, BackoffOptions, Decoder } from './consumer-options.js';
export { jsonDecode } from './consumer-options.js';
export type {
  ConsumeOptions,
  Consumer,
  ConsumerOperation,
  ConsumerReport,
  ConsumerStats,
  HandlerContext,
  MessageHandler,
} from './consumer-types.js';

/** The backoff used when a user's backoff function fails for a message. */
const DEFAULT_BACKOFF = backoffFunction(undefined);

/** Sentinel thrown by the worker for a job that reached the pool after the drain began. */
const RELEASED = new Error('released at drain');

type Job<T, M extends BrokerMessage> = ConsumerJob<T, M>;

/**
 * Consumes `source` with `handler`, `concurrency` at a time, until drained, closed or aborted.
 *
 * A failed fetch is reported to `onError` and tried again with backoff (100 ms doubling to 2 s),
 * except one that fails with a misuse code (`ERR_INVALID_STATE`, `ERR_INVALID_OPTION`,
 * `ERR_INVALID_ARGUMENT`: a closed source, a RabbitMQ prefetch above `concurrency`): that is
 * reported once and the consumer drains itself (`done` resolves).
 *
 * @throws RangeError/TypeError for bad options (at once, before anything is fetched).
 * @example
 * ```ts
 * const source = await redisSource({ url: 'redis://127.0.0.1:6379', stream: 'jobs', group: 'workers' });
 * const consumer = consume(source, async (job) => { await handle(job) }, { concurrency: 32 });
 * process.once('SIGTERM', () => consumer.drain({ timeout: 10_000 }));
 * ```
 */
export function consume<T = unknown, M extends BrokerMessage = BrokerMessage>(
  source: BrokerSource<M>,
  handler: MessageHandler<T, M>,
  options: ConsumeOptions<T, M>,
): Consumer {
  return new ConsumerLoop(source, handler, options);
}

class ConsumerLoop<T, M extends BrokerMessage> implements Consumer {
  readonly #source: BrokerSource<M>;
  readonly #handler: MessageHandler<T, M>;
  readonly #concurrency: number;
  readonly #maxDeliveries: number;
  readonly #backoff: BackoffFunction;
  readonly #retryIf: ((error: Error, attempt: number) => boolean) | undefined;
  readonly #priority: ((payload: T, message: M) => number) | undefined;
  readonly #decode: Decoder<T>;
  readonly #maxBodySize: number;
  readonly #onError: (error: Error, operation: ConsumerOperation, message?: M) => void;
  readonly #pool: Pool<Job<T, M>, unknown>;
  readonly #fetchAbort = new AbortController();
  readonly #running = new Set<Job<T, M>>();
  readonly #stats: ConsumerStats = {
    held: 0,
    peakHeld: 0,
    acking: 0,
    running: 0,
    fetched: 0,
    acked: 0,
    retried: 0,
    deadLettered: 0,
    malformed: 0,
    released: 0,
    canceled: 0,
    leaseLost: 0,
    errors: 0,
  };
  #stopping = false;
  /** True while `source.fetch` runs: acks issued then do not free their slot early. */
  #fetching = false;
  /** Acks issued with their slot already freed (ordered acks), not yet confirmed. */
  #wake: (() => void) | undefined;
  #idle: (() => void) | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #shutdown: Promise<ConsumerReport> | undefined;
  #resolveDone!: (report: ConsumerReport) => void;
  readonly done: Promise<ConsumerReport>;
  readonly #loop: Promise<void>;

  constructor(
    source: BrokerSource<M>,
    handler: MessageHandler<T, M>,
    options: ConsumeOptions<T, M>,
  ) {
    if (typeof (source as { fetch?: unknown } | null)?.fetch !== 'function') {
      invalidArgument('source', source, 'a BrokerSource (an object with fetch, ack, retry, …)');
    }
    fn(argument('handler'), handler);
    this.#source = source;
    this.#handler = handler;
    optionsObject(argument('options'), options);
    this.#concurrency = positiveInt('concurrency', options?.concurrency);
    const retry = retryShape(options);
    this.#maxDeliveries = retry.maxDeliveries;
    this.#backoff = retry.backoff;
    this.#retryIf = retry.retryIf;
    const priority =
      options.priority == null
        ? undefined
        : fn<(payload: T, message: M) => number>('priority', options.priority);
    this.#priority = priority;
    this.#decode =
      options.decode == null
        ? (jsonDecode as Decoder<T>)
        : fn<Decoder<T>>('decode', options.decode);
    this.#maxBodySize = nonNegative('maxBodySize', options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE);
    const drainTimeout = nonNegative(
      'drainTimeout',
      options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT,
      'ms',
    );
    this.#onError =
      options.onError == null
        ? defaultOnError
        : fn<NonNullable<ConsumeOptions<T, M>['onError']>>('onError', options.onError);
    const signal = optionalSignal('signal', options.signal);
    this.#pool = new Pool((job: Job<T, M>, ctx: { signal: AbortSignal }) => this.#work(job, ctx), {
      concurrency: this.#concurrency,
      queueSize: this.#concurrency,
      timeout: optionalDuration('timeout', options.timeout),
      rate: options.rate,
      key: keyOfJob(options.key),
      perKey: options.perKey,
    });
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    const interval = source.heartbeatInterval;
    if (interval !== undefined && source.heartbeat) {
      // A source's interval past the longest timer (a huge claimIdle / ackWait / lease) would be
      // clamped to 1 ms by Node: beat at the longest delay instead, early enough for any lease.
      this.#heartbeat = setInterval(() => this.#beat(), Math.min(interval, MAX_TIMER_MS));
      this.#heartbeat.unref();
    }
    if (signal) {
      // Handled: a signal-started shutdown has no caller to reject to (the report is in `done`).
      const onAbort = () => {
        this.drain({ timeout: drainTimeout }).catch((error) => this.#fail(error, 'close'));
      };
      if (signal.aborted) queueMicrotask(onAbort);
      else void this.done.then(onAbortOf(signal, onAbort));
    }
    this.#loop = this.#run();
  }

  get closed(): boolean {
    return this.#stopping;
  }

  stats(): ConsumerStats {
    return { ...this.#stats, running: this.#pool.stats().running };
  }

  drain(opts?: { timeout?: number }): Promise<ConsumerReport> {
    let timeout: number | undefined;
    try {
      timeout = optionalDeadline(
        'timeout',
        optionsObject<{ timeout?: number }>(argument('opts'), opts)?.timeout,
      );
    } catch (error) {
      return Promise.reject(error); // misuse of a promise-returning method rejects; still open
    }
    this.#shutdown ??= this.#stop(() => this.#pool.drain({ timeout }));
    return this.#shutdown;
  }

  close(): Promise<ConsumerReport> {
    return this.drain();
  }

  abort(reason?: unknown): Promise<ConsumerReport> {
    if (this.#shutdown) {
      this.#pool.abort(reason).catch((error) => this.#fail(error, 'close'));
      return this.#shutdown;
    }
    this.#shutdown = this.#stop(() => this.#pool.abort(reason));
    return this.#shutdown;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The fetch loop: never more than the free slots, one fetch at a time. */
  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopping) {
      const free = this.#concurrency - this.#stats.held;
      if (free <= 0) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        // Handlers that finished together settle in one burst of microtasks: with ordered acks,
        // let the whole burst free its slots, so one fetch asks for all of them.
        if (this.#source.orderedAcks) await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      let batch: M[];
      try {
        this.#fetching = true;
        batch = await this.#source.fetch(free, this.#fetchAbort.signal);
        failures = 0;
      } catch (error) {
        this.#fetching = false;
        if (this.#stopping) break;
        this.#fail(error, 'fetch');
        if (isMisuse(error)) {
          // Trying again cannot help (a closed source, a prefetch above concurrency): stop once,
          // rather than report the same error every 2 s for ever.
          this.drain().catch((failure) => this.#fail(failure, 'close'));
          break;
        }
        // Broker down or reconnecting: back off (100 ms doubling to 2 s) instead of spinning.
        await pause(Math.min(2000, 100 * 2 ** failures++), this.#fetchAbort.signal);
        continue;
      }
      this.#fetching = false;
      // A fetch is meant to wait for messages. One that keeps returning nothing at once (a
      // closed or broken source) must not starve the event loop: timers and signal handlers
      // (SIGTERM) still run between such calls.
      if (batch.length === 0) await new Promise((resolve) => setImmediate(resolve));
      this.#stats.fetched += batch.length;
      this.#stats.held += batch.length;
      this.#stats.peakHeld = Math.max(this.#stats.peakHeld, this.#stats.held);
      for (const message of batch) {
        if (this.#stopping) this.#settle(message, 'release');
        else this.#start(message);
      }
    }
  }

  /** Decodes and submits one message; malformed ones go to the dead letter without running. */
  #start(message: M): void {
    if (message.deliveryCount > this.#maxDeliveries) {
      // Earlier deliveries ended without a result we could record: a crash mid-handler (a
      // poison message that kills the process), or a dead-lettering that failed. Running it
      // again past the limit could repeat that for ever: dead-letter it now.
      this.#settle(
        message,
        'deadLetter',
        new Error(
          `delivered ${message.deliveryCount} times, over maxDeliveries ${this.#maxDeliveries}: earlier deliveries ended without a result (a crash, or a failed dead-lettering)`,
        ),
      );
      return;
    }
    let payload: T;
    try {
      if (message.malformed !== undefined) throw new MalformedMessageError(message.malformed);
      if (message.body.byteLength > this.#maxBodySize) {
        throw new MalformedMessageError(
          `message body is ${message.body.byteLength} bytes, over maxBodySize ${this.#maxBodySize}`,
        );
      }
      payload = this.#decode(message.body, message);
    } catch (error) {
      const malformed =
        error instanceof MalformedMessageError
          ? error
          : new MalformedMessageError(`decode failed: ${toError(error).message}`, { cause: error });
      this.#stats.malformed++;
      this.#settle(message, 'deadLetter', malformed);
      return;
    }
    const job = new ConsumerJob<T, M>(message, payload);
    // Always accepted while open: held <= concurrency = queueSize, so there is a slot or room.
    let priority: number | undefined;
    try {
      priority = this.#priority?.(payload, message);
    } catch (error) {
      this.#settle(message, 'retry', toError(error));
      return;
    }
    const task = this.#pool.trySubmit(job, priority === undefined ? undefined : { priority });
    if (!task) {
      // The pool closed under us (abort between fetch and submit): the message never started.
      this.#settle(message, 'release');
      return;
    }
    void task.result.then((result) =>
      this.#finish(job, result.ok, result.ok ? undefined : result.error),
    );
  }

  async #work(job: Job<T, M>, ctx: { signal: AbortSignal }): Promise<unknown> {
    if (this.#stopping) throw RELEASED;
    this.#running.add(job);
    try {
      job.attach(ctx);
      return await this.#handler(job.payload, job);
    } finally {
      this.#running.delete(job);
    }
  }

  #finish(job: Job<T, M>, ok: boolean, error: Error | undefined): void {
    const { message } = job;
    if (job.leaseLost) {
      // A heartbeat said another consumer owns it now: whatever the handler's outcome, neither
      // ack nor retry (either would settle the other consumer's delivery); the broker's copy is
      // the truth. Checked before success: a handler that ignored its aborted signal and
      // finished must not ack a message it no longer owns.
      this.#stats.leaseLost++;
      this.#settle(message, 'drop');
    } else if (ok) {
      this.#settle(message, 'ack');
    } else if (error === RELEASED) {
      this.#settle(message, 'release');
    } else if (this.#stopping && isAbort(error)) {
      this.#stats.canceled++;
      this.#settle(message, 'release', undefined, true);
    } else {
      const failure = error ?? new Error('handler failed');
      const malformed = failure instanceof MalformedMessageError;
      if (malformed) this.#stats.malformed++;
      const last =
        malformed ||
        message.deliveryCount >= this.#maxDeliveries ||
        !this.#wantsRetry(failure, message.deliveryCount);
      this.#settle(message, last ? 'deadLetter' : 'retry', failure);
    }
  }

  /** `retry.retryIf`; a throwing one is reported and the message retried (the safe side). */
  #wantsRetry(error: Error, attempt: number): boolean {
    if (this.#retryIf === undefined) return true;
    try {
      return this.#retryIf(error, attempt) !== false;
    } catch (failure) {
      this.#fail(failure, 'retry');
      return true;
    }
  }

  /**
   * The backoff for `message`'s next delivery. A user's backoff function that throws (or returns
   * NaN) is reported, and the default backoff used: the message must still be handed back, or a
   * push broker (RabbitMQ) would keep it, and its prefetch slot, until the channel dies.
   */
  #retryDelay(message: M): number {
    try {
      return this.#backoff(message.deliveryCount);
    } catch (error) {
      this.#fail(error, 'retry', message);
      return DEFAULT_BACKOFF(message.deliveryCount);
    }
  }

  /**
   * Runs one broker operation for a held message; the slot frees when it settles — or at once
   * for an ack the source guarantees to deliver before the next fetch (`orderedAcks`).
   */
  #settle(
    message: M,
    op: 'ack' | 'retry' | 'deadLetter' | 'release' | 'drop',
    error?: Error,
    quiet = false,
  ): void {
    let call: Promise<unknown>;
    try {
      if (op === 'drop') call = Promise.resolve();
      else if (op === 'ack') call = this.#source.ack(message);
      else if (op === 'release') call = this.#source.release(message);
      else if (op === 'deadLetter') call = this.#source.deadLetter(message, error!);
      else call = this.#source.retry(message, this.#retryDelay(message), error!);
    } catch (thrown) {
      call = Promise.reject(thrown);
    }
    const early = op === 'ack' && this.#source.orderedAcks === true && !this.#fetching;
    if (early) {
      this.#stats.acking++;
      this.#freeSlot();
    }
    call
      .then(
        () => {
          if (op === 'ack') this.#stats.acked++;
          else if (op === 'retry') this.#stats.retried++;
          else if (op === 'deadLetter') this.#stats.deadLettered++;
          else if (op === 'release' && !quiet) this.#stats.released++;
        },
        (failure) => {
          // The broker refused because another consumer claimed the message meanwhile (the
          // check runs with the operation itself, so a late ack never settles its delivery).
          if ((failure as { code?: unknown } | null)?.code === 'ERR_LEASE_LOST') {
            this.#stats.leaseLost++;
          }
          this.#fail(failure, op === 'drop' ? 'release' : op, message);
        },
      )
      .finally(() => {
        if (early) this.#stats.acking--;
        else this.#freeSlot();
        if (this.#stats.held === 0 && this.#stats.acking === 0) this.#idle?.();
      });
  }

  #freeSlot(): void {
    this.#stats.held--;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #beat(): void {
    for (const job of this.#running) {
      this.#source.heartbeat!(job.message).then(
        (stillOurs) => {
          if (stillOurs === false) job.loseLease();
        },
        (error) => this.#fail(error, 'heartbeat', job.message),
      );
    }
  }

  #fail(error: unknown, op: ConsumerOperation, message?: M): void {
    this.#stats.errors++;
    try {
      this.#onError(toError(error), op, message);
    } catch {
      // A throwing onError must not stop the consumer.
    }
  }

  async #stop(stopPool: () => Promise<unknown>): Promise<ConsumerReport> {
    const before = { ...this.#stats };
    this.#stopping = true;
    this.#fetchAbort.abort();
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
    await this.#loop;
    try {
      await stopPool();
    } catch (error) {
      // Not expected (options are checked before), but a shutdown must never end in an
      // unhandled rejection: report it and settle what is left as aborted.
      this.#fail(error, 'close');
      await this.#pool.abort(error).catch(() => undefined);
    }
    if (this.#stats.held > 0 || this.#stats.acking > 0) {
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
      });
    }
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    try {
      await this.#source.close();
    } catch (error) {
      this.#fail(error, 'close');
    }
    const stats = this.stats();
    const report: ConsumerReport = {
      completed:
        stats.acked -
        before.acked +
        stats.retried -
        before.retried +
        stats.deadLettered -
        before.deadLettered,
      released: stats.released - before.released,
      canceled: stats.canceled - before.canceled,
      stats,
    };
    this.#resolveDone(report);
    return report;
  }
}

function isAbort(error: Error | undefined): boolean {
  return errorStringCode(error) === 'ERR_ABORTED'; // a handler's error may have a throwing getter
}

function defaultOnError(
  error: Error,
  operation: ConsumerOperation,
  message?: { id: string },
): void {
  const where = message ? ` (message ${message.id})` : '';
  process.stderr.write(`sluice consumer: ${operation} failed${where}: ${errorMessage(error)}\n`);
}

/** A fetch error that no retry can cure: the source or its options are wrong. */
function isMisuse(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    code === 'ERR_INVALID_STATE' || code === 'ERR_INVALID_OPTION' || code === 'ERR_INVALID_ARGUMENT'
  );
}

/** Resolves `retry` or `maxDeliveries`/`backoff` (one or the other) into the consumer's terms. */
function retryShape<T, M extends BrokerMessage>(
  options: ConsumeOptions<T, M>,
): {
  maxDeliveries: number;
  backoff: BackoffFunction;
  retryIf: ((error: Error, attempt: number) => boolean) | undefined;
} {
  const retry = optionsObject<NonNullable<ConsumeOptions<T, M>['retry']>>('retry', options.retry);
  if (retry == null) {
    return {
      maxDeliveries: positiveInt('maxDeliveries', options.maxDeliveries ?? DEFAULT_MAX_DELIVERIES),
      backoff: backoffFunction(options.backoff),
      retryIf: undefined,
    };
  }
  if (options.maxDeliveries != null || options.backoff != null) {
    invalidOption('retry', retry, 'to come without maxDeliveries and backoff (it replaces them)');
  }
  return {
    maxDeliveries: positiveInt('retry.attempts', retry.attempts),
    backoff: backoffFunction(retry.backoff as BackoffOptions | BackoffFunction | undefined),
    retryIf:
      retry.retryIf == null
        ? undefined
        : fn<(error: Error, attempt: number) => boolean>('retry.retryIf', retry.retryIf),
  };
}

/** The Pool's key function over consumer jobs, from `key(payload, message)`. */
function keyOfJob<T, M extends BrokerMessage>(
  key: ((payload: T, message: M) => string) | undefined,
): ((job: Job<T, M>) => string) | undefined {
  if (key == null) return undefined;
  const checked = fn<(payload: T, message: M) => string>('key', key);
  return (job) => checked(job.payload, job.message);
}
