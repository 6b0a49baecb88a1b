/**
 * {@link DeadLetters} over a NATS dead-letter stream (`<stream>_DEAD` by default), as the NATS
 * source writes it: the body, with `Sluice-Source`, `Sluice-Deliveries` and `Sluice-Error*`
 * headers.
 *
 * - list: walks the dead stream's sequence numbers downwards from the cursor (a sequence,
 *   exclusive), asking for up to 32 messages at once (`STREAM.MSG.GET`); deleted sequences
 *   (replayed or purged letters) are skipped, so a page over a stream with many gaps costs one
 *   request per gap. `lastFailedAt` is the letter's stream time. `firstFailedAt` is always
 *   `undefined`: a JetStream retry is a `-NAK` with a delay, and the server keeps nothing per
 *   message besides its delivery count, so the first failure's time is not recorded anywhere.
 * - replay: for each letter, publish the body to the work subject and wait for the PubAck, then
 *   delete the letter (`STREAM.MSG.DELETE`) — at-least-once: a replay killed between the two
 *   leaves the letter dead and its copy queued. The copy carries `Nats-Msg-Id:
 *   sluice-replay:<dead stream>:<seq>`, so replaying that letter again within the work stream's
 *   duplicate window (2 min by default) stores no second copy. The copy is a new stream message:
 *   the server's delivery count starts at 1. The producer's headers the letter kept (the
 *   source copies them after its own, where they fit under `max_payload`) go on the copy. A
 *   PubAck not received within 5 s fails the replay with `PublishTimeoutError`
 *   (`ERR_PUBLISH_TIMEOUT`); that batch's letters stay (a copy that was stored is not stored
 *   again by a replay within the duplicate window). A work subject no stream captures any
 *   more (no responders) fails it with `UnroutableError` (`ERR_UNROUTABLE`), the letters kept.
 * - purge: `'all'` is one stream purge (atomic); ids and filters delete letter by letter.
 *
 * @module
 */

