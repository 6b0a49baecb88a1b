/**
 * Ack-family frames (`+ACK`, `-NAK`, `+TERM`) of one source, sent together at the end of each
 * event-loop turn, and confirmed over one inbox subscription. Internal to `sluice/nats`.
 *
 * JetStream has no multiple-ack: every message is acked on its own subject. What costs is not
 * the bytes but the socket writes: nats.js flushes its outbound buffer in a microtask, so acks
 * issued by handlers finishing in different microtasks each took a `write(2)` of their own
 * (the largest item of the NATS consumer's CPU profile). Queued here and published together in
 * a `setImmediate`, the acks of one turn go out in one write, a turn later at most.
 *
 * A confirmed frame is published with a reply subject and the server answers once it applied
 * it (what `JsMsg.ackAck()` does): the guarantee is exactly `ackAck()`'s, without its cost per
 * ack (through `RequestOne` it arms and clears a timer, races two promises and, on every
 * *successful* reply, constructs a `RequestError('cancelled')`, a stack trace, that nobody
 * reads). One timer serves every outstanding request: they share one timeout and are kept in
 * the order they were sent, so the oldest is always the first to expire.
 *
 * @module
 */
import {
  createInbox,
  type Msg,
  type NatsConnection,
  NoRespondersError,
  type Subscription,
  TimeoutError,
} from '@nats-io/transport-node';
import {
  LeaseLostError,
  NotConnectedError,
  PublishTimeoutError,
  SettleTimeoutError,
  SluiceError,
  UnroutableError,
} from '../../errors.js';
import { errorMessage, errorName } from '../dead-letter.js';

/** The settle a frame carries (named as `SettleTimeoutError` names it). */
export type SettleOperation = SettleTimeoutError['operation'];

/** nats.js's errors (by name: a connection from another copy has its own classes) of a connection that is gone. */
const CONNECTION_ERRORS = new Set([
  'ClosedConnectionError',
  'DrainingConnectionError',
  'ConnectionError',
]);

/**
 * A settle's failure as sluice reports it, the client's error kept as `cause`: nats.js's timeout
 * as `SettleTimeoutError` (`ERR_SETTLE_TIMEOUT`, as on Redis); a closed or failed connection as
 * `NotConnectedError` (`ERR_NOT_CONNECTED`); no responders (the consumer was deleted: the server
 * answers 503) as `LeaseLostError` (`ERR_LEASE_LOST`); any other error as it is.
 */
