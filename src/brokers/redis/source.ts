/**
 * The Redis Streams source itself (see `index.ts` for the design notes and the public entry).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { RESP_TYPES } from 'redis';
import { ConnectConfigError, LeaseLostError, SettleTimeoutError, toError } from '../../errors.js';
import { rejectAfter, unreachable } from '../connect-deadline.js';
import { Batcher } from '../consumer-batch.js';
import { errorCode, errorMessage, errorName, errorText } from '../dead-letter.js';
import {
  type BrokerMessage,
  type BrokerSource,
  closedError,
  type MessagingTarget,
} from '../source.js';
import { type CommonSourceOptions, SOURCE_DEFAULTS } from '../source-options.js';
import { FIRST_FAILURE_TTL, firstFailureKey } from './dead-letters.js';
import { delayKeys, PROMOTE, RELEASE_KEY } from './enqueue-scripts.js';
import { RedisLink } from './link.js';
import {
  ACK_IF_OWNED,
  CLAIM_IF_OWNED,
  DEAD_LETTER,
  DELETE_IF_EMPTY,
  REAP_EMPTY_CONSUMERS,
} from './scripts.js';

/**
 * Any node-redis v5 client, whatever its type parameters: the one `createClient()` returns with
 * its defaults (RESP `2 | 3`, the default modules), `createClient({ RESP: 3 })`, a client from
 * `@redis/client` without modules, or one with a type mapping. sluice sends raw commands with its
 * own reply mapping, so none of those parameters matter to it.
 *
 * A structural type — the members sluice uses — and not node-redis's `RedisClientType`: that
 * class has private fields, which TypeScript compares by declaration, so a client from another
 * copy of node-redis (an app that links sluice with `npm link` or a `file:` dependency resolves
 * `redis` twice) would be refused although it is the same client.
 */
export interface AnyRedisClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  // Method syntax (bivariant parameters): node-redis declares wider argument types.
  sendCommand(args: (string | Buffer)[], options?: SendOptions): Promise<unknown>;
  connect(): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): void;
  /** A new, unconnected client with this one's options and `overrides`. */
  duplicate(overrides?: RedisClientOverrides): AnyRedisClient;
  on(event: string, listener: () => void): unknown;
}

/** The options sluice sets on the duplicates it makes of a client (see `redisSource`). */
export interface RedisClientOverrides {
  RESP?: 2;
  name?: string;
  disableClientInfo?: boolean;
  maintNotifications?: 'disabled';
}

/** Options of {@link redisSource}. */
export interface RedisSourceOptions extends CommonSourceOptions {
  /** Connection URL, used when `client` is absent. @default 'redis://127.0.0.1:6379' */
  url?: string;
  /**
   * A node-redis v5 client whose options (URL, credentials, TLS, reconnect strategy, …) the
   * source's connections copy, as `createClient()` returns it (any RESP version, modules or type
   * mapping). The source duplicates it twice — once for its commands, once (with RESP 2) for the
   * blocking reads — and never sends a command on the client itself: it replaces a connection
   * that comes back from a reconnect out of step or stuck, which it must not do to one the caller
   * shares. The caller keeps ownership (`close()` leaves it open).
   */
  client?: AnyRedisClient;
  /** Stream key. */
  stream: string;
  /** Consumer group (created with `MKSTREAM` from id `0` when missing). */
  group: string;
  /** This consumer's name in the group. @default `${hostname}-${pid}-${random}` */
  consumer?: string;
  /** The entry field holding the payload. @default 'body' */
  field?: string;
  /**
   * Where dead letters go: a copy of every field of the entry, plus `sluice-id`,
   * `sluice-stream`, `sluice-group`, `sluice-deliveries`, `sluice-error`, `sluice-code`,
   * `sluice-first-failed-at` (ms since the epoch; see `redisDeadLetters`).
   * @default `${stream}:dead`
   */
  deadLetterStream?: string;
  /**
   * Also `XDEL` each entry once acked (in the same round trip), so the stream holds only the
   * backlog. Use it when this group is the stream's only reader; with several groups reading
   * one stream, leave it off and trim by your retention policy (`XADD … MAXLEN`/`MINID`).
   * Dead letters are deleted too. @default false
   */
  deleteOnAck?: boolean;
}

/** A message read from a Redis stream. */
export interface RedisMessage extends BrokerMessage {
  readonly stream: string;
  /** The deduplication key it was enqueued with (`sluice-key` field), freed at ack or dead letter. */
  readonly key?: string;
}

type Reply = unknown[] | null;
const BUFFERS = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } } as const;
/** The reply mapping sluice asks of a command: bulk strings as `Buffer`s. */
export type ReplyOptions = typeof BUFFERS;
/**
 * What sluice passes to a client's `sendCommand`: a reply mapping, and a signal that withdraws
 * a command node-redis has not written yet (see `RedisLink`).
 */
export interface SendOptions {
  typeMapping?: ReplyOptions['typeMapping'];
  abortSignal?: AbortSignal;
}

