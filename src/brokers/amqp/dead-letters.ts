/**
 * {@link DeadLetters} over a RabbitMQ dead-letter queue (`<queue>.dead` by default), as the
 * AMQP source writes it: the message republished with `x-sluice-*` headers (error, code,
 * deliveries, first and last failure time), or dead-lettered by RabbitMQ itself (`x-death`).
 *
 * A queue cannot be read without taking its messages, so every operation is a scan: `basic.get`
 * (unacknowledged) message by message, then each message is acked (replayed or purged) or,
 * when it is not selected, handed back with `basic.nack(requeue)` once the scan is over —
 * RabbitMQ puts a requeued message back at its place in a classic queue. Limits, stated:
 * - while a scan runs, the letters it holds are invisible to anyone else reading the dead
 *   queue; run one operation at a time per dead queue (two scans would each see a part);
 * - `list` reads up to `maxScan` letters (default 10,000) into memory and sorts them newest
 *   failure first; past `maxScan`, it pages through the oldest `maxScan` only. Each page is a
 *   new scan; the cursor is the last letter's failure time and id (when that letter is gone by
 *   the next page, the page starts at the letters that failed before it).
 * - a letter's `id` is its `x-sluice-publish-id` header (unique per republish); for a letter
 *   RabbitMQ dead-lettered on its own, the message id or a hash of body and `x-death`.
 * - replay: copies are published to the work queue (mandatory, publisher-confirmed) before the
 *   letters are acked, 100 at a time — at-least-once: a replay killed in between leaves the
 *   letters in the dead queue (the broker requeues what a dead connection held) and their
 *   copies queued. A work queue deleted meanwhile fails the replay with `UnroutableError`
 *   (`ERR_UNROUTABLE`), the batch's letters handed back to the dead queue; so does a batch the
 *   broker refuses (nacks: the work queue is full with `x-overflow: reject-publish`), and one
 *   it does not confirm within 5000 ms fails with `PublishTimeoutError` (`ERR_PUBLISH_TIMEOUT`;
 *   copies it did store stay queued). The copy drops the
 *   `x-sluice-*`, `x-death` and `x-delivery-count` headers, so the source counts its deliveries
 *   from 1 again; its other headers and properties are kept.
 * - purge: `'all'` is one `queue.purge` (atomic); ids and filters ack the matching letters.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { type ChannelModel, type ConfirmChannel, connect, type GetMessage } from 'amqplib';
import { UnroutableError } from '../../errors.js';
import { brokerName, numberAtLeast } from '../../internal/options.js';
import { AMQP_URL, checkUrl, connectWithin, maskUserinfo } from '../connect-deadline.js';
import {
  BATCH,
  badCursor,
  connectTimeoutOption,
  type DeadLetter,
  type DeadLetterListOptions,
  type DeadLetterPage,
  type DeadLetterSelection,
  type DeadLetters,
  dateFromMs,
  listOptions,
  type Selection,
  selection,
} from '../dead-letters.js';
import { confirmWithin, PUBLISH_TIMEOUT } from './confirm.js';
import { handshakeRefusal } from './link.js';

export type {
  DeadLetter,
  DeadLetterFilter,
  DeadLetterListOptions,
  DeadLetterPage,
  DeadLetterSelection,
  DeadLetters,
} from '../dead-letters.js';

/** Options of {@link amqpDeadLetters}. */
export interface AmqpDeadLettersOptions {
  /** Broker URL. @default 'amqp://guest:guest@127.0.0.1:5672' */
  url?: string;
  /** The work queue replays go to (it must exist). */
  queue: string;
  /** The dead-letter queue, as given to the source. @default `${queue}.dead` */
  deadLetterQueue?: string;
  /** Most letters one `list` reads (see the module doc). @default 10000 */
  maxScan?: number;
  /** Longest wait for the connection, ms. @default 10000 */
  connectTimeout?: number;
}

/** Headers the source and RabbitMQ add on the way to the dead queue: not carried by a replay. */
const DEAD_HEADERS = /^x-(sluice-|death$|first-death-|last-death-|delivery-count$)/;
const CURSOR = /^(\d+):(.+)$/;

/**
 * Opens the dead letters of a RabbitMQ queue (see the module doc for the limits of a queue).
 *
 * @throws TypeError/RangeError `ERR_INVALID_OPTION` for a bad option; the first connection's
 *   errors as `amqpSource`'s (`ERR_NOT_CONNECTED`, `ERR_CONNECT_CONFIG`, `ERR_CONNECT_TIMEOUT`);
 *   the client's error when either queue does not exist.
 * @example
 * ```ts
 * const dead = await amqpDeadLetters({ queue: 'jobs' });
 * await dead.purge({ failedBefore: new Date(Date.now() - 7 * 86_400_000) });
 * await dead.close();
 * ```
 */
