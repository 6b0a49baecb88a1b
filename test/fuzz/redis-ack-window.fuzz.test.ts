/**
 * Property attack on the Redis source's ack window, against the real Redis on loopback: two to
 * four consumers on one group with one short lease (tens of ms), handlers that stall around the
 * lease (awaiting, or blocking the event loop so no heartbeat runs), consumers without
 * heartbeats (their leases run out under a stall), random success/failure per delivery (retried
 * after a random delay, dead-lettered at `maxDeliveries`), an outside `XAUTOCLAIM` (with
 * min-idle-time = the lease, as every consumer of the group claims) at random moments, and
 * consumers closed early at random moments.
 *
 * The oracle does not depend on the timing. Every call of the ack and dead-letter scripts is
 * audited inside Redis, atomically with the script itself: the test sends the same script wrapped
 * in Lua that records, for each id, its owner in the pending entries list just before and just
 * after (the same arguments, the same `TIME`-based window; only the wrapper's `XPENDING` reads and
 * one `RPUSH` are added). From that record and what the consumers reported:
 *
 * - an ack or dead letter of consumer C removes an entry from the pending list only while C owns
 *   it: never one another consumer (or the outside claimer) claimed in the meantime — the fast
 *   path inside the window must be exactly as safe as the owner check (scripts.ts, ACK_IF_OWNED);
 * - `ack()` resolves only if its script saw the entry as C's (or no longer pending: acked
 *   already), and rejects with ERR_LEASE_LOST only if another consumer owned it then; it never
 *   fails otherwise (no faults are injected);
 * - C acks an entry away only after one of C's handler runs of it succeeded;
 * - no message is lost: at the end nothing is pending or undelivered, every id left the pending
 *   list exactly once, by an ack or by a dead letter that is in the dead-letter stream once;
 * - no handler starts once its consumer's close() resolved, none is running when it resolves,
 *   and none runs a delivery past `maxDeliveries`.
 *
 * Each case also picks `deleteOnAck` (the ack and dead-letter scripts then `XDEL` too, and an
 * outside `XAUTOCLAIM` meets deleted entries) and one-at-a-time or batch handlers (a batch's
 * successes are acked together, through the same script with several ids; each item states its
 * own outcome).
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { type Consumer, consume } from '../../src/brokers/consumer.js';
import { firstFailureKey } from '../../src/brokers/redis/dead-letters.js';
import { ACK_IF_OWNED, DEAD_LETTER } from '../../src/brokers/redis/scripts.js';
import {
  type AnyRedisClient,
  createGroup,
  loadScripts,
  type RedisMessage,
  RedisStreamSource,
} from '../../src/brokers/redis/source.js';
import { delegate } from '../fixtures/brokers/consumer-harness.js';
import { type RedisAdmin, redisAdmin, uniqueStream } from '../fixtures/brokers/redis-helpers.js';
import { fuzzAssert, fuzzParams, testTimeout, UnhandledCounter, watchdog } from './harness.js';

const URL = 'redis://127.0.0.1:6379';

/**
 * `script` run unchanged inside a wrapper that appends `kind|consumer|id|owner before|owner
 * after` to `<stream>:audit` for each id it is given ('' = not pending). One script: nothing can
 * run between the look and the script's own commands.
 */
function audited(script: string, kind: string, me: string, ids: string): string {
  return `
local __audit = KEYS[1] .. ':audit'
local __call = redis.call('INCR', __audit .. ':calls')
local __me = ${me}
local __ids = ${ids}
local __before = {}
for i, id in ipairs(__ids) do
  local row = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1]
  __before[i] = row and row[2] or ''
end
local function __real()
${script}
end
local __result = __real()
for i, id in ipairs(__ids) do
  local row = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1]
  redis.call('RPUSH', __audit, '${kind}|' .. __call .. '|' .. __me .. '|' .. id .. '|' .. __before[i] .. '|' .. (row and row[2] or ''))
end
return __result
`;
}

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');
/** The scripts the source sends → the audited versions the test sends instead. */
const SWAPS = new Map<string, string>(
  [
    [ACK_IF_OWNED, audited(ACK_IF_OWNED, 'ack', 'ARGV[2]', '{ unpack(ARGV, 6) }')],
    [DEAD_LETTER, audited(DEAD_LETTER, 'dl', 'ARGV[4]', '{ ARGV[2] }')],
  ].flatMap(([real, wrapped]) => [
    [real as string, wrapped as string],
    [sha1(real as string), sha1(wrapped as string)],
  ]),
);