/** The Redis Streams {@link BrokerSource}; create it with {@link redisSource}. */
export class RedisStreamSource implements BrokerSource<RedisMessage> {
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  readonly deadLetterStream: string;
  readonly heartbeatInterval: number;
  readonly messaging: MessagingTarget;
  /** Commands that must not wait behind a blocked read (acks during a fetch, heartbeats, …). */
  readonly #cmd: RedisLink;
  /** The blocking reads, and the acks sent between fetches. */
  readonly #read: RedisLink;
  /** Replaces a connection whose commands got no reply in time (see `RedisLink.check`). */
  readonly #watchdog: ReturnType<typeof setInterval>;
  readonly #field: string;
  readonly #block: number;
  readonly #lease: number;
  /** How long after its fetch an ack skips the owner check (ms, as the script's argument). */
  readonly #ackWindow: string;
  readonly #deleteOnAck: boolean;
  /** Acks issued since the last flush, sent as one script call (see `#flushAcks`). */
  #acks: PendingAcks | undefined;
  readonly #delay: ReturnType<typeof delayKeys>;
  /** When (performance.now()) the delayed set is looked at next. */
  #promoteAt = 0;
  readonly #beats: Batcher<string, unknown[]>;
  #readId: string | undefined;
  #claimCursor = '0-0';
  #lastClaim = 0;
  #closed = false;
  /** A fetch is running: acks flushed now go on the command connection (the read may block). */
  #fetching = false;
  /**
   * Acks issued while no fetch runs are sent on the reading connection, ahead of the next read,
   * so Redis applies them before it hands out more entries (see `BrokerSource.orderedAcks`).
   */
  readonly orderedAcks = true;

