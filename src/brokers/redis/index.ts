/**
 * `sluice/redis`: a Redis Streams consumer-group source for `consume()`, plus `enqueue` (with
 * `delay` and `key`; see {@link enqueue}).
 *
 * How each guarantee maps onto Redis:
 * - fetch: `XAUTOCLAIM` (pending entries idle for `lease` ms — crashed consumers and due
 *   retries), looped until the cursor returns to `0-0` or the free slots are filled, then
 *   `XREADGROUP COUNT <free> BLOCK <fetchWait>` on a dedicated connection. `close()` interrupts the
 *   block with `CLIENT UNBLOCK`, so it never waits out the block time.
 * - ack: `XACK`, batched per event-loop turn, in one script call (see ownership below). Retry:
 *   the entry stays pending and its idle time is set to `lease - delay`, so it becomes claimable
 *   after `delay` — the backoff lives in Redis, not in this process (delays above `lease` are
 *   capped to it).
 * - delivery counts come from the pending entries list (`XPENDING`); dead letters go to
 *   `deadLetterStream`, in one script with the `XACK`: a copy of every field of the original
 *   entry (a malformed one too), plus `sluice-id`, `sluice-stream`, `sluice-group`,
 *   `sluice-deliveries`, `sluice-error` and `sluice-code` (error texts cut to 4096 characters).
 * - heartbeat: every `lease / 3` ms, `XCLAIM … JUSTID` resets the idle time of running
 *   entries still owned by this consumer (a Lua script checks the owner, so a lost entry is
 *   reported, not stolen back).
 * - retention: acked entries stay in the stream (another group may still read them) unless
 *   `deleteOnAck` is set; trim by your own policy otherwise.
 * - ownership: every retry, release and dead letter runs in a Lua script that first checks
 *   that this consumer still owns the entry (`XPENDING`), as the heartbeat does; so does an ack
 *   past the lease (below). A consumer whose event loop stalled past `lease` while another
 *   claimed its entry has its late ack refused (`LeaseLostError`), instead of silently ending
 *   the other consumer's delivery.
 * - acks inside the lease skip that check. Before each fetch the reading connection sends
 *   `TIME`, ahead of the `XREADGROUP` that may deliver new entries; Redis starts an entry's idle
 *   time when it delivers it, so every entry of that read became idle at or after that server
 *   time `since`. The ack script (`ACK_IF_OWNED`) reads `TIME` again: while now is
 *   less than `lease` past the oldest `since` of its batch, no entry of the batch can have been
 *   idle for `lease`, so no consumer claiming with min-idle-time `lease` can have taken one, and
 *   it runs the variadic `XACK` alone (per 64 acks Redis spends 37–53 µs on it instead of
 *   122–148 µs for the owner-checked script, the `XACK` itself ~15 µs in both; BENCHMARKS.md).
 *   Past that, the owner check runs as before. The comparison is made inside Redis at the moment of the `XACK`, on the clock
 *   Redis counts idle time with, so nothing has to be assumed about how long the ack took to
 *   get there: an ack queued behind a reconnect, a blocked read or a stalled event loop is judged
 *   when it runs, and the retry of a failed ack on the command connection is judged again.
 *   What changes idle time, and why the window still holds:
 *   - a heartbeat (`XCLAIM … IDLE 0`, only if still ours) restarts the idle time but not the
 *     window: a first delivery's window thus ends before any other delivery of its entry can
 *     exist (a claim needs `lease` of idle time counted from a moment at or after `since`). A
 *     handler running past `lease` has its ack owner-checked;
 *   - an entry delivered by `XAUTOCLAIM` (a crashed consumer's, a retry, or this consumer's own
 *     after its loop stalled past the lease while the first delivery still runs) is always
 *     owner-checked: this consumer may then hold two deliveries of one entry, and once one is
 *     retried or released another consumer may claim it while the other's ack would still look
 *     inside a window;
 *   - a retry (`IDLE lease - delay`) and a release (`IDLE lease`) make the entry look *older*,
 *     but they end this delivery: no ack follows for that message (a redelivery is a new
 *     message with its own `since`); a dead letter is owner-checked and acks in its own script;
 *   - another consumer's `XAUTOCLAIM` takes an entry only once idle for `lease`; its new
 *     delivery starts a new idle time that this consumer's `since` does not cover, but this
 *     consumer's window ended before that claim could happen;
 *   - the deduplication key is released only after the ack was applied, as before.
 *   What the window assumes: every consumer of the group uses the same `lease` (or a longer one)
 *   and nobody moves entries by hand (`XCLAIM` with a smaller min-idle-time), and Redis's clock
 *   does not step back between a claim and the ack (a failover keeps the window: the idle time
 *   and `since` are compared on the same server's clock). If one of those breaks, the cost is
 *   bounded: an ack is only ever sent after this consumer's handler succeeded, so no message is
 *   lost; what is lost is the `LeaseLostError` report, and the other consumer's delivery of the
 *   same message ends early (its own ack then counts as acked, as below).
 *   A message object the source did not hand out (no `since`) is always checked.
 * - group membership: a consumer that closes with nothing pending deletes itself from the group
 *   (`XGROUP DELCONSUMER`, checked and done in one script). One that crashed stays listed; its
 *   pending entries are claimed by others after `lease`, and every new source deletes the
 *   group's consumers that own nothing and were not seen for an hour.
 * - Redis without persistence loses its streams on restart; the source re-creates the group on
 *   `NOGROUP`, but messages are only safe across restarts with AOF (`appendonly yes`).
 *
 * Delivery is at-least-once (see `consume()`): a crash, a lost lease or an outage can run a
 * handler twice for one message, so handlers must be idempotent.
 *
 * @module
 */