export function settleError(
  error: Error,
  operation: SettleOperation,
  id: string,
  timeoutMs: number,
): Error {
  if (error instanceof TimeoutError) {
    return new SettleTimeoutError(operation, `message ${id}`, timeoutMs, {
      cause: error,
      within: 'ackTimeout',
    });
  }
  if (CONNECTION_ERRORS.has(errorName(error))) {
    return new NotConnectedError('NATS', `${operation} of message ${id}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  if (isNoResponders(error)) {
    return new LeaseLostError(
      id,
      operation,
      'its consumer no longer exists on the server (no responders on its ack subject): check what deleted the consumer',
      { cause: error },
    );
  }
  return error;
}

/**
 * A JetStream publish's failure as sluice reports it, the client's error as `cause` (told by
 * name, as a connection from another copy of nats.js has its own classes): nats.js's timeout
 * waiting for the PubAck as `PublishTimeoutError` (`ERR_PUBLISH_TIMEOUT`); a closed or failed
 * connection as `NotConnectedError` (`ERR_NOT_CONNECTED`); no responders on the subject (no
 * stream captures it, or JetStream is off — nats.js reports both as `JetStreamNotEnabled`) as
 * `UnroutableError` (`ERR_UNROUTABLE`: nothing was stored); anything else as it is.
 */
export function publishError(error: unknown, subject: string, timeoutMs: number): unknown {
  if (error instanceof SluiceError) return error;
  const name = errorName(error);
  if (error instanceof TimeoutError || name === 'TimeoutError') {
    return new PublishTimeoutError(`NATS subject ${JSON.stringify(subject)}`, timeoutMs, {
      cause: error,
    });
  }
  if (CONNECTION_ERRORS.has(name)) {
    return new NotConnectedError(
      'NATS',
      `publish to subject ${JSON.stringify(subject)}: ${errorMessage(error)}`,
      { cause: error },
    );
  }
  if (isNoResponders(error)) {
    return new UnroutableError(
      `NATS has no responder for subject ${JSON.stringify(subject)}: no JetStream stream captures it, or JetStream is not enabled on the server — check the subject and that its stream exists (a source declares it); nothing was stored`,
      { cause: error },
    );
  }
  return error;
}

/**
 * nats.js's "no responders" for a request: its `NoRespondersError`, a `RequestError` made of one,
 * or JetStream's publish turning it into `JetStreamNotEnabled` (its `cause` the `RequestError`).
 */
function isNoResponders(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    // nats.js names its NoRespondersError "NoResponders".
    if (e instanceof NoRespondersError || e.name === 'NoResponders') return true;
    const check = (e as { isNoResponders?: unknown }).isNoResponders;
    if (typeof check === 'function' && check.call(e) === true) return true;
  }
  return false;
}

/** One frame: queued until the end of the turn, then (if confirmed) waiting for its reply. */
interface Frame {
  readonly subject: string;
  readonly payload: Uint8Array;
  /** Wait for the server's reply; else settled once published. */
  readonly confirm: boolean;
  /** Told the frame's outcome: a promise of its own (`send`), or a share of one (`sendMany`). */
  readonly waiter: Waiter;
  /** The frame's index in its `sendMany` group (0 for `send`). */
  readonly index: number;
  /** `performance.now()` past which a confirmed frame fails with a `TimeoutError`. */
  deadline: number;
}

/** What a frame's outcome settles. */
interface Waiter {
  done(index: number, error: Error | undefined): void;
}

/** One frame's own promise. */
class One implements Waiter {
  readonly #resolve: () => void;
  readonly #reject: (error: Error) => void;
  readonly #operation: SettleOperation;
  readonly #id: string;
  readonly #timeoutMs: number;
  constructor(
    resolve: () => void,
    reject: (error: Error) => void,
    operation: SettleOperation,
    id: string,
    timeoutMs: number,
  ) {
    this.#resolve = resolve;
    this.#reject = reject;
    this.#operation = operation;
    this.#id = id;
    this.#timeoutMs = timeoutMs;
  }
  done(_index: number, error: Error | undefined): void {
    if (error === undefined) this.#resolve();
    else this.#reject(settleError(error, this.#operation, this.#id, this.#timeoutMs));
  }
}

/**
 * The frames of one `sendMany`: one promise, resolved once every frame's outcome is known with
 * `undefined` (all succeeded) or each frame's error at its index.
 */
class Group implements Waiter {
  readonly #size: number;
  #left: number;
  #errors: (Error | undefined)[] | undefined;
  readonly #resolve: (errors: (Error | undefined)[] | undefined) => void;
  constructor(size: number, resolve: (errors: (Error | undefined)[] | undefined) => void) {
    this.#size = size;
    this.#left = size;
    this.#resolve = resolve;
  }
  done(index: number, error: Error | undefined): void {
    if (error !== undefined) {
      this.#errors ??= new Array<Error | undefined>(this.#size).fill(undefined);
      this.#errors[index] = error;
    }
    if (--this.#left === 0) this.#resolve(this.#errors);
  }
}

export class AckRequests {
  readonly #nc: NatsConnection;
  readonly #timeoutMs: number;
  /** `<inbox>.`: each request's reply subject is this plus its number. */
  readonly #prefix: string;
  #sub: Subscription | undefined;
  #next = 0;
  /** Frames of this turn, published at its end. */
  #queued: Frame[] = [];
  #scheduled = false;
  /** Published, waiting for their reply, by request number, oldest first (Map: insertion order). */
  readonly #outstanding = new Map<number, Frame>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Set by `close()`: later frames are refused (no new subscription on a user's connection). */
  #closed: Error | undefined;
  readonly #flush = (): void => this.#publishQueued();

  constructor(nc: NatsConnection, timeoutMs: number) {
    this.#nc = nc;
    this.#timeoutMs = timeoutMs;
    // The connection's `inboxPrefix` (its private options: the public type has no getter), so a
    // user whose permissions allow replies only under their own prefix gets them here too.
    const prefix = (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
    this.#prefix = `${createInbox(prefix)}.`;
  }

  /** Requests waiting for their reply (tests, diagnostics). */
  get outstanding(): number {
    return this.#outstanding.size;
  }

  /**
   * Publishes `payload` to `subject` (a JetStream message's reply subject) at the end of this
   * turn: the `operation` of message `id` (they name it in a timeout's error). Confirmed:
   * resolves once the server replied; rejects with `SettleTimeoutError` (`ERR_SETTLE_TIMEOUT`,
   * nats.js's `TimeoutError` as `cause`) after the timeout, `LeaseLostError` (nats.js's
   * `NoRespondersError` as `cause`) when the consumer is gone, `NotConnectedError` when the
   * publish fails on a closed connection. Not
   * confirmed: resolves once handed to the connection (a lost frame is a redelivery after
   * ack_wait).
   */
  send(
    subject: string,
    payload: Uint8Array,
    confirm: boolean,
    operation: SettleOperation,
    id: string,
  ): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise<void>((resolve, reject) => {
      this.#queued.push({
        subject,
        payload,
        confirm,
        waiter: new One(resolve, reject, operation, id, this.#timeoutMs),
        index: 0,
        deadline: 0,
      });
      this.#schedule();
    });
  }

  /**
   * `send` of `payload` to each of `subjects`, with one promise for them all: resolves once
   * every frame's outcome is known, with `undefined` when all succeeded, else an array as long
   * as `subjects` holding each failed frame's error at its index (a timeout as nats.js's
   * `TimeoutError`: the caller names the message, see `settleError`).
   */
  sendMany(
    subjects: readonly string[],
    payload: Uint8Array,
    confirm: boolean,
  ): Promise<(Error | undefined)[] | undefined> {
    if (subjects.length === 0) return Promise.resolve(undefined);
    if (this.#closed) {
      const closed = this.#closed;
      return Promise.resolve(subjects.map(() => closed));
    }
    return new Promise((resolve) => {
      const waiter = new Group(subjects.length, resolve);
      for (let index = 0; index < subjects.length; index++) {
        this.#queued.push({
          subject: subjects[index]!,
          payload,
          confirm,
          waiter,
          index,
          deadline: 0,
        });
      }
      this.#schedule();
    });
  }

  #schedule(): void {
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  /** Fails every outstanding request and unsubscribes (the source is closing). */
  close(error: Error = new NotConnectedError('NATS', 'the source was closed')): void {
    // Frames of this turn still go out (a plain ack issued just before close is still sent).
    this.#publishQueued();
    this.#closed = error;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#failAll(error);
    const sub = this.#sub;
    this.#sub = undefined;
    if (sub && !this.#nc.isClosed()) sub.unsubscribe();
  }

  /** nats.js coalesces the publishes of one synchronous run into one socket write. */
  #publishQueued(): void {
    this.#scheduled = false;
    const queued = this.#queued;
    if (queued.length === 0) return;
    this.#queued = [];
    const deadline = performance.now() + this.#timeoutMs;
    for (const frame of queued) {
      try {
        if (!frame.confirm) {
          this.#nc.publish(frame.subject, frame.payload);
          frame.waiter.done(frame.index, undefined);
          continue;
        }
        this.#subscribe();
        const id = ++this.#next;
        this.#nc.publish(frame.subject, frame.payload, { reply: this.#prefix + id });
        frame.deadline = deadline;
        this.#outstanding.set(id, frame);
      } catch (error) {
        frame.waiter.done(frame.index, error as Error);
      }
    }
    if (this.#outstanding.size > 0) this.#timer ??= this.#arm(this.#timeoutMs);
  }

  /** Subscribes at first use (replies come in a later turn: the subscription is sent first). */
  #subscribe(): void {
    if (this.#sub) return;
    this.#sub = this.#nc.subscribe(`${this.#prefix}*`, {
      callback: (error, msg) => (error ? this.#failAll(error) : this.#reply(msg)),
    });
  }

  #reply(msg: Msg): void {
    const id = Number(msg.subject.slice(this.#prefix.length));
    const frame = this.#outstanding.get(id);
    if (!frame) return; // timed out already
    this.#outstanding.delete(id);
    // The server answers an ack to a consumer that no longer exists with a 503 status.
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      frame.waiter.done(frame.index, new NoRespondersError(frame.subject));
    } else {
      frame.waiter.done(frame.index, undefined);
    }
  }

  #failAll(error: Error): void {
    for (const frame of this.#outstanding.values()) frame.waiter.done(frame.index, error);
    this.#outstanding.clear();
  }

  #arm(ms: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => this.#expire(), Math.max(1, ms));
    // Never what keeps the process alive: the connection does while requests are outstanding.
    timer.unref?.();
    return timer;
  }

  /** Fails the requests past their deadline (the oldest first) and re-arms for the next one. */
  #expire(): void {
    this.#timer = undefined;
    const now = performance.now();
    for (const [id, frame] of this.#outstanding) {
      if (frame.deadline > now) {
        this.#timer = this.#arm(frame.deadline - now);
        return;
      }
      this.#outstanding.delete(id);
      frame.waiter.done(frame.index, new TimeoutError());
    }
  }
}
