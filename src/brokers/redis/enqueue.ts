/**
 * `enqueue` for Redis Streams (see the module doc of `sluice/redis`).
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { brokerName, invalidOption } from '../../internal/options.js';
import { tracedEnqueue } from '../../observability/enqueue-channel.js';
import {
  checkEnqueue,
  type EnqueueOptions,
  type EnqueueResult,
  encodePayload,
} from '../enqueue-options.js';
import { delayKeys, ENQUEUE } from './enqueue-scripts.js';
import { type AnyRedisClient, evalScript } from './source.js';

/** Where a Redis job goes. */
export interface RedisTarget {
  /** Any connected node-redis v5 client, as `createClient()` returns it. */
  client: AnyRedisClient;
  /** Stream key (the source's `stream`). */
  stream: string;
  /** The entry field holding the payload (the source's `field`). @default 'body' */
  field?: string;
}

/**
 * Adds one job to a stream, in one Lua script: objects as JSON, strings and bytes as they are —
 * so a plain string such as `'hello'` is not JSON, and the default `jsonDecode` dead-letters it.
 *
 * - `delay`: the job waits in the sorted set `<stream>:delayed` (scored by the server's clock)
 *   and a running source moves it into the stream when due. It is handed out at most the
 *   source's `fetchWait` (default 1000 ms) after its due time — sooner when the source already
 *   knew the due time — and only while some source runs (none running: at the next start).
 * - `key`: held by `<stream>:key:<key>` until the job is acked or dead-lettered (or its entry is
 *   deleted or trimmed); then the key may be enqueued again. No time window.
 *   The key is freed right after the ack, in a second script: a consumer that dies between
 *   the two leaves the key held until the acked entry leaves the stream (`deleteOnAck`, or
 *   your trimming).
 * - `headers`: extra entry fields next to the payload; none may have the payload field's name.
 * - Redis Cluster: the stream needs a hash tag (`{jobs}`) so its delayed set and keys share
 *   its slot.
 *
 * @param target - the client and the stream.
 * @returns the new entry id (`d:<token>` for a delayed job until it is moved into the stream),
 *   or, deduplicated, the id of the pending job holding `key`.
 * @throws TypeError/RangeError `ERR_INVALID_OPTION` for a bad option; the client's error.
 * @example
 * ```ts
 * const client = await createClient({ url: 'redis://127.0.0.1:6379' }).connect();
 * await enqueue({ client, stream: 'jobs' }, { path: 'a.pdf' }, { delay: 2000, key: 'a.pdf' });
 * ```
 */
export async function enqueue(
  target: RedisTarget,
  payload: unknown,
  options?: EnqueueOptions,
): Promise<EnqueueResult> {
  const { delay, key, headers: checked } = checkEnqueue(target, '{ client, stream }', options);
  const { stream, client } = target;
  const field = target.field == null ? 'body' : brokerName('target.field', target.field);
  // An entry's fields are one flat list: a header of the payload field's name would replace it.
  for (const [name] of checked) {
    if (name === field)
      invalidOption('headers', name, `names other than the payload field "${field}"`);
  }
  const names = delayKeys(stream);
  const body = encodePayload(payload); // misuse fails here, before a traced enqueue
  return tracedEnqueue('redis', stream, checked, async (headers) => {
    const reply = (await evalScript(
      client,
      ENQUEUE,
      [stream, names.delayed, names.data, key === undefined ? stream : names.keyPrefix + key],
      [field, body, String(Math.ceil(delay)), key ?? '', randomUUID(), ...headers.flat()],
    )) as [unknown, unknown];
    return { id: String(reply[0]), deduplicated: Number(reply[1]) === 1 };
  });
}