  /**
   * @internal use {@link redisSource}. `ackWindow` (tests only): how long after its fetch an
   * ack skips the owner check; never more than `lease` (the default), 0 = always checked.
   */
  constructor(
    cmd: AnyRedisClient,
    read: AnyRedisClient,
    ownsCmd: boolean,
    o: RedisSourceOptions,
    ackWindow?: number,
  ) {
    this.stream = o.stream;
    this.group = o.group;
    this.consumer =
      o.consumer ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.deadLetterStream = o.deadLetterStream ?? `${o.stream}:dead`;
    this.messaging = { system: 'redis', destination: o.stream, consumerGroup: o.group };
    this.#field = o.field ?? 'body';
    this.#block = o.fetchWait ?? SOURCE_DEFAULTS.fetchWait;
    this.#lease = o.lease ?? SOURCE_DEFAULTS.lease;
    this.#ackWindow = String(Math.min(this.#lease, ackWindow ?? this.#lease));
    this.heartbeatInterval = Math.max(10, Math.floor(this.#lease / 3));
    this.#deleteOnAck = o.deleteOnAck ?? false;
    this.#delay = delayKeys(this.stream);
    // A heartbeat does not restart a message's ack window (see HeldEntry): only its fetch does.
    this.#beats = new Batcher((ids) => this.#claimOwned(ids, 0));
    // Past this, commands waiting with no reply and no reconnect attempt mean a stuck connection:
    // the longest a healthy one is silent is a blocked read, plus a handshake on a reconnect.
    const deadline =
      this.#block + (o.connectTimeout ?? SOURCE_DEFAULTS.connectTimeout) + STUCK_MARGIN_MS;
    this.#cmd = new RedisLink(cmd, ownsCmd, () => cmd.duplicate(), deadline);
    this.#read = new RedisLink(
      read,
      true,
      () => read.duplicate(),
      deadline,
      (client) => {
        // A reconnect or a replacement gives the reading connection a new id; look it up again
        // before the next block.
        this.#readId = undefined;
        client.on('ready', () => {
          this.#readId = undefined;
        });
      },
    );
    const every = Math.min(1000, deadline / 4);
    let lastTick = performance.now();
    this.#watchdog = setInterval(() => {
      const now = performance.now();
      const late = now - lastTick > 2 * every;
      lastTick = now;
      // A late tick means the event loop was stalled: replies may be waiting, unread, in the
      // sockets. Judge at the next tick, after they have been read.
      if (late) return;
      this.#cmd.check(now);
      this.#read.check(now);
    }, every);
    this.#watchdog.unref();
  }

  async fetch(max: number, signal: AbortSignal): Promise<RedisMessage[]> {
    if (this.#closed) throw closedError('Redis');
    // Acks issued since the last fetch go first, down the same connection as the reads below.
    this.#flushAcks();
    if (signal.aborted) return [];
    this.#fetching = true;
    signal.addEventListener('abort', this.#dropReconnecting, { once: true });
    try {
      return await this.#fetch(max, signal);
    } finally {
      signal.removeEventListener('abort', this.#dropReconnecting);
      this.#fetching = false;
    }
  }

  /**
   * A fetch aborted during an outage: its commands (and a CLIENT UNBLOCK) would wait for the
   * reconnect, and a shutdown for the outage. The connections that are reconnecting are
   * replaced instead, which fails the commands waiting on them now.
   */
  readonly #dropReconnecting = (): void => {
    for (const link of [this.#read, this.#cmd]) {
      if (link.reconnecting) link.replace('a fetch was aborted while the connection reconnected');
    }
  };

  async #fetch(max: number, signal: AbortSignal): Promise<RedisMessage[]> {
    // The server's clock before anything this fetch delivers: the start of every delivered
    // entry's idle time is at or after it (same connection, executed first). See ACK_IF_OWNED.
    const since = this.#serverTime(this.#read);
    await this.#promote();
    const claimed = await this.#claim(max, signal);
    const room = max - claimed.length;
    if (room <= 0 || signal.aborted) return claimed;
    if (this.#readId === undefined) {
      // Number(): a caller's client may map integer replies to strings (its type mapping is
      // carried over to the duplicates).
      const id = await this.#read.sendCommand(['CLIENT', 'ID']);
      if (!Number.isSafeInteger(Number(id))) throw this.#read.outOfStep('CLIENT ID');
      this.#readId = String(id);
    }
    const args = ['XREADGROUP', 'GROUP', this.group, this.consumer, 'COUNT', String(room)];
    // Only block when there is nothing to hand back yet, and never past the next claim pass.
    // Nor past the next delayed job's due time (BLOCK 0 would mean for ever: at least 1 ms).
    const promote = Math.max(1, Math.ceil(this.#promoteAt - performance.now()));
    const block = Math.min(this.#block, this.#claimEvery(), promote);
    if (claimed.length === 0) args.push('BLOCK', String(block));
    args.push('STREAMS', this.stream, '>');
    // The two connections are not ordered with each other: an UNBLOCK may arrive before the
    // read has blocked, so it is repeated every 50 ms until the read returns.
    let repeat: ReturnType<typeof setInterval> | undefined;
    const sendUnblock = () => {
      if (this.#readId === undefined) return;
      this.#cmd.sendCommand(['CLIENT', 'UNBLOCK', this.#readId, 'TIMEOUT']).catch(() => {});
    };
    const unblock = () => {
      sendUnblock();
      repeat = setInterval(sendUnblock, 50);
    };
    signal.addEventListener('abort', unblock, { once: true });
    try {
      const reply = (await this.#withGroup(
        () => this.#read.sendCommand(args, BUFFERS),
        signal,
      )) as Reply;
      const entries = (reply?.[0] as unknown[] | undefined)?.[1] as unknown[] | undefined;
      // Null (nothing new), or one stream's entries: anything else was meant for another command.
      if (reply !== null && !Array.isArray(entries)) throw this.#read.outOfStep('XREADGROUP');
      const read = this.#toMessages(entries ?? [], await since);
      return claimed.length === 0 ? read : claimed.concat(read);
    } finally {
      signal.removeEventListener('abort', unblock);
      clearInterval(repeat);
    }
  }

  ack(message: RedisMessage): Promise<void> {
    // Not async, one promise per message (the `then`), the refused ids looked up in a Set made
    // once per script call.
    const reply = this.#queueAck(message);
    return reply.then((refused) => {
      if (refused !== NONE_REFUSED && refused.has(message.id))
        throw new LeaseLostError(message.id, 'ack');
      if (message.key !== undefined) {
        return this.#withinLease(this.#releaseKey(message), 'ack', message);
      }
    });
  }

  /**
   * The successes of one turn (one-at-a-time handlers that finished together, or a batch): they
   * join the turn's one ack script with a single `then` for them all, instead of one promise
   * chain per message. A message another consumer owns now gets a `LeaseLostError` at its index;
   * a keyed message's ack waits for its key's release, as `ack`'s does (its failure at its index).
   */
  ackMany(messages: readonly RedisMessage[]): Promise<(Error | undefined)[] | undefined> {
    let reply: Promise<ReadonlySet<string>> | undefined;
    /** With more than one script call: each call's reply, and the index of its first message. */
    let parts: { reply: Promise<ReadonlySet<string>>; from: number }[] | undefined;
    for (let i = 0; i < messages.length; i++) {
      const next = this.#queueAck(messages[i]!);
      if (reply === undefined) reply = next;
      else if (next !== (parts?.at(-1)?.reply ?? reply)) {
        parts ??= [{ reply, from: 0 }];
        parts.push({ reply: next, from: i });
      }
    }
    // More than MAX_ACK_BATCH acks in one turn: they went out in several script calls.
    if (parts !== undefined) return this.#ackedInParts(messages, parts);
    return (reply ?? Promise.resolve(NONE_REFUSED)).then((refused) =>
      this.#ackResults(messages, refused),
    );
  }

  /** Adds `message` to the acks of this turn; resolves with the ids its script call refused. */
  #queueAck(message: RedisMessage): Promise<ReadonlySet<string>> {
    let batch = this.#acks;
    if (batch === undefined) {
      batch = this.#acks = new PendingAcks();
      setImmediate(() => this.#flushAcks());
    }
    batch.messages.push(message);
    const reply = batch.reply;
    if (batch.messages.length >= MAX_ACK_BATCH) this.#flushAcks();
    return reply;
  }

  /**
   * `ackMany`'s outcome once its script call answered: undefined when every message was acked
   * (the usual case: no array, no promise beyond the one `then`), else an error at the index of
   * each message refused or whose key could not be released.
   */
  #ackResults(
    messages: readonly RedisMessage[],
    refused: ReadonlySet<string>,
  ): (Error | undefined)[] | undefined | Promise<(Error | undefined)[] | undefined> {
    let out: (Error | undefined)[] | undefined;
    let keyed: Promise<void>[] | undefined;
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]!;
      if (refused !== NONE_REFUSED && refused.has(message.id)) {
        out ??= new Array<Error | undefined>(messages.length).fill(undefined);
        out[i] = new LeaseLostError(message.id, 'ack');
      } else if (message.key !== undefined) {
        keyed ??= [];
        keyed.push(
          this.#withinLease(this.#releaseKey(message), 'ack', message).catch((error: unknown) => {
            out ??= new Array<Error | undefined>(messages.length).fill(undefined);
            out[i] = toError(error);
          }),
        );
      }
    }
    return keyed === undefined ? out : Promise.all(keyed).then(() => out);
  }

  /**
   * `ackMany` whose acks went out in several script calls: a message of a call that failed gets
   * that call's error (not known to be acked: a redelivery at worst); rejects if every call failed.
   */
  async #ackedInParts(
    messages: readonly RedisMessage[],
    parts: { reply: Promise<ReadonlySet<string>>; from: number }[],
  ): Promise<(Error | undefined)[] | undefined> {
    const settled = await Promise.allSettled(parts.map((part) => part.reply));
    if (settled.every((result) => result.status === 'rejected')) throw settled[0]!.reason;
    const out = new Array<Error | undefined>(messages.length).fill(undefined);
    for (let p = 0; p < parts.length; p++) {
      const result = settled[p]!;
      const from = parts[p]!.from;
      const part = messages.slice(from, parts[p + 1]?.from ?? messages.length);
      const errors =
        result.status === 'fulfilled'
          ? await this.#ackResults(part, result.value)
          : part.map(() => toError(result.reason));
      errors?.forEach((error, i) => {
        out[from + i] = error;
      });
    }
    return out.some((error) => error !== undefined) ? out : undefined;
  }

  async retry(message: RedisMessage, delayMs: number): Promise<void> {
    // Idle time lease - delay: the entry becomes claimable (by any consumer) after `delay`.
    const settle = Promise.all([
      this.#claimOwned([message.id], Math.max(0, this.#lease - delayMs)),
      // The first failure's time, for the dead letter's firstFailedAt (NX: the first one stays).
      this.#cmd
        .sendCommand([
          'SET',
          this.#firstFailure(message),
          String(Date.now()),
          'NX',
          'PX',
          String(FIRST_FAILURE_TTL),
        ])
        .catch(() => {}),
    ]);
    const [owned] = await this.#withinLease(settle, 'retry', message);
    if (!isIn(owned, message.id)) throw new LeaseLostError(message.id, 'retry');
  }

  async release(message: RedisMessage): Promise<void> {
    // Claimable at once, and the delivery that never ran is not counted against maxDeliveries.
    const owned = await this.#withinLease(
      this.#claimOwned([message.id], this.#lease, message.deliveryCount - 1),
      'release',
      message,
    );
    if (!isIn(owned, message.id)) throw new LeaseLostError(message.id, 'release');
  }

  /**
   * A settle of `message`, given up (`ERR_SETTLE_TIMEOUT`) when a lease has passed with Redis
   * unreachable (the command connection reconnecting): past the lease the entry may be claimed
   * by any consumer anyway, and a command queued for the outage would otherwise hold a drain or
   * close for all of it. A slow reply on a live connection is waited for (looked at again each
   * lease): it is not a lost one, and the settle may already be applied — a stalled connection
   * is replaced by the link's own deadline. The command is not withdrawn: if Redis comes back
   * in time it still runs (each script judges ownership when it runs).
   */
  #withinLease<T>(
    settle: Promise<T>,
    operation: SettleTimeoutError['operation'],
    message: RedisMessage,
  ): Promise<T> {
    return this.#whileReachable(
      settle,
      () => this.#cmd,
      () => new SettleTimeoutError(operation, `message ${message.id}`, this.#lease),
    );
  }

  /**
   * `work`, looked at each lease: rejected with `timedOut()` at a look that finds the connection
   * it waits on (`waitsOn()`, read at each look) reconnecting, waited for another lease while
   * that connection is up.
   */
  #whileReachable<T>(
    work: Promise<T>,
    waitsOn: () => RedisLink,
    timedOut: () => Error,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout;
      const look = () => {
        if (!waitsOn().reconnecting) timer = setTimeout(look, this.#lease);
        else reject(timedOut());
      };
      timer = setTimeout(look, this.#lease);
      work.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  async heartbeat(message: RedisMessage): Promise<boolean> {
    return isIn(await this.#beats.add(message.id), message.id);
  }

  deadLetter(message: RedisMessage, error: Error): Promise<void> {
    return this.#withinLease(this.#deadLetter(message, error), 'dead-letter', message);
  }

  async #deadLetter(message: RedisMessage, error: Error): Promise<void> {
    const code = errorCode(error) ?? errorName(error);
    const firstFailed = await this.#cmd
      .sendCommand(['GET', this.#firstFailure(message)])
      .catch(() => null);
    // Prefixed: the letter also carries every field of the original entry, and ours must not
    // shadow (or be shadowed by) a field of the producer's.
    const letter = [
      'sluice-id',
      message.id,
      'sluice-stream',
      this.stream,
      'sluice-group',
      this.group,
      'sluice-deliveries',
      String(message.deliveryCount),
      'sluice-error',
      errorText(errorMessage(error)),
      'sluice-code',
      errorText(code),
      'sluice-first-failed-at',
      firstFailed == null ? String(Date.now()) : String(firstFailed),
    ];
    // The payload as delivered, written only if the entry itself is gone by now (none when the
    // entry had no payload field: an empty one would be made up).
    const fallback =
      message.malformed === undefined ? [this.#field, Buffer.from(message.body)] : [];
    // One script: the entry leaves the pending list only if its dead letter was written, and
    // only while this consumer still owns it.
    const done = await evalScript(
      this.#cmd,
      DEAD_LETTER,
      [this.stream, this.deadLetterStream],
      [
        this.group,
        message.id,
        this.#deleteOnAck ? '1' : '0',
        this.consumer,
        String(fallback.length),
        ...fallback,
        ...letter,
      ],
    );
    const outcome = Number(done); // see CLIENT ID in #fetch: a type mapping may give strings
    if (outcome !== 0 && outcome !== 1) throw this.#cmd.outOfStep('dead-letter script');
    if (outcome !== 1) throw new LeaseLostError(message.id, 'dead-letter');
    await this.#cmd.sendCommand(['DEL', this.#firstFailure(message)]).catch(() => {});
    await this.#releaseKey(message);
  }

  #firstFailure(message: RedisMessage): string {
    return firstFailureKey(this.deadLetterStream, message.id);
  }

  /** A keyed job is done: its key may be enqueued again (see `enqueue`). */
  async #releaseKey(message: RedisMessage): Promise<void> {
    if (message.key === undefined) return;
    await evalScript(this.#cmd, RELEASE_KEY, [this.#delay.keyPrefix + message.key], [message.id]);
  }

  /**
   * Moves due delayed jobs into the stream when one may be due (or `fetchWait` passed since the
   * last look: another producer may have added an earlier one), and learns when the next is due.
   */
  async #promote(): Promise<void> {
    if (performance.now() < this.#promoteAt) return;
    const reply = await evalScript(
      this.#cmd,
      PROMOTE,
      [this.stream, this.#delay.delayed, this.#delay.data],
      [String(PROMOTE_BATCH), this.#delay.keyPrefix],
    );
    // An integer (ms until the next due job, or -1): anything else would make the BLOCK NaN.
    const next =
      typeof reply === 'number' || typeof reply === 'string' ? Number(reply) : Number.NaN;
    if (!Number.isSafeInteger(next)) throw this.#cmd.outOfStep('PROMOTE');
    this.#promoteAt = performance.now() + (next < 0 ? this.#block : Math.min(next, this.#block));
  }

  /**
   * Closes the connections, after removing this consumer from the group when it owns no
   * pending entry (a clean stop), so that rolling deploys do not grow `XINFO CONSUMERS` for
   * ever. A consumer with pending entries (released at drain, or waiting for a retry) stays:
   * deleting it would drop them; whoever claims them, or the next source's reaping of empty
   * idle consumers, takes care of it.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#watchdog);
    if (this.#cmd.client.isReady) {
      await withinMs(
        evalScript(this.#cmd, DELETE_IF_EMPTY, [this.stream], [this.group, this.consumer]),
        CLOSE_CLEANUP_MS,
      ).catch(() => {});
    }
    await Promise.all([this.#read.close(), this.#cmd.close()]);
  }

  /**
   * Sends the acks collected so far (at the next `setImmediate`, at a fetch, or when 1000 are
   * waiting): on the reading connection while no fetch runs, so they reach Redis ahead of the
   * next read (`orderedAcks`); on the command connection while one does (the read may block).
   */
  #flushAcks(): void {
    const batch = this.#acks;
    if (batch === undefined) return;
    this.#acks = undefined;
    this.#ackOnce(batch.messages, this.#fetching ? this.#cmd : this.#read).then(
      batch.resolve,
      batch.reject,
    );
  }

  /**
   * XACK of every ack issued in one turn, in one script call (owner-checked past the lease since
   * the oldest message's fetch: see `ACK_IF_OWNED`); resolves with the set of ids refused because
   * another consumer owns them now. The script is idempotent, so an ack lost with a dropped
   * connection is sent once more: node-redis queues it until it has reconnected. That spares a
   * duplicate run of a handler that already succeeded; the resent script judges the window again
   * when it runs. Bounded by `lease`: after that the entry may be reclaimed anyway.
   */
  async #ackOnce(messages: RedisMessage[], via: RedisLink): Promise<ReadonlySet<string>> {
    const reply = await this.#ackScript(messages, via);
    const refused = reply.length === 0 ? NONE_REFUSED : new Set(reply.map(String));
    this.#forgetFirstFailures(messages, refused);
    return refused;
  }

  /**
   * A redelivered message that was acked will not be dead-lettered: the time of its first failure
   * (kept for its dead letter, `retry`) goes, in one `DEL` for the flush — else every message that
   * failed once and then succeeded left a key for `FIRST_FAILURE_TTL`. First deliveries, the usual
   * case, have none and send nothing. Best effort: the key expires anyway.
   */
  #forgetFirstFailures(messages: RedisMessage[], refused: ReadonlySet<string>): void {
    const keys: string[] = [];
    for (const message of messages) {
      if (message.deliveryCount > 1 && !refused.has(message.id)) {
        keys.push(this.#firstFailure(message));
      }
    }
    if (keys.length > 0) this.#cmd.sendCommand(['DEL', ...keys]).catch(() => {});
  }

  /** The ack script's reply (the refused ids), on `via`, then once more on the command connection. */
  async #ackScript(messages: RedisMessage[], via: RedisLink): Promise<unknown[]> {
    // The ids, and the oldest fetch's server time among them: the script acks without the
    // owner check while the server's clock is less than the lease past it (0: always checked).
    const args = [this.group, this.consumer, this.#deleteOnAck ? '1' : '0', '', this.#ackWindow];
    let since = Number.POSITIVE_INFINITY;
    for (const message of messages) {
      args.push(message.id);
      since = Math.min(since, HeldEntry.since(message));
    }
    args[3] = String(since);
    // The refused ids: an array (any other reply was meant for another command).
    const send = async (link: RedisLink) => {
      const reply = await evalScript(link, ACK_IF_OWNED, [this.stream], args, this.#cmd);
      if (!Array.isArray(reply)) throw link.outOfStep('ack script');
      return reply as unknown[];
    };
    // A resend, or a first try on a connection that is reconnecting (it waits in the queue for
    // the outage, and would hold a consumer's close for it), gives up after the lease: past it
    // the entry may be claimed anyway. A first try on a live connection is not cut short: a
    // slow reply is not a lost one, and the ack may already be applied. It ends with that
    // connection if it fails, even in the turn the script was sent, before node-redis wrote it
    // (see RedisLink: such a command is withdrawn, not kept for the reconnect).
    const withinLease = (attempt: Promise<unknown[]>) =>
      rejectAfter(
        attempt,
        this.#lease,
        () => new SettleTimeoutError('ack', `${messages.length} message(s)`, this.#lease),
      );
    if (via.reconnecting) return withinLease(send(via).catch(() => send(this.#cmd)));
    try {
      return await send(via);
    } catch {
      return withinLease(send(this.#cmd));
    }
  }

  /** How often pending entries are scanned (ms): often enough for retry delays to be honoured. */
  #claimEvery(): number {
    return Math.max(10, Math.min(1000, Math.floor(this.#lease / 4)));
  }

  /**
   * `TIME` on `client` as ms, or 0 when it fails (then the entries it dates are always
   * owner-checked). Sent at once, awaited when the entries are built.
   */
  #serverTime(link: RedisLink): Promise<number> {
    return link.sendCommand(['TIME']).then(
      (reply) => {
        if (Array.isArray(reply) && reply.length === 2) {
          const ms = Number(reply[0]) * 1000 + Math.floor(Number(reply[1]) / 1000);
          if (Number.isSafeInteger(ms)) return ms;
        }
        // Not a TIME reply: the connection is out of step (replaced now); never rejects, as
        // it may not be awaited. 0 = the entries it dates are always owner-checked.
        link.outOfStep('TIME');
        return 0;
      },
      () => 0,
    );
  }

  /** XAUTOCLAIM looped until the cursor wraps to 0-0 (or `max` entries are claimed). */
  async #claim(max: number, signal: AbortSignal): Promise<RedisMessage[]> {
    const now = Date.now();
    if (this.#claimCursor === '0-0' && now - this.#lastClaim < this.#claimEvery()) return [];
    if (this.#claimCursor === '0-0') this.#lastClaim = now;
    const entries: unknown[] = [];
    // One XAUTOCLAIM scans at most 10 x COUNT pending entries; with few free slots and a long
    // pending list, a full pass could take many calls. At most 8 per fetch: the cursor is kept,
    // so the next fetches continue the same pass until it wraps to 0-0.
    let calls = 0;
    do {
      calls++;
      const reply = (await this.#withGroup(
        () =>
          this.#read.sendCommand(
            [
              'XAUTOCLAIM',
              this.stream,
              this.group,
              this.consumer,
              String(this.#lease),
              this.#claimCursor,
              'COUNT',
              String(max - entries.length),
            ],
            BUFFERS,
          ),
        signal,
      )) as [Buffer, unknown[], unknown[]?];
      if (!Array.isArray(reply) || !Array.isArray(reply[1]) || !CURSOR.test(String(reply[0])))
        throw this.#read.outOfStep('XAUTOCLAIM');
      this.#claimCursor = String(reply[0]);
      // Redis < 7 reports entries deleted by XDEL as nil; Redis 7 lists them in reply[2] and drops them from the PEL.
      for (const entry of reply[1])
        if (Array.isArray(entry) && entry[1] !== null) entries.push(entry);
    } while (this.#claimCursor !== '0-0' && entries.length < max && calls < 8);
    if (entries.length === 0) return [];
    // Since 0: a claimed entry's acks are always owner-checked. This consumer may still hold an
    // earlier delivery of it (its loop stalled past the lease, then its own claim took it back);
    // once one of the two is retried or released, another consumer may claim the entry while the
    // other delivery's ack would still look inside its window. Claims are rare (crashes, retries).
    return this.#toMessages(entries, 0, await this.#deliveryCounts(entries));
  }

  /** Delivery counts of claimed entries, from the pending entries list (one pipelined XPENDING each). */
  async #deliveryCounts(entries: unknown[]): Promise<Map<string, number>> {
    const ids = entries.map((e) => String((e as unknown[])[0]));
    const replies = await Promise.all(
      ids.map((id) => this.#read.sendCommand(['XPENDING', this.stream, this.group, id, id, '1'])),
    );
    const counts = new Map<string, number>();
    for (const reply of replies) {
      if (!Array.isArray(reply)) throw this.#read.outOfStep('XPENDING');
      const row = (reply as unknown as unknown[][])[0];
      if (row) counts.set(String(row[0]), Number(row[3]));
    }
    return counts;
  }

  #toMessages(entries: unknown[], since: number, counts?: Map<string, number>): RedisMessage[] {
    const messages: RedisMessage[] = [];
    for (const entry of entries) {
      const rawId = (entry as [Buffer])[0];
      const fields = (entry as [Buffer, Buffer[] | null])[1];
      const id = rawId.toString('latin1');
      let body: Uint8Array | undefined;
      let key: string | undefined;
      let headers: [string, string][] | undefined;
      for (let i = 0; fields && i < fields.length; i += 2) {
        const name = fields[i]!.toString();
        if (name === this.#field) body = fields[i + 1]!;
        else if (name === 'sluice-key') key = fields[i + 1]!.toString();
        else if (!name.startsWith('sluice-')) {
          headers ??= [];
          headers.push([name, fields[i + 1]!.toString()]);
        }
      }
      // Optional fields only when present (absent, not undefined), without a spread per message.
      const message: { -readonly [K in keyof RedisMessage]: RedisMessage[K] } = new HeldEntry(
        id,
        body ?? EMPTY,
        counts?.get(id) ?? 1,
        this.stream,
        since,
      );
      if (key !== undefined) message.key = key;
      if (headers !== undefined) message.headers = Object.fromEntries(headers);
      if (body === undefined) {
        // XADD by another producer with other field names: say so, not "not JSON".
        Object.assign(message, { malformed: `stream entry has no "${this.#field}" field` });
      }
      messages.push(message);
    }
    return messages;
  }

  /** XCLAIM (JUSTID) the ids still owned by this consumer; returns those ids. */
  async #claimOwned(ids: string[], idle: number, retryCount = -1): Promise<unknown[]> {
    const owned = await evalScript(
      this.#cmd,
      CLAIM_IF_OWNED,
      [this.stream],
      [this.group, this.consumer, String(idle), String(retryCount), ...ids],
    );
    if (!Array.isArray(owned)) throw this.#cmd.outOfStep('claim script');
    return owned;
  }

  /** Runs `op`; if the group vanished (e.g. Redis restarted without persistence), re-creates it once. */
  async #withGroup<R>(op: () => Promise<R>, signal: AbortSignal): Promise<R> {
    try {
      return await op();
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOGROUP')) throw error;
      // Not once the fetch is aborted: its abort looked at the connections then (see
      // #dropReconnecting), and a command sent now on one that has failed since would wait in
      // its queue for the outage, holding the consumer's close. The group is made by the next
      // fetch, or the next source.
      if (signal.aborted) throw error;
      await createGroup(this.#cmd, this.stream, this.group);
      return op();
    }
  }
}

const EMPTY = new Uint8Array(0);

/** An `XAUTOCLAIM` cursor (an entry id). */
const CURSOR = /^\d+-\d+$/;

/** Added to `fetchWait + connectTimeout` for a connection's stuck deadline (event-loop stalls). */
const STUCK_MARGIN_MS = 2000;

/** Most acks sent in one script call. */
const MAX_ACK_BATCH = 1000;

/**
 * The acks of one flush and the promise of their script's reply: one promise per batch (each
 * `ack` adds one `then` to it), not a promise and its resolvers per message.
 */
class PendingAcks {
  readonly messages: RedisMessage[] = [];
  readonly reply: Promise<ReadonlySet<string>>;
  resolve!: (refused: ReadonlySet<string>) => void;
  reject!: (error: unknown) => void;

  constructor() {
    this.reply = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

/**
 * A message as the source hands it out. The server time its fetch started (see `ACK_IF_OWNED`)
 * is a private field, not a WeakMap entry keyed by the message (an ephemeron-table insert per
 * message), and not a visible property.
 */
class HeldEntry implements RedisMessage {
  readonly id: string;
  readonly body: Uint8Array;
  readonly deliveryCount: number;
  readonly stream: string;
  // Declared only: set when present, absent (not undefined) otherwise.
  declare readonly key?: string;
  declare readonly headers?: Readonly<Record<string, string>>;
  declare readonly malformed?: string;
  /**
   * Server time (ms) read before the `XREADGROUP` that delivered it; 0 = always owner-checked (a
   * claimed entry, or unknown). Never moved by a heartbeat: a first delivery's window then ends
   * before any other delivery of its entry can exist (a claim needs `lease` of idle time counted
   * from a moment at or after `since`), which is what makes skipping the check safe.
   */
  #since: number;

  constructor(id: string, body: Uint8Array, deliveryCount: number, stream: string, since: number) {
    this.id = id;
    this.body = body;
    this.deliveryCount = deliveryCount;
    this.stream = stream;
    this.#since = since;
  }

  /** The server time before `message`'s delivery; 0 for a message this source did not build. */
  static since(message: RedisMessage): number {
    return message instanceof HeldEntry ? message.#since : 0;
  }
}

/** An ack script's reply when it refused no id (the usual case): shared, never built per batch. */
const NONE_REFUSED: ReadonlySet<string> = new Set();

/** Most delayed jobs moved into the stream per script run. */
const PROMOTE_BATCH = 100;

/** Longest wait (ms) for the best-effort group clean-ups (close, start). */
const CLOSE_CLEANUP_MS = 2000;

/**
 * Consumers with nothing pending that were not seen for this long (ms) are deleted by each new
 * source (the names crashed processes leave in the group). @see REAP_EMPTY_CONSUMERS
 */
export const REAP_IDLE_MS = 60 * 60 * 1000;

/** True when a script's reply (an array of ids) holds `id`. */
function isIn(reply: unknown, id: string): boolean {
  return Array.isArray(reply) && reply.some((x) => String(x) === id);
}

const SHAS = new Map<string, string>();

/** A client, or a {@link RedisLink} (which sends on its current client). */
export interface CommandSender {
  sendCommand(args: (string | Buffer)[], options?: typeof BUFFERS): Promise<unknown>;
}

/**
 * `EVALSHA`, falling back to `EVAL` the first time a server does not know the script (after a
 * restart or `SCRIPT FLUSH`): the ack path runs a script per batch, and sending its text each
 * time would cost more than the acks.
 */
export async function evalScript(
  client: CommandSender,
  script: string,
  keys: string[],
  args: (string | Buffer)[],
  fallback: CommandSender = client,
): Promise<unknown> {
  let sha = SHAS.get(script);
  if (sha === undefined) {
    sha = createHash('sha1').update(script).digest('hex');
    SHAS.set(script, sha);
  }
  const tail = [String(keys.length), ...keys, ...args];
  try {
    return await client.sendCommand(['EVALSHA', sha, ...tail]);
  } catch (error) {
    if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
    // On `fallback`: the reading connection may be blocked in XREADGROUP by now.
    return fallback.sendCommand(['EVAL', script, ...tail]);
  }
}

/**
 * Loads the scripts, so that the first `EVALSHA` on the reading connection finds them (an `EVAL`
 * fallback would reach Redis after the next read, out of order with it).
 */
export async function loadScripts(client: AnyRedisClient): Promise<void> {
  for (const script of [ACK_IF_OWNED, CLAIM_IF_OWNED, DEAD_LETTER, DELETE_IF_EMPTY, PROMOTE]) {
    await client.sendCommand(['SCRIPT', 'LOAD', script]);
  }
}

/** Deletes the group's consumers with nothing pending idle for `idleMs` (best effort). */
export async function reapEmptyConsumers(
  client: AnyRedisClient,
  stream: string,
  group: string,
  idleMs = REAP_IDLE_MS,
): Promise<void> {
  await withinMs(
    evalScript(client, REAP_EMPTY_CONSUMERS, [stream], [group, String(idleMs)]),
    CLOSE_CLEANUP_MS,
  ).catch(() => {});
}

function withinMs<R>(work: Promise<R>, ms: number): Promise<R> {
  return rejectAfter(work, ms, () => new Error(`no reply within ${ms} ms`));
}

export async function createGroup(
  client: CommandSender,
  stream: string,
  group: string,
): Promise<void> {
  try {
    await client.sendCommand(['XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM']);
  } catch (error) {
    if (!String((error as Error).message).startsWith('BUSYGROUP')) throw error;
  }
}

export async function closeClient(client: AnyRedisClient): Promise<void> {
  try {
    if (client.isOpen) await client.close();
  } catch {
    client.destroy();
  }
}

/**
 * The reading connection's client name. CLIENT SETNAME takes only the characters `!` to `~`: any
 * other (a space, a newline, any non-ASCII letter of a stream named `tâches`) becomes `_`, one
 * per code point.
 */
export function readerName(stream: string, group: string): string {
  return `sluice:${stream}:${group}`.replace(/[^!-~]/gu, '_');
}

/**
 * A first connection's failure, coded: Redis's reply refusing the login (`WRONGPASS`, `NOAUTH`,
 * `ERR AUTH …`, an uncoded `ErrorReply` of node-redis) as `ConnectConfigError`
 * (`ERR_CONNECT_CONFIG`, the reply as `cause`) naming what to check; a socket or DNS failure as
 * `NotConnectedError` (see {@link unreachable}); anything else as it is.
 */
export function loginRefusal(error: unknown, where: string): unknown {
  const failed = unreachable(error, 'Redis', where);
  if (failed !== error) return failed;
  if (!(error instanceof Error) || (error as { code?: unknown }).code !== undefined) return error;
  if (
    !/^(WRONGPASS|NOAUTH|ERR AUTH|ERR invalid password|ERR Client sent AUTH)/.test(error.message)
  ) {
    return error;
  }
  return new ConnectConfigError(
    'Redis',
    `${where} refused the login (${error.message}): check the user and password in url (or the client's)`,
    { cause: error },
  );
}
