/**
 * {@link DeadLetters} over a Redis dead-letter stream (`<stream>:dead` by default), as the Redis
 * source writes it: a copy of every field of the failed entry plus `sluice-*` fields.
 *
 * - list: `XREVRANGE` from the cursor (an entry id, exclusive), so pages are keyset pages over
 *   the dead stream's ids: newest first, stable while letters are added (they land before the
 *   first page) or removed. `lastFailedAt` is the dead entry's id time; `firstFailedAt` comes
 *   from `sluice-first-failed-at`, which the source records at a message's first retry (a key
 *   `<dead stream>:first-failed:<id>` with a 7-day TTL, deleted when the letter is written).
 * - replay: one Lua script per 100 letters copies each letter's fields (minus the `sluice-*`
 *   ones) to the work stream with `XADD` and `XDEL`s the letter — both or neither, so a replay
 *   killed at any point neither loses nor duplicates a letter. The copy is a new entry with a
 *   new id: the group delivers it as new, and its delivery count (from the pending entries
 *   list) starts at 1. Its `messageId` (the old entry id) is not kept on the copy. Producer
 *   fields (`enqueue`'s `headers`) are kept; the job's `sluice-key` is not — its key was freed
 *   when the job was dead-lettered, and the copy holds none (an `enqueue` with that key adds).
 * - purge: `'all'` is one `XTRIM MAXLEN 0` (atomic); ids and filters `XDEL` in batches.
 * - Cluster: the script touches the work stream and the dead stream, as the source's
 *   dead-lettering script already does; both must hash to one slot (give them a `{tag}`).
 *
 * @module
 */
import { createClient, RESP_TYPES } from 'redis';
import { brokerName } from '../../internal/options.js';
import { checkUrl, connectWithin, maskUserinfo, REDIS_URL } from '../connect-deadline.js';
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
  eachSelected,
  listOptions,
  type PagedStore,
  selection,
} from '../dead-letters.js';
import { type AnyRedisClient, closeClient, evalScript, loginRefusal } from './source.js';

export type {
  DeadLetter,
  DeadLetterFilter,
  DeadLetterListOptions,
  DeadLetterPage,
  DeadLetterSelection,
  DeadLetters,
} from '../dead-letters.js';

/** Options of {@link redisDeadLetters}. */
export interface RedisDeadLettersOptions {
  /** Connection URL, used when `client` is absent. @default 'redis://127.0.0.1:6379' */
  url?: string;
  /** A connected node-redis v5 client (left open by `close()`). */
  client?: AnyRedisClient;
  /** Longest wait for the connection handshake, ms. @default 10000 */
  connectTimeout?: number;
  /** The work stream replays go to. */
  stream: string;
  /** The dead-letter stream, as given to the source. @default `${stream}:dead` */
  deadLetterStream?: string;
  /** The entry field holding the payload, as given to the source. @default 'body' */
  field?: string;
}

/** How long (ms) the time of a message's first failure is kept while it is retried: 7 days. */
export const FIRST_FAILURE_TTL = 7 * 24 * 60 * 60 * 1000;

/** The key holding the time of entry `id`'s first failure until it is acked or dead-lettered. */
export function firstFailureKey(deadLetterStream: string, id: string): string {
  return `${deadLetterStream}:first-failed:${id}`;
}

/**
 * Fields the source adds to a letter, and the job's deduplication key (`sluice-key`, freed when
 * it was dead-lettered, so the copy must not claim it): dropped from a replayed copy.
 */
const SLUICE_FIELDS = [
  'sluice-key',
  'sluice-id',
  'sluice-stream',
  'sluice-group',
  'sluice-deliveries',
  'sluice-error',
  'sluice-code',
  'sluice-first-failed-at',
];

/**
 * KEYS[1] = work stream, KEYS[2] = dead stream; ARGV = payload field, letter ids. Copies each
 * letter still there to the work stream without the sluice fields, then deletes it. Returns how
 * many were moved. An entry left with no field at all gets an empty payload field (XADD needs one).
 */
const REPLAY = `
local drop = {}
for _, name in ipairs({${SLUICE_FIELDS.map((f) => `'${f}'`).join(', ')}}) do drop[name] = true end
local moved = 0
for i = 2, #ARGV do
  local entry = redis.call('XRANGE', KEYS[2], ARGV[i], ARGV[i])[1]
  if entry then
    local out = {}
    local fields = entry[2]
    for j = 1, #fields, 2 do
      if not drop[fields[j]] then
        out[#out + 1] = fields[j]
        out[#out + 1] = fields[j + 1]
      end
    end
    if #out == 0 then out = { ARGV[1], '' } end
    redis.call('XADD', KEYS[1], '*', unpack(out))
    redis.call('XDEL', KEYS[2], ARGV[i])
    moved = moved + 1
  end
end
return moved
`;

const BUFFERS = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } } as const;
const ENTRY_ID = /^(\d+)-(\d+)$/;
const U64_MAX = 18_446_744_073_709_551_615n;

/**
 * The parts of an entry id `ms-seq` Redis can parse (each an unsigned 64-bit number), or
 * undefined: anything else, sent on, fails with Redis's uncoded "Invalid stream ID".
 */
function entryId(id: string): [bigint, bigint] | undefined {
  const m = ENTRY_ID.exec(id);
  if (m === null) return undefined;
  const ms = BigInt(m[1] as string);
  const seq = BigInt(m[2] as string);
  return ms <= U64_MAX && seq <= U64_MAX ? [ms, seq] : undefined;
}