/** A RESP2 client whose ack and dead-letter script calls run audited (see `audited`). */
async function auditedClient(): Promise<AnyRedisClient> {
  const client = createClient({ url: URL, RESP: 2 });
  client.on('error', () => {});
  await client.connect();
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((args: string[], options?: unknown) => {
    const swap = (args[0] === 'EVALSHA' || args[0] === 'EVAL') && SWAPS.get(String(args[1]));
    return send(swap ? [args[0] as string, swap, ...args.slice(2)] : args, options as never);
  }) as typeof client.sendCommand;
  return client;
}

/** How a handler run spends its time: `factor` × lease, awaiting or blocking the event loop. */
interface Stall {
  kind: 'none' | 'async' | 'sync';
  factor: number;
}

interface ConsumerCase {
  concurrency: number;
  /** Batch handler of up to this many messages (at most `concurrency`); undefined: one at a time. */
  batch: { size: number; maxWait: number } | undefined;
  /** Without heartbeats, an awaiting stall past the lease loses it to another consumer's claim. */
  heartbeat: boolean;
  /** ms after the start at which this consumer is closed early (consumer 0 never is). */
  stopAt: number | undefined;
}

interface Case {
  lease: number;
  messages: number;
  consumers: ConsumerCase[];
  /** By (message index + delivery count), cycled. */
  stalls: Stall[];
  /** By (message index × 3 + delivery count), cycled: true = the handler succeeds. */
  outcomes: boolean[];
  maxDeliveries: number;
  retryDelay: number;
  /**
   * ms after the start at which an outside consumer (`thief`) runs XAUTOCLAIM, and its
   * min-idle-time in leases (the window assumes nobody claims sooner than `lease`).
   */
  thiefAt: number[];
  thiefIdle: number;
  /** The sources' `deleteOnAck`: acked and dead-lettered entries are deleted from the stream. */
  deleteOnAck: boolean;
}

const stallArb: fc.Arbitrary<Stall> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Stall>({ kind: 'none', factor: 0 }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('async' as const),
      factor: fc.constantFrom(0.3, 0.9, 1.1, 1.6, 2.2),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('sync' as const),
      factor: fc.constantFrom(0.5, 1.1, 1.5),
    }),
  },
);

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    lease: fc.constantFrom(30, 45, 60, 80),
    messages: fc.integer({ min: 1, max: 16 }),
    consumers: fc.array(
      fc.record({
        concurrency: fc.integer({ min: 1, max: 4 }),
        batch: fc.option(
          fc.record({
            size: fc.integer({ min: 1, max: 4 }),
            maxWait: fc.constantFrom(0, 5, 20),
          }),
          { nil: undefined },
        ),
        heartbeat: fc.boolean(),
        stopAt: fc.option(fc.integer({ min: 0, max: 300 }), { nil: undefined }),
      }),
      { minLength: 2, maxLength: 4 },
    ),
    stalls: fc.array(stallArb, { minLength: 1, maxLength: 6 }),
    outcomes: fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
    maxDeliveries: fc.integer({ min: 2, max: 5 }),
    retryFactor: fc.constantFrom(0, 0.2, 0.5, 1),
    thiefAt: fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 3 }),
    thiefIdle: fc.constantFrom(1, 1, 2),
    deleteOnAck: fc.boolean(),
  })
  .map(({ retryFactor, ...r }) => ({
    ...r,
    retryDelay: Math.round(retryFactor * r.lease),
    consumers: r.consumers.map((c, k) => ({
      ...c,
      batch: c.batch && { ...c.batch, size: Math.min(c.batch.size, c.concurrency) },
      stopAt: k === 0 ? undefined : c.stopAt,
    })),
  }));

let admin: RedisAdmin;
/** What the cases reached (printed with FUZZ_REPORT): a property that never loses a lease proves little. */
const reached = {
  cases: 0,
  acks: 0,
  refused: 0,
  stolenAcked: 0,
  deadLettered: 0,
  deleteOnAck: 0,
  batchConsumers: 0,
};