import { createClient } from 'redis';
import { brokerName, optionalBoolean } from '../../internal/options.js';
import { checkUrl, connectWithin, maskUserinfo, REDIS_URL } from '../connect-deadline.js';
import { BROKER_LIMITS, resolveCommon } from '../source-options.js';
import {
  type AnyRedisClient,
  closeClient,
  createGroup,
  loadScripts,
  loginRefusal,
  type RedisSourceOptions,
  RedisStreamSource,
  readerName,
  reapEmptyConsumers,
} from './source.js';

// The shared consumer, so that one subpath import is enough: `import { consume, … } from 'sluice/redis'`.
export {
  type BackoffOptions,
  type BatchContext,
  type BatchHandler,
  type BatchItem,
  type BatchOptions,
  type BatchOutcomes,
  type ConsumeOptions,
  type Consumer,
  type ConsumerReport,
  type ConsumerStats,
  consume,
  type HandlerContext,
  jsonDecode,
  type MessageHandler,
} from '../consumer.js';
export type { EnqueueOptions, EnqueueResult } from '../enqueue-options.js';
export type { BrokerMessage, BrokerSource } from '../source.js';
export {
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterListOptions,
  type DeadLetterPage,
  type DeadLetterSelection,
  type DeadLetters,
  type RedisDeadLettersOptions,
  redisDeadLetters,
} from './dead-letters.js';
export { enqueue, type RedisTarget } from './enqueue.js';
export { type RedisRateLimiterOptions, redisRateLimiter } from './rate-limiter.js';
export type { AnyRedisClient, RedisMessage, RedisSourceOptions } from './source.js';
export { RedisStreamSource } from './source.js';

/**
 * Connects (or duplicates `client`: see its option), creates the consumer group if missing and
 * returns a source for `consume()`. The source has two connections, named in `CLIENT LIST`: one
 * for commands (`sluice:<stream>:<group>:cmd`) and one for the blocking reads
 * (`sluice:<stream>:<group>`). A connection that comes back from a reconnect out of step (a reply
 * that cannot be the one asked for) or stuck (no reply and no reconnect attempt for
 * `fetchWait + connectTimeout + 2 s`, checked every second at most) is replaced by a fresh one;
 * reconnects back off from 50 ms, doubling, to 2 s (with a caller's `client`: its own reconnect
 * strategy). `close()` during an outage does not wait for it (see README, "Limits").
 *
 * @throws TypeError/RangeError `ERR_INVALID_OPTION` (a rejection) for a bad option, before
 *   connecting; `NotConnectedError` (`ERR_NOT_CONNECTED`, retryable; the socket's error, `code`
 *   `ECONNREFUSED`, `ENOTFOUND`, …, as `cause`) when Redis cannot be reached;
 *   `ConnectTimeoutError` past `connectTimeout`; `ConnectConfigError` (`ERR_CONNECT_CONFIG`, not
 *   retryable) when Redis refuses the login.
 * @example
 * ```ts
 * const source = await redisSource({ stream: 'jobs', group: 'workers' });
 * const consumer = consume(source, handle, { concurrency: 32 });
 * ```
 */
