/**
 * The one consumer loop shared by every broker adapter: it fetches at most the free slots (from
 * one source, or round-robin from several sharing the cap: `consumer-lanes.ts`), runs the
 * handler (per message, or per batch: `consumer-batch-handler.ts`) in a sluice `Pool`, acks only after success, retries with backoff, dead-letters
 * after `maxDeliveries` (and malformed messages at once), heartbeats long handlers and drains.
 *
 * Guarantees:
 * - **At-least-once.** A message is acked only after its handler succeeded; a crash, a lost lease
 *   or a broker outage can deliver it again, so handlers must be idempotent.
 * - **Bounded.** Messages held by the process (fetched and not yet acked, retried, dead-lettered
 *   or released) never exceed `concurrency` + 0: `fetch` is asked for at most the free slots and
 *   a source never returns more than it was asked for (the documented constant is 0). Retries wait
 *   in the broker, not here. The backlog stays in the broker; memory is O(concurrency). With a
 *   source that has `orderedAcks` (Redis, PostgreSQL), an issued ack frees its slot before it is
 *   confirmed (the ack is applied by the broker before the next fetch), so the broker's count of messages
 *   delivered to this consumer and not acked stays <= `concurrency` as well. Over several
 *   sources the bound is on the sum, and a slot frees only once its ack is confirmed (an early
 *   free could be fetched by another source before the ack lands). In batch mode, messages
 *   waiting for their batch to fill count as held too. With an adaptive `concurrency`, the cap
 *   is the limit now: held + messages asked for by running fetches never exceed it, except
 *   after the limit drops — what was already held (or asked for) then finishes, and nothing is
 *   fetched until held is below the new limit. So held <= current limit + what was held when
 *   it last dropped, and always <= the highest limit reached (<= `max`).
 * - **A lost lease is never settled.** Once a heartbeat reports that another consumer owns a
 *   message, its handler's signal aborts and its outcome is dropped (no ack, retry or dead
 *   letter); a source refuses a late settle itself where the broker can tell (`LeaseLostError`,
 *   counted in `leaseLost`).
 * - **Drained.** `drain()` stops fetching, lets running handlers finish (and acks them), hands
 *   messages that never started back to the broker and counts them.
 * - **No clean report over a failed settle.** An ack, retry or dead letter the broker did not
 *   confirm (an outage's settle timeout, a lost lease, a dropped connection) is counted
 *   `unsettled`, so a drain after an outage does not read as if everything was settled.
 *
 * @module
 */
import { DeliveryLimitError, MalformedMessageError, toError } from '../errors.js';
import { AdaptiveConcurrency } from '../gates/adaptive.js';
import { onAbort as onAbortOf } from '../internal/abort-fanout.js';
import { isThenable, promiseThen } from '../internal/job-run.js';
import {
  argument,
  coded,
  drainDeadline,
  fn,
  invalidArgument,
  invalidOption,
  MAX_TIMER_MS,
  optionalDuration,
  optionalSignal,
  optionsObject,
  positiveInt,
} from '../internal/options.js';
import { announcePool } from '../observability/gate-channels.js';
import { type MessageOutcome, publishMessageOutcome } from '../observability/message-channels.js';
import { KIND } from '../observability/publisher.js';
import { Pool, type PoolOptions } from '../pool.js';
import { RELEASE_QUEUED } from '../scheduler/executor.js';
import {
  BatchCollector,
  type BatchShape,
  batchShape,
  outcomeOf,
} from './consumer-batch-handler.js';
import { keyOfJob, refuseOrderingGates, retryShape } from './consumer-gates.js';
import { ConsumerJob } from './consumer-job.js';
import { FetchLanes, type Lane } from './consumer-lanes.js';
import {
  type BackoffFunction,
  backoffFunction,
  DEFAULT_DRAIN_TIMEOUT,
  DEFAULT_MAX_BODY_SIZE,
  type Decoder,
  jsonDecode,
  nonNegative,
  refusePrefetchAbove,
} from './consumer-options.js';
import type {
  BatchHandler,
  BatchOptions,
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
  BatchContext,
  BatchHandler,
  BatchItem,
  BatchOptions,
  BatchOutcomes,
  ConsumeOptions,
  Consumer,
  ConsumerOperation,
  ConsumerReport,
  ConsumerStats,
  HandlerContext,
  MessageHandler,
} from './consumer-types.js';

/** The event outcome of a confirmed settle (a release: `released`, or `canceled` when quiet). */
const OUTCOME_OF: Partial<Record<string, MessageOutcome>> = {
  ack: 'acked',
  retry: 'retried',
  deadLetter: 'deadLettered',
};