beforeAll(async () => {
  admin = await redisAdmin();
  for (const wrapped of new Set(SWAPS.values())) {
    if (wrapped.length > 40) await admin.client.sendCommand(['SCRIPT', 'LOAD', wrapped]);
  }
});
afterAll(async () => {
  await admin.cleanup();
});

interface Run {
  consumer: string;
  id: string;
  deliveryCount: number;
  ok: boolean;
}

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // Blocks the event loop: no heartbeat, no fetch, no ack of any consumer in this process.
  }
}

/** Awaits `ms`, or until `signal` aborts (then rejects, as a handler honouring it would). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

async function runCase(c: Case): Promise<void> {
  const stream = uniqueStream('ackwin');
  const dead = `${stream}:dead`;
  const audit = `${stream}:audit`;
  admin.track(stream, dead, audit, `${audit}:calls`);
  const violations: string[] = [];
  const runs: Run[] = [];
  const acks: { consumer: string; id: string; result: 'ok' | 'lost' | string }[] = [];
  const clients: AnyRedisClient[] = [];
  const consumers: Consumer[] = [];
  const timers: ReturnType<typeof setTimeout>[] = [];
  const ids = await admin.fill(
    stream,
    Array.from({ length: c.messages }, (_, i) => ({ i })),
  );
  try {
    await createGroup(admin.client as AnyRedisClient, stream, 'g');
    const state = c.consumers.map(() => ({ closeCalled: false, closed: false, running: 0 }));
    const closing: Promise<void>[] = [];
    const closeOne = (k: number) => {
      if (state[k]!.closeCalled) return;
      state[k]!.closeCalled = true;
      closing.push(
        consumers[k]!.close().then((report) => {
          state[k]!.closed = true;
          if (state[k]!.running !== 0 || report.stats.running !== 0) {
            violations.push(`c${k}: ${state[k]!.running} handlers running when close() resolved`);
          }
        }),
      );
    };
    for (const [k, cc] of c.consumers.entries()) {
      const name = `c${k}`;
      const cmd = await auditedClient();
      const read = await auditedClient();
      clients.push(cmd, read);
      if (k === 0) await loadScripts(cmd);
      const inner = new RedisStreamSource(cmd, read, false, {
        stream,
        group: 'g',
        consumer: name,
        lease: c.lease,
        fetchWait: c.lease,
        deleteOnAck: c.deleteOnAck,
      });
      const source = delegate<RedisMessage>(inner, {
        orderedAcks: inner.orderedAcks,
        ack: (m) =>
          inner.ack(m).then(
            () => {
              acks.push({ consumer: name, id: m.id, result: 'ok' });
            },
            (error: unknown) => {
              const code = (error as { code?: string }).code;
              acks.push({
                consumer: name,
                id: m.id,
                result: code === 'ERR_LEASE_LOST' ? 'lost' : String(error),
              });
              throw error;
            },
          ),
        // A turn's successes go through ackMany (one script call): recorded per message too.
        ackMany: (messages) =>
          inner.ackMany(messages).then(
            (errors) => {
              messages.forEach((m, i) => {
                const error = errors?.[i] as { code?: string } | undefined;
                acks.push({
                  consumer: name,
                  id: m.id,
                  result:
                    error === undefined
                      ? 'ok'
                      : error.code === 'ERR_LEASE_LOST'
                        ? 'lost'
                        : String(error),
                });
              });
              return errors;
            },
            (error: unknown) => {
              for (const m of messages)
                acks.push({ consumer: name, id: m.id, result: String(error) });
              throw error;
            },
          ),
        ...(cc.heartbeat ? {} : { heartbeat: undefined, heartbeatInterval: undefined }),
      });
      // One delivery's run: recorded, stalled and decided as the case says; throws on failure.
      const runOne = async (i: number, message: RedisMessage, signal: AbortSignal) => {
        const s = state[k]!;
        if (s.closed) violations.push(`${name} ran ${message.id} after close() resolved`);
        if (message.deliveryCount > c.maxDeliveries) {
          violations.push(`${name} ran ${message.id} on delivery ${message.deliveryCount}`);
        }
        s.running++;
        const run: Run = {
          consumer: name,
          id: message.id,
          deliveryCount: message.deliveryCount,
          ok: false,
        };
        runs.push(run);
        try {
          const stall = c.stalls[(i + message.deliveryCount) % c.stalls.length]!;
          const ms = Math.round(stall.factor * c.lease);
          if (stall.kind === 'async') await pause(ms, signal);
          else if (stall.kind === 'sync') busyWait(ms);
          if (!c.outcomes[(i * 3 + message.deliveryCount) % c.outcomes.length]) {
            throw new Error(`fails ${i}`);
          }
          run.ok = true;
        } finally {
          s.running--;
        }
      };
      const options = {
        concurrency: cc.concurrency,
        maxDeliveries: c.maxDeliveries,
        backoff: () => c.retryDelay,
        onError: () => {},
      };
      consumers.push(
        cc.batch
          ? consume<{ i: number }, RedisMessage>(
              source,
              async (items) => {
                // Each item states its own outcome: a batch mixes acks and retries.
                const outcomes = new Map<(typeof items)[number], true | Error>();
                await Promise.all(
                  items.map((item) =>
                    runOne(item.payload.i, item.message, item.signal).then(
                      () => outcomes.set(item, true),
                      (error: unknown) => outcomes.set(item, error as Error),
                    ),
                  ),
                );
                return outcomes;
              },
              { ...options, batch: cc.batch },
            )
          : consume<{ i: number }, RedisMessage>(
              source,
              ({ i }, { message, signal }) => runOne(i, message, signal),
              options,
            ),
      );
      if (cc.stopAt !== undefined) timers.push(setTimeout(() => closeOne(k), cc.stopAt));
    }
    for (const at of c.thiefAt) {
      timers.push(
        setTimeout(() => {
          admin.client
            .sendCommand([
              'XAUTOCLAIM',
              stream,
              'g',
              'thief',
              String(c.lease * c.thiefIdle),
              '0-0',
              'COUNT',
              '100',
            ])
            .catch((error: unknown) => violations.push(`thief: ${String(error)}`));
        }, at),
      );
    }
    // Done when nothing is pending or undelivered (polled: that state lives in Redis; the
    // bound only turns a stuck message into a failure instead of a hang). One XINFO reply for
    // both counts: asked apart, a delivery between the two would look like "nothing left".
    await admin.until(
      async () => {
        const [group] = (await admin.client.sendCommand([
          'XINFO',
          'GROUPS',
          stream,
        ])) as unknown[][];
        const field = (name: string) => group![group!.indexOf(name) + 1];
        return Number(field('pending')) === 0 && field('lag') === 0;
      },
      'every message acked or dead-lettered',
      30_000,
    );
    for (const t of timers) clearTimeout(t);
    for (const k of c.consumers.keys()) closeOne(k);
    await Promise.all(closing);
    await Promise.all(consumers.map((consumer) => consumer.done));
    check(c, ids, await auditRecords(audit), await deadIds(dead), runs, acks, violations);
  } finally {
    for (const t of timers) clearTimeout(t);
    await Promise.all(consumers.map((consumer) => consumer.abort().catch(() => {})));
    for (const client of clients) if (client.isOpen) await client.close();
    await admin.client.del([
      stream,
      dead,
      audit,
      `${audit}:calls`,
      ...ids.map((id) => firstFailureKey(dead, id)),
    ]);
  }
  if (violations.length > 0) throw new Error(violations.slice(0, 8).join('\n'));
}

type Tuple6 = [string, string, string, string, string, string];

interface Audit {
  kind: string;
  /** Which script call: one call may list an id twice (two deliveries of it acked together). */
  call: string;
  me: string;
  id: string;
  before: string;
  after: string;
}