import type { StoredMsg } from '@nats-io/jetstream';
import { type JetStreamClient, type JetStreamManager, jetstream } from '@nats-io/jetstream';
import { type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import { brokerName, invalidOption } from '../../internal/options.js';
import {
  badCursor,
  connectTimeoutOption,
  type DeadLetter,
  type DeadLetterListOptions,
  type DeadLetterPage,
  type DeadLetterSelection,
  type DeadLetters,
  eachSelected,
  listOptions,
  type PagedStore,
  selection,
} from '../dead-letters.js';
import { publishError } from './acks.js';
import { connectNats, jetstreamManagerOf } from './connect.js';
import { filterSubject } from './subject.js';

export type {
  DeadLetter,
  DeadLetterFilter,
  DeadLetterListOptions,
  DeadLetterPage,
  DeadLetterSelection,
  DeadLetters,
} from '../dead-letters.js';

/** Options of {@link natsDeadLetters}. */
export interface NatsDeadLettersOptions {
  /** An open connection to use (left open by `close()`). Default: connect to `servers`. */
  connection?: NatsConnection;
  /** Where to connect when no `connection` is given. @default '127.0.0.1:4222' */
  servers?: string | string[];
  /** Longest wait for the first connection, ms (as for the source). @default 10000 */
  connectTimeout?: number;
  /** The work stream's name, as given to the source. */
  stream: string;
  /** The subject replays are published to, as given to the source. @default `${stream}.work` */
  subject?: string;
  /** The dead-letter stream, as given to the source. @default `${stream}_DEAD` */
  deadLetterStream?: string;
}

/** Sequences asked for at once while walking the dead stream downwards. */
const WINDOW = 32;
const SEQ = /^\d{1,16}$/;

/**
 * True for a stream sequence a letter can have: sequences start at 1, and the server answers a
 * `MSG.GET` of 0 with an uncoded "bad request" (JetStream API error).
 */
const letterSeq = (id: string): boolean => SEQ.test(id) && Number(id) >= 1;
/** Longest wait for a replayed copy's PubAck (nats.js's default, stated), ms. */
const REPLAY_TIMEOUT = 5000;

/**
 * Opens the dead letters of a NATS JetStream work stream (see the module doc).
 *
 * @throws TypeError `ERR_INVALID_OPTION` for a bad option; the first connection's errors as
 *   `natsSource`'s (`ERR_NOT_CONNECTED`, `ERR_CONNECT_CONFIG`, `ERR_CONNECT_TIMEOUT`); the
 *   client's error when the dead-letter stream cannot be found.
 * @example
 * ```ts
 * const dead = await natsDeadLetters({ stream: 'JOBS' });
 * await dead.replay(['17', '18']);
 * await dead.close();
 * ```
 */
export async function natsDeadLetters(options: NatsDeadLettersOptions): Promise<DeadLetters> {
  const name = { test: /^[^.\s*>]+$/, expected: 'a name without dots, spaces or wildcards' };
  brokerName('stream', options?.stream, name);
  if (options.deadLetterStream != null)
    brokerName('deadLetterStream', options.deadLetterStream, name);
  if (options.subject != null) filterSubject('subject', options.subject);
  const { servers } = options;
  if (servers != null && typeof servers !== 'string' && !Array.isArray(servers)) {
    invalidOption('servers', servers, 'a "host:port" string or an array of them');
  }
  const connectTimeout = connectTimeoutOption(options.connectTimeout);
  const owned = options.connection == null;
  const nc = options.connection ?? (await connectNats(servers ?? '127.0.0.1:4222', connectTimeout));
  try {
    const jsm = await jetstreamManagerOf(nc);
    const dead = options.deadLetterStream ?? `${options.stream}_DEAD`;
    await jsm.streams.info(dead); // fails now, naming the stream, when it does not exist
    return new NatsDeadLetters(nc, owned, jsm, jetstream(nc), {
      dead,
      subject: options.subject ?? `${options.stream}.work`,
      stream: options.stream,
    });
  } catch (error) {
    if (owned) await nc.close();
    throw error;
  }
}

interface Names {
  dead: string;
  subject: string;
  stream: string;
}

class NatsDeadLetters implements DeadLetters, PagedStore {
  readonly #nc: NatsConnection;
  readonly #owned: boolean;
  readonly #jsm: JetStreamManager;
  readonly #js: JetStreamClient;
  readonly #n: Names;
  /** The producer's headers of each letter this object listed (for `replay`). */
  readonly #producerHeaders = new WeakMap<DeadLetter, [string, string][]>();

  constructor(
    nc: NatsConnection,
    owned: boolean,
    jsm: JetStreamManager,
    js: JetStreamClient,
    names: Names,
  ) {
    this.#nc = nc;
    this.#owned = owned;
    this.#jsm = jsm;
    this.#js = js;
    this.#n = names;
  }

  async list(options?: DeadLetterListOptions): Promise<DeadLetterPage> {
    const { limit, cursor } = listOptions(options);
    if (cursor !== undefined && !letterSeq(cursor)) badCursor(cursor);
    return this.page(limit, cursor);
  }

  async page(limit: number, cursor: string | undefined): Promise<DeadLetterPage> {
    const { state } = await this.#jsm.streams.info(this.#n.dead);
    const letters: DeadLetter[] = [];
    if (state.messages === 0) return { letters, next: undefined };
    let seq = cursor === undefined ? state.last_seq : Math.min(Number(cursor) - 1, state.last_seq);
    // One more than a page: whether a next page exists.
    while (letters.length <= limit && seq >= state.first_seq) {
      const low = Math.max(state.first_seq, seq - WINDOW + 1);
      const window: number[] = [];
      for (let s = seq; s >= low; s--) window.push(s);
      const got = await Promise.all(window.map((s) => this.#get(s)));
      for (const m of got) if (m) letters.push(this.#letter(m));
      seq = low - 1;
    }
    const page = letters.slice(0, limit);
    return { letters: page, next: letters.length > limit ? page.at(-1)?.id : undefined };
  }

  async byIds(ids: string[]): Promise<DeadLetter[]> {
    const got = await Promise.all(ids.filter(letterSeq).map((id) => this.#get(Number(id))));
    return got.filter((m): m is StoredMsg => m !== null).map((m) => this.#letter(m));
  }

  async replay(which: DeadLetterSelection): Promise<number> {
    return eachSelected(this, selection(which), async (letters) => {
      // Every copy confirmed first, then the letters deleted: a kill in between duplicates.
      await Promise.all(
        letters.map((l) =>
          this.#js
            .publish(this.#n.subject, l.body, {
              msgID: `sluice-replay:${this.#n.dead}:${l.id}`,
              timeout: REPLAY_TIMEOUT,
              ...this.#replayHeaders(l),
            })
            .catch((error: unknown) => {
              throw publishError(error, this.#n.subject, REPLAY_TIMEOUT);
            }),
        ),
      );
      return this.#delete(letters);
    });
  }

  async purge(which: DeadLetterSelection): Promise<number> {
    const chosen = selection(which);
    if (chosen.kind === 'all') return (await this.#jsm.streams.purge(this.#n.dead)).purged;
    return eachSelected(this, chosen, (letters) => this.#delete(letters));
  }

  async close(): Promise<void> {
    if (this.#owned) await this.#nc.close();
  }

  async #delete(letters: DeadLetter[]): Promise<number> {
    const done = await Promise.all(
      letters.map((l) =>
        // no_erase: the data need not be overwritten on disk, only removed from the stream.
        this.#jsm.streams.deleteMessage(this.#n.dead, Number(l.id), false).catch((error) => {
          // Deleted meanwhile (another replay or purge): not ours to count.
          if (/no message found/i.test(String((error as Error).message))) return false;
          throw error;
        }),
      ),
    );
    return done.filter(Boolean).length;
  }

  /** The producer's headers the letter kept, for its copy. */
  #replayHeaders(letter: DeadLetter): { headers?: ReturnType<typeof natsHeaders> } {
    const kept = this.#producerHeaders.get(letter);
    if (kept === undefined) return {};
    const h = natsHeaders();
    for (const [name, value] of kept) h.set(name, value);
    return { headers: h };
  }

  #get(seq: number): Promise<StoredMsg | null> {
    return this.#jsm.streams.getMessage(this.#n.dead, { seq });
  }

  #letter(m: StoredMsg): DeadLetter {
    const h = (key: string) => m.header?.get(key) || undefined;
    const own = (m.header?.keys() ?? []).filter((name) => !/^(nats|sluice)-/i.test(name));
    // Sluice-Source is `<stream>:<sequence>:<subject>`.
    const source = h('Sluice-Source');
    const prefix = `${this.#n.stream}:`;
    const messageId = source?.startsWith(prefix)
      ? source.slice(prefix.length).split(':')[0]
      : undefined;
    const letter: DeadLetter = {
      id: String(m.seq),
      messageId,
      body: m.data,
      error: h('Sluice-Error') ?? '',
      code: h('Sluice-Error-Code') ?? h('Sluice-Error-Name'),
      attempts: Number(h('Sluice-Deliveries') ?? 0),
      firstFailedAt: undefined,
      lastFailedAt: m.time,
    };
    if (own.length > 0)
      this.#producerHeaders.set(
        letter,
        own.map((n) => [n, m.header!.get(n)]),
      );
    return letter;
  }
}