/** True for a cursor `list` could have made: an entry's id, and no entry is `0-0`. */
function cursorId(id: string): boolean {
  const parts = entryId(id);
  return parts !== undefined && (parts[0] > 0n || parts[1] > 0n);
}

/**
 * Opens the dead letters of a Redis stream (see the module doc for how each operation maps onto
 * Redis).
 *
 * @throws TypeError/RangeError `ERR_INVALID_OPTION` for a bad option; the first connection's
 *   errors as `redisSource`'s (`ERR_NOT_CONNECTED`, `ERR_CONNECT_CONFIG`, `ERR_CONNECT_TIMEOUT`).
 * @example
 * ```ts
 * const dead = await redisDeadLetters({ stream: 'jobs' });
 * console.log((await dead.list({ limit: 10 })).letters.map((l) => l.error));
 * await dead.replay('all');
 * await dead.close();
 * ```
 */
export async function redisDeadLetters(options: RedisDeadLettersOptions): Promise<DeadLetters> {
  brokerName('stream', options?.stream);
  if (options.deadLetterStream != null) brokerName('deadLetterStream', options.deadLetterStream);
  if (options.field != null) brokerName('field', options.field);
  const connectTimeout = connectTimeoutOption(options.connectTimeout);
  if (options.client) return new RedisDeadLetters(options.client, false, options);
  const url = options.url ?? 'redis://127.0.0.1:6379';
  checkUrl(url, REDIS_URL, 'a redis:// or rediss:// URL');
  const client: AnyRedisClient = createClient({
    url,
    socket: { connectTimeout, reconnectStrategy: false },
  });
  client.on('error', () => {});
  const where = `Redis at ${maskUserinfo(url)}`;
  await connectWithin(client.connect(), connectTimeout, where, () => client.destroy()).catch(
    (error: unknown) => {
      throw loginRefusal(error, where);
    },
  );
  return new RedisDeadLetters(client, true, options);
}

class RedisDeadLetters implements DeadLetters, PagedStore {
  readonly #client: AnyRedisClient;
  readonly #owns: boolean;
  readonly #stream: string;
  readonly #dead: string;
  readonly #field: string;

  constructor(client: AnyRedisClient, owns: boolean, o: RedisDeadLettersOptions) {
    this.#client = client;
    this.#owns = owns;
    this.#stream = o.stream;
    this.#dead = o.deadLetterStream ?? `${o.stream}:dead`;
    this.#field = o.field ?? 'body';
  }

  async list(options?: DeadLetterListOptions): Promise<DeadLetterPage> {
    const { limit, cursor } = listOptions(options);
    if (cursor !== undefined && !cursorId(cursor)) badCursor(cursor);
    return this.page(limit, cursor);
  }

  async page(limit: number, cursor: string | undefined): Promise<DeadLetterPage> {
    const end = cursor === undefined ? '+' : `(${cursor}`;
    const reply = (await this.#client.sendCommand(
      ['XREVRANGE', this.#dead, end, '-', 'COUNT', String(limit + 1)],
      BUFFERS,
    )) as [Buffer, Buffer[]][];
    const letters = reply.slice(0, limit).map((e) => this.#letter(e));
    return { letters, next: reply.length > limit ? letters.at(-1)?.id : undefined };
  }

  async byIds(ids: string[]): Promise<DeadLetter[]> {
    // An id that names no entry Redis can hold names no letter: skipped, as on the other brokers.
    const valid = ids.filter((id) => entryId(id) !== undefined);
    const replies = await Promise.all(
      valid.map(
        (id) =>
          this.#client.sendCommand(['XRANGE', this.#dead, id, id], BUFFERS) as Promise<
            [Buffer, Buffer[]][]
          >,
      ),
    );
    return replies.flatMap((r) => r.map((e) => this.#letter(e)));
  }

  async replay(which: DeadLetterSelection): Promise<number> {
    return eachSelected(this, selection(which), async (letters) =>
      Number(
        await evalScript(
          this.#client,
          REPLAY,
          [this.#stream, this.#dead],
          [this.#field, ...letters.map((l) => l.id)],
        ),
      ),
    );
  }

  async purge(which: DeadLetterSelection): Promise<number> {
    const chosen = selection(which);
    if (chosen.kind === 'all') {
      return Number(await this.#client.sendCommand(['XTRIM', this.#dead, 'MAXLEN', '0']));
    }
    return eachSelected(this, chosen, async (letters) => {
      let deleted = 0;
      for (let i = 0; i < letters.length; i += BATCH) {
        const ids = letters.slice(i, i + BATCH).map((l) => l.id);
        deleted += Number(await this.#client.sendCommand(['XDEL', this.#dead, ...ids]));
      }
      return deleted;
    });
  }

  async close(): Promise<void> {
    if (this.#owns) await closeClient(this.#client);
  }

  #letter([rawId, raw]: [Buffer, Buffer[]]): DeadLetter {
    const id = rawId.toString('latin1');
    const fields = new Map<string, Buffer>();
    for (let i = 0; i + 1 < raw.length; i += 2) {
      // The last occurrence wins: the sluice fields come after the producer's.
      fields.set(raw[i]!.toString(), raw[i + 1]!);
    }
    const text = (name: string) => fields.get(name)?.toString();
    const lastFailedAt = new Date(Number(id.split('-')[0]));
    return {
      id,
      messageId: text('sluice-id'),
      body: fields.get(this.#field) ?? new Uint8Array(0),
      error: text('sluice-error') ?? '',
      code: text('sluice-code'),
      attempts: Number(text('sluice-deliveries') ?? 0),
      firstFailedAt: dateFromMs(text('sluice-first-failed-at')),
      lastFailedAt,
    };
  }
}