/** The backoff used when a user's backoff function fails for a message. */
const DEFAULT_BACKOFF = backoffFunction(undefined);

/** Sentinel thrown by the worker for a job that reached the pool after the drain began. */
const RELEASED = new Error('released at drain');

type Job<T, M extends BrokerMessage> = ConsumerJob<T, M>;

/** What the pool runs: one message, or (in batch mode) one batch of them. */
type Work<T, M extends BrokerMessage> = Job<T, M> | readonly Job<T, M>[];

/** Sources given to `consume()`: one, or several sharing one concurrency. */
export type Sources<M extends BrokerMessage> = BrokerSource<M> | readonly BrokerSource<M>[];

/**
 * Consumes `source` with `handler`, `concurrency` messages at a time, until drained, closed or
 * aborted.
 *
 * **Several sources** (`consume([s1, s2, s3], …)`, e.g. a Redis stream sharded into N streams):
 * one consumer, one `concurrency` shared by all (held, summed over the sources, never exceeds
 * it). Each free slot goes to the source holding the fewest messages, ties in a rotating order
 * (see `consumer-lanes.ts`), so a source with a big backlog gets its share, never all the
 * slots, while the others have work; a source whose last fetch was empty probes with one slot. `drain`/`close`/`abort` act on every
 * source (and close them all). A RabbitMQ source cannot share a cap: its prefetch is the first
 * fetch's size, and the broker pushes up to it.
 *
 * **Batches** (`batch: { size, maxWait }`): the handler is a {@link BatchHandler} and gets up to
 * `size` messages per call (a batch is handed over full, or `maxWait` ms after its first message
 * arrived). It returns nothing (all succeeded), a Map of item → `true` | `Error` (an item it does
 * not list counts as failed: acks must be stated), or throws (all failed). Each message is then
 * acked, retried or dead-lettered on its own outcome, as in the one-at-a-time mode (the ones that
 * succeeded are acked with one `ackMany` call per batch — per turn, in either mode — where the
 * source has it: every built-in source; still counted and reported per message). `concurrency` still
 * counts messages, not batches: held <= concurrency (including messages waiting for their batch
 * to fill), and `batch.size` must be <= `concurrency` (`concurrency` = 2 x `size` lets one batch
 * fill while another runs). `timeout` applies to a batch's call as a whole. Gates: `rate` counts
batch starts (one batch of 100 is one start); `key`, `perKey` and `priority` order single
messages and are refused with `batch` (`ERR_INVALID_OPTION`); `retry` applies per message.
 *
 * A failed fetch is reported to `onError` and tried again with backoff (100 ms doubling to 2 s),
 * on that source only; one that fails with a misuse code (`ERR_INVALID_STATE`,
 * `ERR_INVALID_OPTION`, `ERR_INVALID_ARGUMENT`: a closed source, a RabbitMQ prefetch above
 * `concurrency`) is reported once and that source is no longer fetched from; once no source is
 * left, the consumer drains itself (`done` resolves).
 *
 * @throws RangeError/TypeError for bad options (at once, before anything is fetched).
 * @example
 * ```ts
 * const source = await redisSource({ url: 'redis://127.0.0.1:6379', stream: 'jobs', group: 'workers' });
 * const consumer = consume(source, async (job) => { await handle(job) }, { concurrency: 32 });
 * process.once('SIGTERM', () => consumer.drain({ timeout: 10_000 }));
 * // Batches of up to 100, each message acked or retried on its own:
 * consume(source, async (items) => {
 *   const failed = await insertMany(items.map((item) => item.payload));   // → Set of indexes
 *   return new Map(items.map((item, i) => [item, failed.has(i) ? new Error('rejected') : true]));
 * }, { concurrency: 200, batch: { size: 100, maxWait: 50 } });
 * ```
 */
export function consume<T = unknown, M extends BrokerMessage = BrokerMessage>(
  source: Sources<M>,
  handler: MessageHandler<T, M>,
  options: ConsumeOptions<T, M> & { batch?: undefined },
): Consumer;
export function consume<T = unknown, M extends BrokerMessage = BrokerMessage>(
  source: Sources<M>,
  handler: BatchHandler<T, M>,
  options: ConsumeOptions<T, M> & {
    batch: BatchOptions;
    key?: undefined;
    perKey?: undefined;
    priority?: undefined;
  },
): Consumer;
export function consume<T = unknown, M extends BrokerMessage = BrokerMessage>(
  source: Sources<M>,
  handler: MessageHandler<T, M> | BatchHandler<T, M>,
  options: ConsumeOptions<T, M>,
): Consumer {
  return new ConsumerLoop(source, handler, options);
}

