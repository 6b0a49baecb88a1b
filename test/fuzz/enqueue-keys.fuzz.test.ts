/**
 * Model-based attack on deduplicated and delayed enqueue, against the real Redis and PostgreSQL
 * (the brokers whose key is held until the job is done): random enqueues (keyed or not,
 * delayed or not) and drains (fetch everything due, ack it) against a model of the pending
 * keys. Every enqueue's `deduplicated` must be the model's, every drain must hand out exactly
 * the due jobs (none lost, none twice, no delayed one early), and what stays in the broker at
 * the end must be exactly the delayed ones.
 */

import fc from 'fast-check';
import pg from 'pg';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnqueueOptions, EnqueueResult } from '../../src/brokers/enqueue-options.js';
import * as postgres from '../../src/brokers/postgres/index.js';
import * as redis from '../../src/brokers/redis/index.js';
import type { BrokerSource } from '../../src/brokers/source.js';
import { PG_URL, uniqueTable } from '../fixtures/brokers/postgres-helpers.js';
import { fuzzAssert, fuzzParams, testTimeout } from './harness.js';

type Command = { t: 'enqueue'; key: number | undefined; delayed: boolean } | { t: 'drain' };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('enqueue' as const),
      key: fc.option(fc.nat(4), { nil: undefined }),
      delayed: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant<Command>({ t: 'drain' }) },
);

interface Target {
  name: string;
  fresh(): Promise<{
    enqueue(payload: unknown, opts: EnqueueOptions): Promise<EnqueueResult>;
    source: BrokerSource;
    /** Jobs stored and not done (due or delayed). */
    stored(): Promise<number>;
    cleanup(): Promise<void>;
  }>;
}

const never = new AbortController().signal;
let run = 0;

/** Fetches and acks until `expected` jobs came (or a short fetch returns nothing twice). */
async function drain(source: BrokerSource, expected: number): Promise<string[]> {
  const got: string[] = [];
  let empty = 0;
  while (got.length < expected || empty < 1) {
    const batch = await source.fetch(50, never);
    if (batch.length === 0 && ++empty >= 2) break;
    for (const m of batch) {
      got.push(JSON.parse(Buffer.from(m.body).toString()).n);
      await source.ack(m);
    }
  }
  return got;
}

function property(target: Target) {
  return fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 40 }), async (cmds) => {
    const t = await target.fresh();
    try {
      const pending = new Map<number, 'due' | 'delayed'>();
      const due: string[] = [];
      let delayed = 0;
      let n = 0;
      for (const c of [...cmds, { t: 'drain' } as Command]) {
        if (c.t === 'enqueue') {
          const name = `j${n++}`;
          const opts: EnqueueOptions = {
            ...(c.key === undefined ? {} : { key: `k${c.key}` }),
            ...(c.delayed ? { delay: 600_000 } : {}),
          };
          const r = await t.enqueue({ n: name }, opts);
          const held = c.key !== undefined && pending.has(c.key);
          expect(r.deduplicated, `${name} ${JSON.stringify(opts)}`).toBe(held);
          if (held) continue;
          if (c.delayed) delayed++;
          else due.push(name);
          if (c.key !== undefined) pending.set(c.key, c.delayed ? 'delayed' : 'due');
        } else {
          const got = await drain(t.source, due.length);
          expect([...got].sort()).toEqual([...due].sort());
          due.length = 0;
          for (const [k, state] of pending) if (state === 'due') pending.delete(k);
        }
      }
      expect(await t.stored()).toBe(delayed);
    } finally {
      await t.cleanup();
    }
  });
}

const client = createClient({ url: 'redis://127.0.0.1:6379' });
const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
beforeAll(async () => {
  await client.connect();
});
afterAll(async () => {
  await client.close();
  await pool.end();
});

const targets: Target[] = [
  {
    name: 'redis',
    async fresh() {
      const stream = `sluice:fuzz:keys:${process.pid}:${run++}`;
      const source = await redis.redisSource({ client, stream, group: 'g', fetchWait: 10 });
      return {
        enqueue: (payload, opts) => redis.enqueue({ client, stream }, payload, opts),
        source,
        stored: async () => {
          // Not yet delivered (the group's lag) + delivered and not acked + delayed.
          const [group] = (await client.sendCommand(['XINFO', 'GROUPS', stream])) as unknown[][];
          const info = new Map<string, unknown>();
          for (let i = 0; group && i < group.length; i += 2)
            info.set(String(group[i]), group[i + 1]);
          const delayedCount = await client.sendCommand(['ZCARD', `${stream}:delayed`]);
          return Number(info.get('lag')) + Number(info.get('pending')) + Number(delayedCount);
        },
        async cleanup() {
          await source.close();
          const keys = (await client.sendCommand(['KEYS', `${stream}*`])) as string[];
          if (keys.length > 0) await client.sendCommand(['DEL', ...keys]);
        },
      };
    },
  },
  {
    name: 'postgres',
    async fresh() {
      const table = uniqueTable('fuzzkeys');
      const source = await postgres.postgresSource({
        connectionString: PG_URL,
        table,
        fetchWait: 10,
      });
      return {
        enqueue: (payload, opts) => postgres.enqueue({ db: pool, table }, payload, opts),
        source,
        stored: async () =>
          (await pool.query(`SELECT count(*)::int AS n FROM "${table}"`)).rows[0].n as number,
        async cleanup() {
          await source.close();
          await pool.query(`DROP TABLE IF EXISTS "${table}", "${table}_dead"`);
        },
      };
    },
  },
];

describe('fuzz: enqueue keys and delays against a model of the pending keys', () => {
  for (const target of targets) {
    it(
      target.name,
      async () => {
        await fuzzAssert(`enqueue-keys ${target.name}`, property(target), fuzzParams(0.4));
      },
      testTimeout(60_000),
    );
  }
});