export async function redisSource(options: RedisSourceOptions): Promise<RedisStreamSource> {
  brokerName('stream', options?.stream);
  brokerName('group', options.group);
  if (options.consumer != null) brokerName('consumer', options.consumer);
  if (options.deadLetterStream != null) brokerName('deadLetterStream', options.deadLetterStream);
  if (options.field != null) brokerName('field', options.field);
  // Redis takes whole milliseconds for BLOCK and XAUTOCLAIM's min-idle-time.
  const { connectTimeout } = resolveCommon(options, BROKER_LIMITS.redis);
  optionalBoolean('deleteOnAck', options.deleteOnAck);
  const where = `Redis at ${maskUserinfo(options.url ?? 'redis://127.0.0.1:6379')}`;
  if (options.url != null) checkUrl(options.url, REDIS_URL, 'a redis:// or rediss:// URL');
  // The first connection fails fast (a wrong URL throws here); once up, reconnects back off.
  let established = false;
  // Both connections are the source's own, even with a caller's `client` (duplicated: its options,
  // not its connection): the source replaces a connection that comes back from a reconnect out of
  // step or stuck (see RedisLink), and must not do that to a connection the caller shares.
  // Named, as the reading connection is: besides telling the two apart in CLIENT LIST, the name
  // makes a handshake. node-redis counts a connection with no handshake ready the moment TCP
  // connects, and reconnects at once, with no backoff, when a ready connection closes: a server
  // that accepts and closes (Redis at maxclients, a proxy before a dead server) then took a
  // core and thousands of connections a second. A failed handshake backs off.
  const cmdName = `${readerName(options.stream, options.group)}:cmd`;
  const cmd: AnyRedisClient = options.client
    ? options.client.duplicate({
        disableClientInfo: true,
        name: cmdName,
        // node-redis pauses writes for a maintenance handoff, as RedisLink does on an error.
        maintNotifications: 'disabled',
      })
    : createClient({
        url: options.url ?? 'redis://127.0.0.1:6379',
        name: cmdName,
        disableClientInfo: true, // see the reading connection below
        socket: {
          reconnectStrategy: (retries: number, cause: Error) =>
            established ? Math.min(50 * 2 ** retries, 2_000) : cause,
          connectTimeout,
        },
      });
  cmd.on('error', () => {}); // reconnects on its own; failed commands surface through onError
  await connectWithin(cmd.connect().catch(rethrowSocketError), connectTimeout, where, () =>
    cmd.destroy(),
  ).catch((error: unknown) => {
    throw loginRefusal(error, where);
  });
  // RESP2 on the reading connection: stream replies are plain arrays whatever the caller's client
  // uses. Named (CLIENT LIST shows `name=sluice:<stream>:<group>`) so that an operator can tell
  // which blocked connection reads which stream; node-redis sets it again on every reconnect.
  const read: AnyRedisClient = cmd.duplicate({
    RESP: 2,
    name: readerName(options.stream, options.group),
    // No CLIENT SETINFO in the handshake: Redis < 7.2 answers it with an error, which under a
    // reconnect racing queued commands was once seen to reach a queued read instead.
    disableClientInfo: true,
    // Redis's maintenance push notifications need RESP 3; a RESP 3 `client` turns them on by
    // default, and its RESP 2 duplicate would be refused (node-redis throws at construction).
    maintNotifications: 'disabled',
  });
  read.on('error', () => {});
  try {
    await connectWithin(read.connect().catch(rethrowSocketError), connectTimeout, where, () =>
      read.destroy(),
    );
    established = true;
    await createGroup(cmd, options.stream, options.group);
    await loadScripts(cmd);
  } catch (error) {
    // Whatever failed (the reader's handshake, XGROUP CREATE on a key of another type), the
    // connections this call opened must not keep the process alive.
    await closeClient(read);
    await closeClient(cmd);
    throw loginRefusal(error, where);
  }
  // Consumers that crashed leave their names in the group: delete those with nothing pending
  // that were not seen for an hour (safe and cheap; see REAP_EMPTY_CONSUMERS).
  await reapEmptyConsumers(cmd, options.stream, options.group);
  return new RedisStreamSource(cmd, read, true, options);
}

/**
 * node-redis wraps the error that ended its first connection (our reconnect strategy hands it
 * back) in a `ReconnectStrategyError` without a `code`; the socket's own error carries Node's
 * (`ECONNREFUSED`, `ENOTFOUND`, …): unwrapped, `loginRefusal` codes it as the other sources do.
 */
function rethrowSocketError(error: unknown): never {
  const original = (error as { originalError?: unknown } | null)?.originalError;
  throw original instanceof Error ? original : error;
}