class ConsumerLoop<T, M extends BrokerMessage> implements Consumer {
  readonly #lanes: FetchLanes<M>;
  readonly #handler: (payload: unknown, ctx: unknown) => unknown;
  /** The fixed `concurrency`, or undefined when it is adaptive (read from the pool's limit). */
  readonly #fixed: number | undefined;
  readonly #adaptive: AdaptiveConcurrency | undefined;
  readonly #batch: BatchCollector<Job<T, M>> | undefined;
  readonly #maxDeliveries: number;
  readonly #backoff: BackoffFunction;
  readonly #retryIf: ((error: Error, attempt: number) => boolean) | undefined;
  readonly #priority: ((payload: T, message: M) => number) | undefined;
  readonly #decode: Decoder<T>;
  readonly #maxBodySize: number;
  readonly #onError: (error: Error, operation: ConsumerOperation, message?: M) => void;
  readonly #pool: Pool<Work<T, M>, unknown>;
  readonly #fetchAbort = new AbortController();
  readonly #running = new Set<Job<T, M>>();
  /** Batches whose handler is running (batch mode): heartbeated like `#running`, one entry each. */
  readonly #runningBatches = new Set<readonly Job<T, M>[]>();
  /** Lanes with acks queued for this turn's `ackMany` (see `#queueAck`). */
  #ackLanes: Lane<M>[] = [];
  /** The name its events carry (the pool's). */
  readonly #name: string;
  /** Kept so that a metrics collector's WeakRef to it lives as long as this consumer. */
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: held, never read (see above)
  readonly #snapshot: unknown;
  readonly #stats: ConsumerStats = {
    held: 0,
    peakHeld: 0,
    acking: 0,
    running: 0,
    batches: 0,
    fetched: 0,
    acked: 0,
    retried: 0,
    deadLettered: 0,
    malformed: 0,
    released: 0,
    canceled: 0,
    leaseLost: 0,
    unsettled: 0,
    errors: 0,
  };
  #stopping = false;
  /** Releases under way of messages a fetch returned past its `max` (see `#refuse`). */
  #handingBack = 0;
  #idle: (() => void) | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #shutdown: Promise<ConsumerReport> | undefined;
  /** Set once `done` resolves. */
  #ended = false;
  #resolveDone!: (report: ConsumerReport) => void;
  readonly done: Promise<ConsumerReport>;
  readonly #loop: Promise<void>;

  constructor(
    source: Sources<M>,
    handler: MessageHandler<T, M> | BatchHandler<T, M>,
    options: ConsumeOptions<T, M>,
  ) {
    const sources = sourceList(source);
    fn(argument('handler'), handler);
    this.#handler = handler as (payload: unknown, ctx: unknown) => unknown;
    optionsObject(argument('options'), options);
    const concurrency = options?.concurrency;
    // Claimed by the Pool below (which also refuses one already used elsewhere).
    this.#adaptive = concurrency instanceof AdaptiveConcurrency ? concurrency : undefined;
    this.#fixed =
      this.#adaptive === undefined ? positiveInt('concurrency', concurrency) : undefined;
    if (this.#adaptive !== undefined && options.batch != null) {
      // A batch's one call carries many messages: its run time and the held cap would count
      // different things. Not supported yet: refused rather than half-right.
      invalidOption(
        'concurrency',
        concurrency,
        'a positive integer with `batch` (adaptive() is supported one message at a time)',
      );
    }
    refusePrefetchAbove(sources, this.#fixed ?? this.#adaptive!.max);
    const batch: BatchShape | undefined = batchShape(options.batch, this.#fixed ?? 0);
    if (batch) refuseOrderingGates(options);
    this.#batch = batch && new BatchCollector(batch, (items) => this.#submit(items));
    const retry = retryShape(options);
    this.#maxDeliveries = retry.maxDeliveries;
    this.#backoff = retry.backoff;
    this.#retryIf = retry.retryIf;
    this.#priority =
      options.priority == null
        ? undefined
        : fn<(payload: T, message: M) => number>('priority', options.priority);
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
    this.#pool = new Pool(
      (work: Work<T, M>, ctx: { signal: AbortSignal }) => this.#work(work, ctx),
      {
        concurrency: this.#adaptive ?? this.#fixed,
        // Held <= the highest limit <= max: every held message fits (see #cap).
        queueSize: this.#adaptive?.max ?? this.#fixed,
        timeout: optionalDuration('timeout', options.timeout),
        // With `batch`, the pool runs batches: `rate` counts batch starts (key/priority refused).
        rate: options.rate,
        key: keyOfJob(options.key),
        perKey: options.perKey,
        name: options.name,
        watchdog: options.watchdog,
        [KIND]: 'consume',
      } as PoolOptions<Work<T, M>>,
    );
    this.#name = options.name ?? 'consume';
    this.#snapshot = announcePool(this.#name, 'consume', () => ({
      state: this.#shutdown === undefined ? 'open' : this.#ended ? 'drained' : 'closing',
      stats: this.#pool.stats(),
      consumer: this.stats(),
    }));
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    const interval = heartbeatInterval(sources);
    if (interval !== undefined) {
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
    const cap = () => this.#cap();
    this.#lanes = new FetchLanes(
      sources,
      {
        get concurrency() {
          return cap();
        },
        held: () => this.#stats.held,
        stopping: () => this.#stopping,
        deliver: (lane, messages) => this.#deliver(lane, messages),
        refuse: (lane, extra, max) => this.#refuse(lane, extra, max),
        fetchFailed: (error) => this.#fail(error, 'fetch'),
        allStopped: () => this.drain().catch((failure) => this.#fail(failure, 'close')),
      },
      this.#fetchAbort.signal,
      batch?.size,
    );
    this.#loop = this.#lanes.run();
  }

  get closed(): boolean {
    return this.#stopping;
  }

  /**
   * The cap on held messages: `concurrency`, or the adaptive limit now. Fetches ask only for
   * `cap - held - asked`, so after the limit drops nothing is fetched until held falls below it.
   */
  #cap(): number {
    return this.#adaptive?.limit ?? (this.#fixed as number);
  }

  stats(): ConsumerStats {
    const pool = this.#pool.stats();
    const stats: ConsumerStats = { ...this.#stats, running: pool.running };
    if (pool.stuck !== undefined)
      Object.assign(stats, { stuck: pool.stuck, zombies: pool.zombies });
    if (pool.limit !== undefined) stats.limit = pool.limit;
    return stats;
  }

  drain(opts?: { timeout?: number }): Promise<ConsumerReport> {
    let timeout: number | undefined;
    try {
      timeout = drainDeadline(opts);
    } catch (error) {
      return Promise.reject(error); // misuse of a promise-returning method rejects; still open
    }
    if (this.#shutdown === undefined) {
      this.#shutdown = this.#stop(() => this.#pool.drain({ timeout }));
    } else if (timeout !== undefined) {
      // A later call's deadline counts too, the earliest winning, as a Pool's (a plain drain()
      // on SIGTERM, then drain({ timeout }) on a second signal): handed to the pool now.
      this.#pool.drain({ timeout }).catch((failure) => this.#fail(failure, 'close'));
    }
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

  /** A fetch's messages: counted as held at once, then started (or batched). */
  #deliver(lane: Lane<M>, messages: M[]): void {
    this.#stats.fetched += messages.length;
    this.#stats.held += messages.length;
    this.#stats.peakHeld = Math.max(this.#stats.peakHeld, this.#stats.held);
    for (const message of messages) {
      if (this.#stopping) this.#settle(lane, message, 'release');
      else this.#start(lane, message);
    }
    this.#batch?.fetched();
  }

  /**
   * Messages a fetch returned past its `max`: reported to `onError` (`ERR_INVALID_RETURN_VALUE`,
   * op `'fetch'`) and released unstarted, never counted as held — so a source that returns too
   * many cannot push `held` past `concurrency`. A shutdown waits for their releases.
   */
  #refuse(lane: Lane<M>, extra: M[], max: number): void {
    // Fetched all the same: `fetched` stays what was settled, released or held.
    this.#stats.fetched += extra.length;
    this.#fail(
      coded(
        new RangeError(
          `the source's fetch returned ${max + extra.length} messages when asked for at most ${max}: the ${extra.length} past ${max} were released unstarted (a fetch must return at most max messages, so that at most concurrency are held)`,
        ),
        'ERR_INVALID_RETURN_VALUE',
      ),
      'fetch',
    );
    for (const message of extra) {
      this.#handingBack++;
      sourceCall(() => lane.source.release(message))
        .then(
          () => {
            this.#stats.released++;
            publishMessageOutcome(this.#name, message, 'released', undefined);
          },
          (failure) => this.#fail(failure, 'release', message),
        )
        .finally(() => {
          this.#handingBack--;
          if (this.#isIdle()) this.#idle?.();
        });
    }
  }

  /** Nothing held, no settle or hand-back under way: a shutdown may close the sources. */
  #isIdle(): boolean {
    return this.#stats.held === 0 && this.#stats.acking === 0 && this.#handingBack === 0;
  }

  /** Decodes and submits one message; malformed ones go to the dead letter without running. */
  #start(lane: Lane<M>, message: M): void {
    // Read in a try: a custom source's message whose getter throws (a Proxy) is malformed, never
    // an exception out of the fetch loop (an unhandled rejection, the rest of the fetch held).
    let deliveries: unknown;
    try {
      deliveries = message.deliveryCount;
    } catch (error) {
      this.#stats.malformed++;
      this.#settle(
        lane,
        message,
        'deadLetter',
        new MalformedMessageError(`deliveryCount unreadable: ${toError(error).message}`, {
          cause: error,
        }),
      );
      return;
    }
    if ((deliveries as number) > this.#maxDeliveries) {
      // Earlier deliveries ended without a result we could record: a crash mid-handler (a
      // poison message that kills the process), or a dead-lettering that failed. Running it
      // again past the limit could repeat that for ever: dead-letter it now.
      this.#settle(
        lane,
        message,
        'deadLetter',
        new DeliveryLimitError(deliveries as number, this.#maxDeliveries),
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
      this.#settle(lane, message, 'deadLetter', malformed);
      return;
    }
    const job = new ConsumerJob<T, M>(message, payload, lane);
    let priority: number | undefined;
    try {
      priority = this.#priority?.(payload, message);
      if (priority !== undefined && (typeof priority !== 'number' || !Number.isFinite(priority))) {
        throw coded(
          new TypeError(
            `the priority function returned ${String(priority)}, expected a finite number`,
          ),
          'ERR_INVALID_RETURN_VALUE',
        );
      }
    } catch (error) {
      // That delivery fails, like a handler's failure: retried, then dead-lettered.
      this.#finish(job, false, toError(error));
      return;
    }
    if (this.#batch) this.#batch.add(job);
    else this.#submit(job, priority);
  }

  /** Hands a message (or a batch) to the pool and settles each message with its outcome. */
  #submit(work: Work<T, M>, priority?: number): void {
    if (this.#stopping) {
      // Closing (a batch filled during the drain): these messages never started.
      if (Array.isArray(work))
        for (const job of work) this.#settle(job.lane, job.message, 'release');
      else this.#settle((work as Job<T, M>).lane, (work as Job<T, M>).message, 'release');
      return;
    }
    // Always accepted while open: held <= concurrency (adaptive: <= max) = queueSize, so there
    // is a slot or room. `run()`, not `trySubmit()`: no Task and no Result object per message.
    const ran = this.#pool.run(work, priority === undefined ? undefined : { priority });
    if (!Array.isArray(work)) {
      const job = work as Job<T, M>;
      ran.then(
        () => this.#finish(job, true, undefined),
        (error: Error) => this.#finish(job, false, error),
      );
      return;
    }
    this.#stats.batches++;
    const jobs = work as readonly Job<T, M>[];
    ran.then(
      (value) => this.#finishBatch(jobs, value),
      (error: Error) => {
        for (const job of jobs) this.#finish(job, false, error);
      },
    );
  }

  /**
   * A batch handler returned `value`: each message's outcome is read on its own; the ones that
   * succeeded are acked together per source where the source can (`ackMany`), one call and one
   * promise per batch instead of per message; everything else goes through `#finish`.
   */
  #finishBatch(jobs: readonly Job<T, M>[], value: unknown): void {
    for (const job of jobs) {
      const failure = outcomeOf(value, job);
      this.#finish(job, failure === undefined, failure);
    }
  }

  /**
   * Queues an ack for the lane's next `ackMany` call, made once the microtasks queued so far
   * have run: the handlers (or batches) that finish together in one turn are acked with one
   * call and one promise per source, instead of one `ack` and one promise chain per message.
   * The sources already send the acks of one turn together (at its `setImmediate`), so this
   * adds no wait: it only moves the grouping ahead of the per-message promises.
   */
  #queueAck(lane: Lane<M>, message: M): void {
    if (lane.acks === undefined) {
      lane.acks = [message];
      this.#ackLanes.push(lane);
      if (this.#ackLanes.length === 1) queueMicrotask(this.#flushAcks);
    } else lane.acks.push(message);
  }

  readonly #flushAcks = (): void => {
    const lanes = this.#ackLanes;
    this.#ackLanes = [];
    for (const lane of lanes) {
      const messages = lane.acks!;
      lane.acks = undefined;
      this.#ackMany(lane, messages);
    }
  };

  /**
   * Acks `messages` (held, on `lane`'s source, each handler succeeded) with one `ackMany` call.
   * Per message it counts, reports and frees exactly what `#settle(…, 'ack')` would.
   */
  #ackMany(lane: Lane<M>, messages: M[]): void {
    if (messages.length === 1) {
      this.#send(lane, messages[0]!, 'ack');
      return;
    }
    const n = messages.length;
    // Freed before the source sees the acks: a full loop's wake-up then comes ahead of the
    // source's own flush of them (see `FetchLanes.run`), so they can ride with that fetch.
    const early = this.#lanes.orderedAcks && !lane.fetching;
    if (early) {
      this.#stats.acking += n;
      this.#freeSlots(lane, n);
    }
    // A copy, as a batch handler's items: the source may consume its argument (splice it).
    sourceCall(() => lane.source.ackMany!(messages.slice())).then(
      (results) => {
        try {
          const { entries, bad } = ackManyEntries(results, n);
          for (let i = 0; i < n; i++) {
            const message = messages[i]!;
            const failure = bad ?? entries?.[i];
            if (failure == null) {
              this.#stats.acked++;
              publishMessageOutcome(this.#name, message, 'acked', undefined);
            } else this.#ackFailed(failure, message);
          }
        } finally {
          this.#settledMany(lane, early, n);
        }
      },
      (failure) => {
        try {
          for (const message of messages) this.#ackFailed(failure, message);
        } finally {
          this.#settledMany(lane, early, n);
        }
      },
    );
  }

  /** An ack of `message` failed: counted (a lost lease too) and reported, as in `#send`. */
  #ackFailed(failure: unknown, message: M): void {
    this.#settleFailed(failure, 'ack', message);
  }

  /**
   * A settle of a message whose handler finished (ack, retry, dead letter) failed: its outcome
   * was not confirmed, so a drain's report must not read clean (`unsettled`); a refusal for a
   * lost lease is counted as such too.
   */
  #settleFailed(failure: unknown, op: 'ack' | 'retry' | 'deadLetter', message: M): void {
    this.#stats.unsettled++;
    if (errorStringCode(failure) === 'ERR_LEASE_LOST') {
      this.#stats.leaseLost++;
      publishMessageOutcome(this.#name, message, 'leaseLost', undefined, 'settle');
    } else {
      publishMessageOutcome(this.#name, message, 'unsettled', toError(failure));
    }
    this.#fail(failure, op, message);
  }

  #work(work: Work<T, M>, ctx: { signal: AbortSignal }): unknown {
    if (this.#stopping) throw RELEASED;
    if (!Array.isArray(work)) {
      const job = work as Job<T, M>;
      job.attach(ctx);
      // Not an async function: a handler that returns synchronously costs no promise here (the
      // pool settles a plain value on a microtask), and one that returns a promise costs one.
      // Called as a plain function (`this.#handler(…)` would hand it the consumer as `this`).
      const handler = this.#handler;
      const out = handler(job.payload, job);
      if (!isThenable(out)) return out;
      this.#running.add(job);
      return settledThen(out, () => this.#running.delete(job));
    }
    const jobs = work as readonly Job<T, M>[];
    for (const job of jobs) job.attach(ctx);
    // One entry per batch, not per message: the heartbeat walks its items.
    this.#runningBatches.add(jobs);
    let out: unknown;
    try {
      const handler = this.#handler;
      // A copy: the handler may splice, pop or push its items (chunking them is common); the
      // batch's own list must still hold every message to settle.
      out = handler(jobs.slice(), { signal: ctx.signal });
    } catch (error) {
      this.#runningBatches.delete(jobs);
      throw error;
    }
    if (!isThenable(out)) {
      this.#runningBatches.delete(jobs);
      return out;
    }
    return settledThen(out, () => this.#runningBatches.delete(jobs));
  }

  #finish(job: Job<T, M>, ok: boolean, error: Error | undefined): void {
    const { message, lane } = job;
    if (job.leaseLost) {
      // A heartbeat said another consumer owns it now: whatever the handler's outcome, neither
      // ack nor retry (either would settle the other consumer's delivery); the broker's copy is
      // the truth. Checked before success: a handler that ignored its aborted signal and
      // finished must not ack a message it no longer owns.
      this.#stats.leaseLost++;
      publishMessageOutcome(this.#name, message, 'leaseLost', undefined, 'heartbeat');
      this.#settle(lane, message, 'drop');
    } else if (ok) {
      this.#settle(lane, message, 'ack');
    } else if (error === RELEASED) {
      this.#settle(lane, message, 'release');
    } else if (this.#stopping && isAbort(error)) {
      this.#stats.canceled++;
      this.#settle(lane, message, 'release', undefined, true);
    } else {
      const failure = error ?? new Error('handler failed');
      const malformed = failure instanceof MalformedMessageError;
      if (malformed) this.#stats.malformed++;
      const last =
        malformed ||
        message.deliveryCount >= this.#maxDeliveries ||
        !this.#wantsRetry(failure, message.deliveryCount);
      this.#settle(lane, message, last ? 'deadLetter' : 'retry', failure);
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
   * Runs one broker operation for a held message on its own source; the slot frees when it
   * settles — or at once for an ack the source guarantees to deliver before the next fetch
   * (`orderedAcks`, with a single source).
   */
  #settle(
    lane: Lane<M>,
    message: M,
    op: 'ack' | 'retry' | 'deadLetter' | 'release' | 'drop',
    error?: Error,
    quiet = false,
  ): void {
    if (op === 'ack' && lane.source.ackMany !== undefined) this.#queueAck(lane, message);
    else this.#send(lane, message, op, error, quiet);
  }

  /** `#settle` now, with the source's own method for `op`. */
  #send(
    lane: Lane<M>,
    message: M,
    op: 'ack' | 'retry' | 'deadLetter' | 'release' | 'drop',
    error?: Error,
    quiet = false,
  ): void {
    const source = lane.source;
    // Freed before the source sees the ack, as in `#ackMany`.
    const early = op === 'ack' && this.#lanes.orderedAcks && !lane.fetching;
    if (early) {
      this.#stats.acking++;
      this.#freeSlot(lane);
    }
    const call = sourceCall((): unknown => {
      if (op === 'drop') return undefined;
      if (op === 'ack') return source.ack(message);
      if (op === 'release') return source.release(message);
      if (op === 'deadLetter') return source.deadLetter(message, error!);
      return source.retry(message, this.#retryDelay(message), error!);
    });
    // One `then` with both arms (no `finally` promise): a settle is per message, on the hot
    // path. The slot frees in each arm's own `finally`, whatever the bookkeeping before it does.
    call.then(
      () => {
        try {
          if (op === 'ack') this.#stats.acked++;
          else if (op === 'retry') this.#stats.retried++;
          else if (op === 'deadLetter') this.#stats.deadLettered++;
          else if (op === 'release' && !quiet) this.#stats.released++;
          if (op !== 'drop') {
            const outcome = OUTCOME_OF[op] ?? (quiet ? 'canceled' : 'released');
            publishMessageOutcome(this.#name, message, outcome, error);
          }
        } finally {
          this.#settled(lane, early);
        }
      },
      (failure) => {
        try {
          // The broker refused because another consumer claimed the message meanwhile (the
          // check runs with the operation itself, so a late ack never settles its delivery).
          if (op === 'ack' || op === 'retry' || op === 'deadLetter') {
            this.#settleFailed(failure, op, message);
          } else {
            if (errorStringCode(failure) === 'ERR_LEASE_LOST') {
              this.#stats.leaseLost++;
              publishMessageOutcome(this.#name, message, 'leaseLost', undefined, 'settle');
            }
            this.#fail(failure, 'release', message);
          }
        } finally {
          this.#settled(lane, early);
        }
      },
    );
  }

  /** A settle's broker call ended (either way): its slot frees, unless it did already. */
  #settled(lane: Lane<M>, early: boolean): void {
    if (early) this.#stats.acking--;
    else this.#freeSlot(lane);
    if (this.#isIdle()) this.#idle?.();
  }

  #freeSlot(lane: Lane<M>): void {
    this.#stats.held--;
    lane.held--;
    this.#lanes.wake();
  }

  /** `#settled` for the `n` messages of one `ackMany` call: their slots free together. */
  #settledMany(lane: Lane<M>, early: boolean, n: number): void {
    if (early) this.#stats.acking -= n;
    else this.#freeSlots(lane, n);
    if (this.#isIdle()) this.#idle?.();
  }

  #freeSlots(lane: Lane<M>, n: number): void {
    this.#stats.held -= n;
    lane.held -= n;
    this.#lanes.wake();
  }

  #beat(): void {
    for (const job of this.#running) this.#beatOne(job);
    for (const jobs of this.#runningBatches) for (const job of jobs) this.#beatOne(job);
  }

  #beatOne(job: Job<T, M>): void {
    const source = job.lane.source;
    if (!source.heartbeat) return;
    sourceCall(() => source.heartbeat!(job.message)).then(
      (stillOurs) => {
        if (stillOurs === false) job.loseLease();
      },
      (error) => this.#fail(error, 'heartbeat', job.message),
    );
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
    this.#lanes.wake();
    await this.#loop;
    // A batch still filling never started: its messages go back.
    for (const job of this.#batch?.take() ?? []) this.#settle(job.lane, job.message, 'release');
    // Messages still queued (waiting on a gate: the rate, their key) go back now, rather than
    // each waiting its turn only to be released when it starts.
    this.#pool[RELEASE_QUEUED](RELEASED);
    try {
      await stopPool();
    } catch (error) {
      // Not expected (options are checked before), but a shutdown must never end in an
      // unhandled rejection: report it and settle what is left as aborted.
      this.#fail(error, 'close');
      await this.#pool.abort(error).catch(() => undefined);
    }
    if (!this.#isIdle()) {
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
      });
    }
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    for (const lane of this.#lanes.lanes) {
      try {
        await lane.source.close();
      } catch (error) {
        this.#fail(error, 'close');
      }
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
      unsettled: stats.unsettled - before.unsettled,
      stats,
    };
    this.#ended = true;
    this.#resolveDone(report);
    return report;
  }
}

/** The sources as a checked, non-empty list without repeats. */
function sourceList<M extends BrokerMessage>(source: Sources<M>): readonly BrokerSource<M>[] {
  const expected =
    'a BrokerSource (an object with fetch, ack, retry, …) or a non-empty array of them';
  const list: readonly unknown[] = Array.isArray(source) ? source : [source];
  if (list.length === 0) invalidArgument('source', source, expected);
  for (const item of list) {
    if (typeof (item as { fetch?: unknown } | null)?.fetch !== 'function') {
      invalidArgument('source', source, expected);
    }
  }
  if (new Set(list).size !== list.length) {
    // One source fetched by two lanes would break "one fetch at a time" per source.
    invalidArgument('source', source, `${expected}, each given once`);
  }
  for (const item of list) {
    const { heartbeat, heartbeatInterval: every } = item as BrokerSource;
    // 0, a negative number or NaN: Node's setInterval beats every 1 ms, for every running
    // message — a busy loop of broker calls. Infinity is clamped to the longest timer.
    if (
      heartbeat !== undefined &&
      every !== undefined &&
      !(typeof every === 'number' && every > 0)
    ) {
      invalidOption(
        'heartbeatInterval',
        every,
        "a number of ms > 0 (how often a running message's heartbeat is sent), or undefined",
        typeof every === 'number',
      );
    }
  }
  return list as readonly BrokerSource<M>[];
}

/** The shortest heartbeat interval among the sources that heartbeat (undefined: none). */
function heartbeatInterval(sources: readonly BrokerSource[]): number | undefined {
  let interval: number | undefined;
  for (const source of sources) {
    if (source.heartbeatInterval === undefined || !source.heartbeat) continue;
    interval = Math.min(interval ?? Number.POSITIVE_INFINITY, source.heartbeatInterval);
  }
  return interval;
}

/**
 * `out` adopted as `await` adopts it (the built-in `then`, never a native promise's own `then`
 * property: see `promiseThen`), with `done` run once it settles; the outcome is kept.
 */
function settledThen(out: PromiseLike<unknown>, done: () => void): Promise<unknown> {
  let adopted: Promise<unknown>;
  try {
    // Reads a native promise's `constructor` (user code on a hostile one): a throw fails the job,
    // which then is not running any more.
    adopted = Promise.resolve(out);
  } catch (error) {
    done();
    throw error;
  }
  return promiseThen.call(
    adopted,
    (value) => {
      done();
      return value;
    },
    (error: unknown) => {
      done();
      throw error;
    },
  );
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

/**
 * What a source's `ackMany` resolved with, read once into a plain array: `undefined` (all
 * acked), one entry per message, or `bad` — the failure of every message when it is anything
 * else, or when reading it threw (a Proxy's traps): counted as not acked, never thrown.
 */
function ackManyEntries(
  results: unknown,
  n: number,
): { entries: readonly unknown[] | undefined; bad: Error | undefined } {
  if (results == null) return { entries: undefined, bad: undefined };
  try {
    const length = Array.isArray(results) ? (results as unknown[]).length : undefined;
    if (length !== n) {
      return {
        entries: undefined,
        bad: new TypeError(
          `ackMany resolved with ${length === undefined ? typeof results : `${length} results`} for ${n} messages (expected undefined or one entry per message): counted as not acked`,
        ),
      };
    }
    const entries: unknown[] = [];
    for (let i = 0; i < n; i++) entries.push((results as unknown[])[i]);
    return { entries, bad: undefined };
  } catch (error) {
    return {
      entries: undefined,
      bad: new TypeError(
        `ackMany resolved with a value whose reading threw (expected undefined or one entry per message): counted as not acked`,
        { cause: error },
      ),
    };
  }
}

/**
 * Calls a source's method as a promise, whatever it does: a custom `BrokerSource` may answer
 * synchronously (a plain value, a throw) or with a value whose `then` getter throws. Each
 * becomes a settled promise (a rejection for a throw), never an exception out of the consumer
 * nor a settle that never ends (its slot held for ever).
 */
function sourceCall<R>(call: () => R | PromiseLike<R>): Promise<R> {
  try {
    return Promise.resolve(call());
  } catch (thrown) {
    return Promise.reject(thrown);
  }
}