async function auditRecords(key: string): Promise<Audit[]> {
  const rows = (await admin.client.sendCommand(['LRANGE', key, '0', '-1'])) as string[];
  return rows.map((row) => {
    const [kind, call, me, id, before, after] = row.split('|') as Tuple6;
    return { kind, call, me, id, before, after };
  });
}

async function deadIds(dead: string): Promise<string[]> {
  const letters = await admin.client.sendCommand(['XRANGE', dead, '-', '+']).catch(() => []);
  return (letters as [string, string[]][]).map(([, fields]) => {
    const at = fields.indexOf('sluice-id');
    return at < 0 ? '' : fields[at + 1]!;
  });
}

function check(
  c: Case,
  ids: string[],
  records: Audit[],
  dead: string[],
  runs: Run[],
  acks: { consumer: string; id: string; result: string }[],
  violations: string[],
): void {
  const succeeded = new Set(runs.filter((r) => r.ok).map((r) => `${r.consumer}|${r.id}`));
  const removedBy = new Map<string, Audit[]>();
  for (const r of records) {
    const removed = r.before !== '' && r.after === '';
    if (!removed) continue;
    // The safety property: the window's plain XACK must never end another consumer's delivery.
    if (r.before !== r.me) {
      violations.push(`${r.kind} by ${r.me} removed ${r.id}, owned by ${r.before}`);
    }
    if (r.kind === 'ack' && !succeeded.has(`${r.me}|${r.id}`)) {
      violations.push(`${r.me} acked ${r.id} away without a successful run of it`);
    }
    removedBy.set(r.id, [...(removedBy.get(r.id) ?? []), r]);
  }
  for (const a of acks) {
    const seen = records.filter((r) => r.kind === 'ack' && r.me === a.consumer && r.id === a.id);
    const mine = seen.some((r) => r.before === a.consumer || r.before === '');
    const other = seen.some((r) => r.before !== a.consumer && r.before !== '');
    if (a.result === 'ok' && !mine) {
      violations.push(`${a.consumer}'s ack of ${a.id} resolved, but another owned it`);
    } else if (a.result === 'lost' && !other) {
      violations.push(`${a.consumer}'s ack of ${a.id} reported a lost lease it still held`);
    } else if (a.result !== 'ok' && a.result !== 'lost') {
      violations.push(`${a.consumer}'s ack of ${a.id} failed: ${a.result}`);
    }
  }
  const deadSet = new Set(dead);
  if (deadSet.size !== dead.length) violations.push(`a message dead-lettered twice: ${dead}`);
  for (const id of ids) {
    const removals = removedBy.get(id) ?? [];
    // Per script call: one call acking two deliveries of an id (this consumer's own claim of
    // an entry whose first delivery still ran) lists it twice, both "pending before".
    const calls = new Set(removals.map((r) => r.call));
    if (calls.size !== 1) {
      const rows = records.filter((r) => r.id === id).map((r) => Object.values(r).join('|'));
      violations.push(`${id} left the pending list ${calls.size} times: ${rows.join(', ')}`);
    } else if ((removals[0]!.kind === 'dl') !== deadSet.has(id)) {
      violations.push(
        `${id} removed by ${removals[0]!.kind} but dead-lettered: ${deadSet.has(id)}`,
      );
    }
  }
  reached.cases++;
  if (c.deleteOnAck) reached.deleteOnAck++;
  reached.batchConsumers += c.consumers.filter((k) => k.batch !== undefined).length;
  reached.acks += acks.length;
  reached.refused += acks.filter((a) => a.result === 'lost').length;
  reached.deadLettered += dead.length;
  // Ids some consumer acked after another consumer's claim had superseded one of its deliveries.
  reached.stolenAcked += new Set(
    records.filter((r) => r.before !== '' && r.before !== r.me).map((r) => r.id),
  ).size;
}

describe('Redis ack window under fuzz', () => {
  it(
    'consumers racing short leases, stalls, retries and outside claims: no ack ends another consumer’s delivery, none is lost',
    async () => {
      const unhandled = new UnhandledCounter();
      unhandled.install();
      try {
        await fuzzAssert(
          'redis-ack-window',
          fc.asyncProperty(caseArb, (c) => watchdog(runCase(c), 'a Redis ack-window case', 45_000)),
          fuzzParams(0.4),
        );
      } finally {
        unhandled.uninstall();
        if (process.env.FUZZ_REPORT) {
          console.log(`[fuzz] redis-ack-window reached: ${JSON.stringify(reached)}`);
        }
      }
      if (unhandled.reasons.length > 0) {
        throw new Error(`unhandled rejections: ${unhandled.reasons.length}`);
      }
    },
    testTimeout(60_000),
  );
});