export async function amqpDeadLetters(options: AmqpDeadLettersOptions): Promise<DeadLetters> {
  brokerName('queue', options?.queue);
  if (options.deadLetterQueue != null) brokerName('deadLetterQueue', options.deadLetterQueue);
  const maxScan = numberAtLeast('maxScan', options.maxScan, 1, { integer: true }) ?? 10_000;
  const timeout = connectTimeoutOption(options.connectTimeout);
  const url = options.url ?? 'amqp://guest:guest@127.0.0.1:5672';
  checkUrl(url, AMQP_URL, 'an amqp:// or amqps:// URL');
  const conn = await connectWithin(
    connect(url, { timeout }),
    timeout,
    `RabbitMQ at ${maskUserinfo(url)}`,
    () => {},
  ).catch((error: unknown) => {
    throw handshakeRefusal(error, url);
  });
  conn.on('error', () => {});
  try {
    const ch = await conn.createConfirmChannel();
    const dead = options.deadLetterQueue ?? `${options.queue}.dead`;
    // Both must exist: RabbitMQ drops a message published to a missing queue.
    await ch.checkQueue(dead);
    await ch.checkQueue(options.queue);
    return new AmqpDeadLetters(conn, ch, options.queue, dead, maxScan);
  } catch (error) {
    await conn.close().catch(() => {});
    throw error;
  }
}

interface Held {
  msg: GetMessage;
  letter: DeadLetter;
}

class AmqpDeadLetters implements DeadLetters {
  readonly #conn: ChannelModel;
  readonly #ch: ConfirmChannel;
  readonly #queue: string;
  readonly #dead: string;
  readonly #maxScan: number;
  #returned = 0;

  constructor(conn: ChannelModel, ch: ConfirmChannel, queue: string, dead: string, max: number) {
    this.#conn = conn;
    this.#ch = ch;
    this.#queue = queue;
    this.#dead = dead;
    this.#maxScan = max;
    ch.on('return', () => {
      this.#returned++;
    });
  }

  async list(options?: DeadLetterListOptions): Promise<DeadLetterPage> {
    const { limit, cursor } = listOptions(options);
    const at = cursor === undefined ? undefined : CURSOR.exec(cursor);
    if (cursor !== undefined && !at) badCursor(cursor);
    const all: DeadLetter[] = [];
    await this.#scan(this.#maxScan, async (held) => {
      all.push(...held.map((h) => h.letter));
      return held; // all handed back
    });
    // Newest failure first; within one millisecond, later in the queue first (a stable sort
    // of the reversed queue order).
    all.reverse().sort((a, b) => b.lastFailedAt.getTime() - a.lastFailedAt.getTime());
    const after = at ? afterCursor(all, Number(at[1]), at[2]!) : all;
    const page = after.slice(0, limit);
    const last = page.at(-1);
    return {
      letters: page,
      next: after.length > limit && last ? `${last.lastFailedAt.getTime()}:${last.id}` : undefined,
    };
  }

  async replay(which: DeadLetterSelection): Promise<number> {
    return this.#settle(selection(which), async (chosen) => {
      this.#returned = 0;
      for (const { msg } of chosen) {
        const { properties: p } = msg;
        const headers = Object.fromEntries(
          Object.entries(p.headers ?? {}).filter(([key]) => !DEAD_HEADERS.test(key)),
        );
        this.#ch.sendToQueue(this.#queue, msg.content, {
          headers,
          persistent: true,
          mandatory: true,
          contentType: p.contentType,
          contentEncoding: p.contentEncoding,
          messageId: p.messageId,
          correlationId: p.correlationId,
          type: p.type,
        });
      }
      await confirmWithin(
        () => this.#ch.waitForConfirms(),
        this.#queue,
        PUBLISH_TIMEOUT,
        `; the letters stay in ${JSON.stringify(this.#dead)}`,
      );
      // RabbitMQ confirms a mandatory message it could not route after returning it.
      if (this.#returned > 0) {
        throw new UnroutableError(
          `RabbitMQ routed ${this.#returned} replayed letter(s) to no queue: the work queue ` +
            `${JSON.stringify(this.#queue)} is gone; the letters stay in ${JSON.stringify(this.#dead)}`,
        );
      }
    });
  }

  async purge(which: DeadLetterSelection): Promise<number> {
    const chosen = selection(which);
    if (chosen.kind === 'all') return (await this.#ch.purgeQueue(this.#dead)).messageCount;
    return this.#settle(chosen, async () => {});
  }

  async close(): Promise<void> {
    await this.#conn.close().catch(() => {});
  }

  /**
   * Scans the whole dead queue; the selected letters go to `act` in batches and are acked once
   * it resolved. The others, and a batch whose `act` failed, are requeued. Returns how many
   * were acked.
   */
  async #settle(which: Selection, act: (chosen: Held[]) => Promise<void>): Promise<number> {
    const wanted = which.kind === 'ids' ? new Set(which.ids) : undefined;
    let done = 0;
    await this.#scan(
      Number.POSITIVE_INFINITY,
      async (batch) => {
        const chosen = batch.filter(({ letter }) => {
          if (wanted) return wanted.delete(letter.id);
          return which.kind === 'all' || (which.kind === 'filter' && which.test(letter));
        });
        if (chosen.length > 0) {
          await act(chosen);
          for (const { msg } of chosen) this.#ch.ack(msg);
          done += chosen.length;
        }
        return batch.filter((h) => !chosen.includes(h));
      },
      () => wanted !== undefined && wanted.size === 0,
    );
    return done;
  }

  /**
   * Gets up to `max` letters, unacknowledged, in batches of {@link BATCH}; `visit` returns the
   * ones to keep (requeued at the end, together, so none is seen twice). On a failure everything
   * still held is requeued before the error is thrown.
   */
  async #scan(
    max: number,
    visit: (batch: Held[]) => Promise<Held[]>,
    enough: () => boolean = () => false,
  ): Promise<void> {
    const kept: Held[] = [];
    let seen = 0;
    let batch: Held[] = [];
    try {
      for (;;) {
        const msg =
          seen < max && !enough() ? await this.#ch.get(this.#dead, { noAck: false }) : false;
        if (msg) {
          seen++;
          batch.push({ msg, letter: toLetter(msg) });
        }
        if (batch.length === BATCH || (!msg && batch.length > 0)) {
          const current = batch;
          batch = [];
          try {
            kept.push(...(await visit(current)));
          } catch (error) {
            kept.push(...current);
            throw error;
          }
        }
        if (!msg) return;
      }
    } finally {
      // Requeued in reverse: each goes back to its place, ahead of the ones after it.
      for (const { msg } of [...kept, ...batch].reverse()) this.#ch.nack(msg, false, true);
    }
  }
}

