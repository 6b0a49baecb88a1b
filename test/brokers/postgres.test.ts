/**
 * consume() over the PostgreSQL table queue, what only PostgreSQL has, against the real server
 * on loopback: a NOTIFY wakes the wait, a slow handler kept by its heartbeat and its control with
 * the lease fencing, release(), a caller-owned pool. The shared cases are in
 * postgres.consume.test.ts; the restart is in postgres.restart.test.ts.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { type Consumer, consume } from '../../src/brokers/consumer.js';
import { connectionError } from '../../src/brokers/postgres/connection-error.js';
import { enqueue, enqueueMany, migrate, postgresSource } from '../../src/brokers/postgres/index.js';
import { LeaseLostError, NotConnectedError } from '../../src/errors.js';
import { until } from '../fixtures/brokers/broker-under-test.js';
import { deadline, delegate, Ledger, payloads } from '../fixtures/brokers/consumer-harness.js';
import { startFaultProxy } from '../fixtures/brokers/fault-proxy.js';
import { PG_URL, pgAdmin, uniqueTable } from '../fixtures/brokers/postgres-helpers.js';
import { deferred, flush } from '../helpers.js';

const admin = pgAdmin();
const consumers: Consumer[] = [];

afterAll(async () => {
  for (const c of consumers) await c.abort();
  await admin.cleanup();
});

function source(table: string, opts: Partial<Parameters<typeof postgresSource>[0]> = {}) {
  admin.track(table);
  return postgresSource({ connectionString: PG_URL, table, ...opts });
}

function track(c: Consumer): Consumer {
  consumers.push(c);
  return c;
}

describe('consume() over a PostgreSQL table queue', () => {
  it('a NOTIFY wakes a wait on an empty queue at once (60 s poll interval); close() after it is still prompt', async () => {
    const table = uniqueTable('p5');
    const got = deferred<number>();
    const consumer = track(
      consume<{ k: string }>(
        await source(table, { fetchWait: 60_000 }),
        () => got.resolve(performance.now()),
        { concurrency: 4 },
      ),
    );
    // Poll interval 60 s: only the notification can deliver this row promptly.
    await new Promise((r) => setTimeout(r, 100));
    const sent = performance.now();
    await enqueue({ db: admin.pool, table }, { k: 'wake' });
    const latency = (await deadline(got.promise, 20_000, 'notified delivery')) - sent;
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    const report = await consumer.close();
    const took = performance.now() - t0;
    console.log(
      `postgres: NOTIFY-to-handler ${latency.toFixed(1)} ms; close() while waiting ${took.toFixed(1)} ms`,
    );
    // Against the 60 s poll, not a latency goal: bounds a loaded machine does not stretch past.
    expect(latency).toBeLessThan(10_000);
    expect(took).toBeLessThan(10_000);
    expect(report.stats.acked).toBe(1);
  });

  it('a slow but alive handler (longer than the lease) is not handed to a second consumer', async () => {
    const table = uniqueTable('p7');
    await admin.fill(table, [{ k: 'slow' }]);
    const runs: string[] = [];
    const started = deferred<void>();
    const a = track(
      consume<{ k: string }>(
        await source(table, { lease: 2000, fetchWait: 50 }),
        async ({ k }) => {
          runs.push(`a:${k}`);
          started.resolve();
          // 2x the lease; heartbeats every 667 ms leave 1.3 s of slack on a loaded machine (a
          // lease of 600 ms left 400 ms, which a stalled timer can outlast).
          await new Promise((r) => setTimeout(r, 4000));
        },
        { concurrency: 1 },
      ),
    );
    await started.promise;
    const b = track(
      consume<{ k: string }>(
        await source(table, { lease: 2000, fetchWait: 50 }),
        ({ k }) => {
          runs.push(`b:${k}`);
        },
        { concurrency: 1 },
      ),
    );
    const ra = await a.close();
    await b.close();
    expect(runs).toEqual(['a:slow']);
    expect(ra.stats).toMatchObject({ acked: 1, leaseLost: 0, errors: 0 });
    expect(await admin.remaining(table)).toBe(0);
  });

  it('control, and lease fencing: without heartbeats the row is re-claimed, and the late ack is refused', async () => {
    const table = uniqueTable('p7c');
    await admin.fill(table, [{ k: 'slow' }]);
    const runs: string[] = [];
    const aRan = deferred<void>();
    const bRan = deferred<void>();
    const aRefused = deferred<void>();
    const errors: string[] = [];
    const inner = await source(table, { lease: 300, fetchWait: 50 });
    const a = track(
      consume<{ k: string }>(
        delegate(inner, { heartbeat: undefined, heartbeatInterval: undefined }),
        async ({ k }) => {
          runs.push(`a:${k}`);
          aRan.resolve();
          await bRan.promise;
        },
        {
          concurrency: 1,
          onError: (e, op) => {
            errors.push(`${op}: ${e.message}`);
            aRefused.resolve();
          },
        },
      ),
    );
    // b starts once a holds the row: otherwise b may claim it first and a never runs.
    await deadline(aRan.promise, 5000, 'first delivery to a');
    const b = track(
      consume<{ k: string }>(
        await source(table, { lease: 300, fetchWait: 50 }),
        async ({ k }, { message }) => {
          runs.push(`b:${k}:${message.deliveryCount}`);
          bRan.resolve();
          // a's ack lands first (while b holds the row under its new lease) and must be refused:
          // b acks only once it was, rather than after a sleep a loaded machine can outlast.
          await deadline(aRefused.promise, 10_000, "a's late ack refused");
        },
        { concurrency: 1 },
      ),
    );
    await deadline(bRan.promise, 5000, 'redelivery to b');
    const ra = await a.close();
    const rb = await b.close();
    expect(runs).toEqual(['a:slow', 'b:slow:2']);
    expect(errors).toEqual([
      expect.stringMatching(/^ack: ack refused for message \d+: its lease was lost/),
    ]);
    expect(ra.stats.acked).toBe(0);
    expect(rb.stats.acked).toBe(1);
    expect(await admin.remaining(table)).toBe(0);
  });

  it('release() hands fetched rows back at once, without charging a delivery', async () => {
    const table = uniqueTable('prel');
    await admin.fill(table, payloads(3));
    const a = await source(table);
    const b = await source(table);
    const never = new AbortController().signal;
    try {
      const first = await a.fetch(3, never);
      expect(first.map((m) => m.deliveryCount)).toEqual([1, 1, 1]);
      expect(await b.fetch(3, AbortSignal.timeout(50))).toEqual([]); // leased to a
      for (const m of first) await a.release(m);
      const again = await b.fetch(3, never);
      expect(again.map((m) => m.id).sort()).toEqual(first.map((m) => m.id).sort());
      expect(again.map((m) => m.deliveryCount)).toEqual([1, 1, 1]);
      for (const m of again) await b.ack(m);
      // a's lease is gone: its late completion is refused.
      await expect(a.ack(first[0]!)).rejects.toThrow(/lease was lost/);
      expect(await admin.remaining(table)).toBe(0);
    } finally {
      await a.close();
      await b.close();
    }
  });
  it('ackMany: one fenced DELETE acks the rows still ours; a row re-claimed by another consumer (lost lease) is refused at its index and stays', async () => {
    const table = uniqueTable('pmany');
    await admin.fill(table, payloads(4));
    const a = await source(table);
    const b = await source(table);
    const never = new AbortController().signal;
    try {
      const held = await a.fetch(4, never);
      expect(held).toHaveLength(4);
      // a loses the lease of one row: it expires, and b claims it (a new token).
      await admin.pool.query(`UPDATE "${table}" SET run_at = now() WHERE id = $1`, [held[2]!.id]);
      const taken = await b.fetch(4, never);
      expect(taken.map((m) => m.id)).toEqual([held[2]!.id]);
      const results = await a.ackMany(held);
      expect(results?.map((r) => r?.name)).toEqual([
        undefined,
        undefined,
        'LeaseLostError',
        undefined,
      ]);
      expect((results?.[2] as { code?: string } | undefined)?.code).toBe('ERR_LEASE_LOST');
      expect(await admin.remaining(table)).toBe(1); // b's row is untouched
      // Everything acked: undefined (no array).
      expect(await b.ackMany(taken)).toBeUndefined();
      expect(await admin.remaining(table)).toBe(0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  /**
   * A caller-owned pool that records the queue statements the source runs (by name) and can hold
   * or fail one kind: the source's statements are named `sluice_<hash>_<statement>`.
   */
  function spyPool() {
    const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
    const names: string[] = [];
    const hold = new Map<string, Promise<void>>();
    const fail = new Map<string, Error>();
    const query = pool.query.bind(pool) as (config: pg.QueryConfig) => Promise<pg.QueryResult>;
    (pool as { query: unknown }).query = (config: pg.QueryConfig) => {
      const name = config.name?.replace(/^sluice_[0-9a-f]+_/, '');
      if (name === undefined) return query(config);
      names.push(name);
      const failure = fail.get(name);
      if (failure !== undefined) return Promise.reject(failure);
      const gate = hold.get(name);
      return gate === undefined ? query(config) : gate.then(() => query(config));
    };
    return { pool, names, hold, fail };
  }

  /**
   * A source over a new table of `rows` rows, its statements through a {@link spyPool};
   * `close` closes the source, then ends the pool.
   */
  async function spiedSource(name: string, rows: number) {
    const table = uniqueTable(name);
    await admin.fill(table, payloads(rows));
    const spy = spyPool();
    const a = await source(table, { pool: spy.pool });
    const close = async () => {
      await a.close();
      await spy.pool.end();
    };
    return { table, spy, a, close };
  }

  it('acks issued while no fetch runs ride with the next claim in one statement: rows still ours are deleted, a re-claimed row is refused at its index, and no acked row is claimed again', async () => {
    const { table, spy, a, close } = await spiedSource('pride', 4);
    const b = await source(table);
    const never = new AbortController().signal;
    try {
      const held = await a.fetch(4, never);
      expect(held).toHaveLength(4);
      // a's lease on held[2] runs out and b claims it; a's lease on held[3] runs out too, but
      // nobody claims it: it is due again, and a's token still matches.
      await admin.pool.query(`UPDATE "${table}" SET run_at = now() WHERE id = $1`, [held[2]!.id]);
      expect((await b.fetch(4, never)).map((m) => m.id)).toEqual([held[2]!.id]);
      await admin.pool.query(`UPDATE "${table}" SET run_at = now() WHERE id = $1`, [held[3]!.id]);
      const fresh = await admin.fill(table, payloads(2));
      // In one turn: the acks (no fetch running), then the next fetch takes them along.
      const acked = a.ackMany(held);
      const next = await a.fetch(4, never);
      const results = await acked;
      expect(spy.names).toEqual(['claim', 'ackClaim']);
      expect(results?.map((r) => r?.name)).toEqual([
        undefined,
        undefined,
        'LeaseLostError',
        undefined,
      ]);
      expect((results?.[2] as { code?: string } | undefined)?.code).toBe('ERR_LEASE_LOST');
      // The two fresh rows; held[3], due again, was deleted by its ack, not claimed again.
      expect(next.map((m) => m.id).sort()).toEqual([...fresh].sort());
      expect(next.every((m) => m.deliveryCount === 1 && m.token.length === 36)).toBe(true);
      // A lone ack rides the same way, and is refused the same way when its lease is gone.
      const lone = a.ack(next[0]!);
      const none = await a.fetch(4, never);
      await lone;
      expect(none).toEqual([]);
      expect(spy.names.slice(2, 3)).toEqual(['ackClaim']);
      await expect(a.ack(next[0]!)).rejects.toBeInstanceOf(LeaseLostError);
      expect(await a.ackMany([next[1]!])).toBeUndefined();
      expect(await admin.remaining(table)).toBe(1); // b's row
    } finally {
      await b.close();
      await close();
    }
  });

  it('a failed claim that carried acks fails the fetch with its error; the acks are sent again on their own, settle from that reply, and the next claim waits for it', async () => {
    const { table, spy, a, close } = await spiedSource('pridefail', 3);
    const never = new AbortController().signal;
    try {
      const held = await a.fetch(2, never);
      const failure = new Error('the statement failed');
      spy.fail.set('ackClaim', failure);
      const resent = deferred<void>();
      spy.hold.set('ack', resent.promise);
      const acked = a.ackMany(held);
      const lone = a.ack(held[0]!);
      const fetched = a.fetch(2, never);
      await expect(fetched).rejects.toBe(failure);
      // The acks' slots are free already: the next claim waits for their resend to answer.
      const next = a.fetch(2, never);
      await flush();
      await flush();
      expect(spy.names).toEqual(['claim', 'ackClaim', 'ack']);
      resent.resolve();
      spy.hold.clear();
      expect(await acked).toBeUndefined();
      await expect(lone).resolves.toBeUndefined();
      const [third] = await next;
      expect(spy.names).toEqual(['claim', 'ackClaim', 'ack', 'claim']);
      expect(await admin.remaining(table)).toBe(1);
      // When the resend fails too, the acks get its error (nothing is reported acked unapplied).
      const resendFailure = new Error('the resend failed');
      spy.fail.set('ackClaim', failure);
      spy.fail.set('ack', resendFailure);
      const late = a.ack(third!);
      await expect(a.fetch(2, never)).rejects.toBe(failure);
      await expect(late).rejects.toBe(resendFailure);
      expect(await admin.remaining(table)).toBe(1);
    } finally {
      await close();
    }
  });

  it("acks issued while no fetch runs go out at their turn's end when no fetch comes, and a later claim waits until they are applied", async () => {
    const { table, spy, a, close } = await spiedSource('pridewait', 4);
    const never = new AbortController().signal;
    try {
      const held = await a.fetch(2, never);
      const applied = deferred<void>();
      spy.hold.set('ack', applied.promise);
      const acked = a.ackMany(held);
      // No fetch in this turn: the batcher sends them on their own at its setImmediate.
      while (!spy.names.includes('ack')) await new Promise((r) => setImmediate(r));
      expect(spy.names).toEqual(['claim', 'ack']);
      // A fetch now must not claim while that DELETE has not answered.
      const next = a.fetch(2, never);
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      expect(spy.names).toEqual(['claim', 'ack']);
      applied.resolve();
      expect(await acked).toBeUndefined();
      expect(await next).toHaveLength(2);
      expect(spy.names).toEqual(['claim', 'ack', 'claim']);
      expect(await admin.remaining(table)).toBe(2);
    } finally {
      await close();
    }
  });

  it('heartbeats of one turn extend in one fenced UPDATE: the rows still ours are kept, a row re-claimed by another consumer answers false and keeps its new lease', async () => {
    const table = uniqueTable('pbeat');
    await admin.fill(table, payloads(3));
    const a = await source(table);
    const b = await source(table);
    const never = new AbortController().signal;
    try {
      const held = await a.fetch(3, never);
      expect(held).toHaveLength(3);
      await admin.pool.query(`UPDATE "${table}" SET run_at = now() WHERE id = $1`, [held[1]!.id]);
      const taken = await b.fetch(3, never);
      expect(taken.map((m) => m.id)).toEqual([held[1]!.id]);
      // Issued in one turn: one statement carries the three (id, token) pairs.
      expect(await Promise.all(held.map((m) => a.heartbeat(m)))).toEqual([true, false, true]);
      // b's lease is b's: a's extension did not touch it, and b's ack still matches.
      expect(await b.ackMany(taken)).toBeUndefined();
      expect(await a.ackMany([held[0]!, held[2]!])).toBeUndefined();
      expect(await admin.remaining(table)).toBe(0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a batch handler whose messages lost their lease mid-batch: ackMany refuses those acks, the consumer counts them in leaseLost and acks the rest', async () => {
    const table = uniqueTable('pmanylease');
    await admin.fill(table, payloads(5));
    const thief = await source(table);
    const errors: string[] = [];
    let stolen: string | undefined;
    const consumer = track(
      consume<{ k: string }>(
        await source(table),
        async (items) => {
          // Another consumer takes one row whose lease expired (made due by hand here).
          stolen = items[1]!.message.id;
          await admin.pool.query(`UPDATE "${table}" SET run_at = now() WHERE id = $1`, [stolen]);
          const got = await thief.fetch(5, new AbortController().signal);
          expect(got.map((m) => m.id)).toEqual([stolen]);
        },
        {
          concurrency: 5,
          batch: { size: 5, maxWait: 1000 },
          onError: (e, op, m) => errors.push(`${op} ${m?.id} ${(e as { code?: string }).code}`),
        },
      ),
    );
    await until(
      () => consumer.stats().acked + consumer.stats().leaseLost === 5,
      'the batch settled',
      10_000,
    );
    const report = await consumer.close();
    await thief.close();
    expect(report.stats).toMatchObject({ acked: 4, leaseLost: 1, errors: 1, batches: 1 });
    expect(errors).toEqual([`ack ${stolen} ERR_LEASE_LOST`]);
    expect(await admin.remaining(table)).toBe(1); // the thief's, still leased to it
  });

  it('an error message with U+0000 is retried and dead-lettered (PostgreSQL text refuses NUL)', async () => {
    const table = uniqueTable('pnul');
    await admin.fill(table, [{ k: 'nul' }]);
    let runs = 0;
    const consumer = track(
      consume(
        await source(table),
        () => {
          runs++;
          throw new Error('bad byte \u0000 here');
        },
        { concurrency: 1, maxDeliveries: 2, backoff: { initial: 10, max: 10 }, onError: () => {} },
      ),
    );
    const until = Date.now() + 10_000;
    while ((await admin.deadLetters(table)).length === 0) {
      if (Date.now() > until) throw new Error('no dead letter within 10 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const report = await consumer.close();
    const [dead] = await admin.deadLetters(table);
    expect(dead!.error).toBe('bad byte \\u0000 here');
    expect(dead!.deliveries).toBe(2);
    expect(runs).toBe(2);
    expect(report.stats.errors).toBe(0);
    expect(await admin.remaining(table)).toBe(0);
  });

  it('migrate: false still opens the first pool connection before returning (the first claim waits for no connection set-up)', async () => {
    const table = uniqueTable('ppre');
    await admin.fill(table, payloads(1));
    const app = `sluice_pre_${process.pid}_${Date.now()}`;
    const count = async () =>
      (
        await admin.pool.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
          [app],
        )
      ).rows[0]!.n;
    const s = await source(table, {
      connectionString: `${PG_URL}?application_name=${app}`,
      migrate: false,
    });
    try {
      expect(await count()).toBe(2); // the listener's and the pool's first
      const held = await s.fetch(1, new AbortController().signal);
      expect(held).toHaveLength(1);
      expect(await count()).toBe(2); // the claim used it
      await s.ack(held[0]!);
    } finally {
      await s.close();
    }
  });

  it('a caller-owned pool is used and left open by close()', async () => {
    const table = uniqueTable('pown');
    await admin.fill(table, payloads(5));
    const ledger = new Ledger();
    const consumer = consume<{ k: string }>(
      await source(table, { pool: admin.pool }),
      ({ k }) => {
        ledger.add(k);
      },
      { concurrency: 2 },
    );
    await ledger.until(5);
    await consumer.close();
    expect((await admin.pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    expect(await admin.remaining(table)).toBe(0);
  });
});

describe('enqueueMany', () => {
  it('names the payload JSON cannot carry by its index, and refuses a non-array; nothing is inserted', async () => {
    const table = uniqueTable('many_bad');
    admin.track(table);
    await migrate(admin.pool, table);
    await expect(
      enqueueMany({ db: admin.pool, table }, [{ ok: 1 }, undefined as never]),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: /"payloads\[1\]"/ });
    await expect(enqueueMany({ db: admin.pool, table }, 'x' as never)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      message: /"payloads"/,
    });
    const { rows } = await admin.pool.query(`select count(*)::int as n from ${table}`);
    expect(rows[0].n).toBe(0);
  });
});

describe('PostgreSQL connection failures', () => {
  it("counts as a failed connection: pg's own texts, a socket error, a server ending or refusing the session (SQLSTATE 08xxx, 57P01-03, 57P05, 53300); a query's own error passes unchanged", () => {
    const server = (code: string) =>
      Object.assign(new Error('server said so'), { code, severity: 'FATAL' });
    const failed = [
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      Object.assign(new Error('connect ECONNREFUSED'), {
        code: 'ECONNREFUSED',
        syscall: 'connect',
      }),
      server('57P01'),
      server('57P05'), // idle_session_timeout
      server('53300'), // too_many_connections
      server('08006'),
    ];
    for (const original of failed) {
      expect(connectionError(original)).toMatchObject({
        code: 'ERR_NOT_CONNECTED',
        cause: original,
      });
    }
    const unique = Object.assign(new Error('duplicate key'), { code: '23505', severity: 'ERROR' });
    const lost = new LeaseLostError('1', 'ack');
    expect(connectionError(unique)).toBe(unique);
    expect(connectionError(lost)).toBe(lost);
    expect(connectionError('text')).toBe('text');
  });

  it("an ack whose connection is cut reaches onError as ERR_NOT_CONNECTED (pg's own error as cause), and the drain counts the message unsettled", async () => {
    const table = uniqueTable('cut_ack');
    await admin.fill(table, [{ k: 'a' }]);
    const proxy = await startFaultProxy({ port: 5432 });
    try {
      const source = await postgresSource({
        connectionString: `postgres://postgres@127.0.0.1:${proxy.port}/test`,
        table,
        connectTimeout: 2_000,
      });
      const running = deferred<void>();
      const finish = deferred<void>();
      const reported = deferred<Error>();
      const errors: Error[] = [];
      const consumer = consume(
        source,
        async () => {
          running.resolve();
          await finish.promise;
        },
        {
          concurrency: 1,
          onError: (error, op) => {
            errors.push(error);
            if (op === 'ack') reported.resolve(error);
          },
        },
      );
      await deadline(running.promise, 10_000, 'the handler running');
      const drained = consumer.drain();
      // PostgreSQL unreachable from now on: open connections reset, new ones refused.
      proxy.refuse();
      proxy.cut();
      finish.resolve();
      const error = await deadline(reported.promise, 10_000, 'the ack reported');
      expect(error).toBeInstanceOf(NotConnectedError);
      expect(error).toMatchObject({ code: 'ERR_NOT_CONNECTED' });
      expect(error.cause).toBeInstanceOf(Error);
      proxy.accept();
      const report = await deadline(drained, 10_000, 'the drain');
      expect(report).toMatchObject({ completed: 0, unsettled: 1 });
      for (const e of errors) expect(e).toMatchObject({ code: expect.stringMatching(/^ERR_/) });
      // Not acked: the row is still in the queue, delivered again once its lease ends.
      expect(await admin.remaining(table)).toBe(1);
    } finally {
      await proxy.close();
    }
  });
});