/**
 * The letters after the cursor's letter; if that one is gone (replayed, purged), the letters
 * that failed before its time.
 */
function afterCursor(sorted: DeadLetter[], ms: number, id: string): DeadLetter[] {
  const i = sorted.findIndex((l) => l.id === id && l.lastFailedAt.getTime() === ms);
  return i >= 0 ? sorted.slice(i + 1) : sorted.filter((l) => l.lastFailedAt.getTime() < ms);
}

function toLetter(msg: GetMessage): DeadLetter {
  const p = msg.properties;
  const h = p.headers ?? {};
  const text = (key: string) => (h[key] === undefined ? undefined : String(h[key]));
  // RabbitMQ's own dead-lettering (a reject, an expiry) records why in x-death.
  const death = Array.isArray(h['x-death'])
    ? (h['x-death'][0] as unknown as Record<string, unknown>)
    : undefined;
  const id =
    text('x-sluice-publish-id') ??
    (typeof p.messageId === 'string' && p.messageId !== '' ? p.messageId : undefined) ??
    createHash('sha1')
      .update(msg.content)
      .update(JSON.stringify(h['x-death'] ?? null))
      .digest('hex')
      .slice(0, 20);
  // amqplib decodes an AMQP timestamp (seconds) as { '!': 'timestamp', value }.
  const time = death?.time as number | { value?: unknown } | undefined;
  const seconds = typeof time === 'object' ? time.value : time;
  const deathTime = typeof seconds === 'number' ? seconds * 1000 : undefined;
  return {
    id,
    messageId: typeof p.messageId === 'string' ? p.messageId : undefined,
    body: msg.content,
    error:
      text('x-sluice-error') ?? (death ? `dead-lettered by RabbitMQ: ${String(death.reason)}` : ''),
    code: text('x-sluice-error-code') ?? text('x-sluice-error-name'),
    attempts: Number(h['x-sluice-deliveries'] ?? death?.count ?? 0),
    firstFailedAt: dateFromMs(h['x-sluice-first-failed-at']),
    lastFailedAt:
      dateFromMs(h['x-sluice-failed-at']) ??
      dateFromMs(deathTime) ??
      dateFromMs(typeof p.timestamp === 'number' ? p.timestamp * 1000 : undefined) ??
      new Date(0),
  };
}
