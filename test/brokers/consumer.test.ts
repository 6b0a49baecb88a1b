/**
 * The shared consumer loop on its own, over an in-memory BrokerSource (the broker-specific
 * behaviour is tested against real brokers in redis*.test.ts, postgres*.test.ts, …). Every wait
 * is on a latch or an event of the fake source — no sleeps.
 */
import diagnostics from 'node:diagnostics_channel';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { consume, jsonDecode } from '../../src/brokers/consumer.js';
import { LeaseLostError, MalformedMessageError, SettleTimeoutError } from '../../src/errors.js';
import { SLUICE_MESSAGE_SETTLED } from '../../src/index.js';
import { deadline } from '../fixtures/brokers/consumer-harness.js';
import { MemorySource, text } from '../fixtures/brokers/memory-source.js';
import { deferred, flush } from '../helpers.js';

/** A handler that never settles; `sawAbort` resolves once its signal aborts. */
const hungUntilAborted =
  (sawAbort: { resolve: () => void }) =>
  (_payload: unknown, { signal }: { signal: AbortSignal }) =>
    new Promise<void>(() => {
      signal.addEventListener('abort', () => sawAbort.resolve());
    });

describe('consume() loop', () => {
  it('rejects bad options at once, naming the option and value', () => {
    const s = new MemorySource();
    expect(() => consume(s, () => {}, { concurrency: 0 })).toThrow(
      /Invalid option "concurrency": expected a positive integer, got 0/,
    );
    expect(() => consume(s, () => {}, { concurrency: 2, maxDeliveries: 1.5 })).toThrow(RangeError);
    expect(() => consume(s, () => {}, { concurrency: 2, backoff: { factor: 0.5 } })).toThrow(
      /backoff.factor/,
    );
    expect(() => consume(s, () => {}, { concurrency: 2, maxBodySize: -1 })).toThrow(/maxBodySize/);
    expect(() => consume(s, 'nope' as never, { concurrency: 2 })).toThrow(TypeError);
  });

  it("a handler's promise whose constructor cannot be read fails that message; nothing stays running", async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const s = new MemorySource();
    s.push(JSON.stringify(1));
    const beats: string[] = [];
    Object.assign(s, {
      heartbeatInterval: 10,
      heartbeat: async (m: { id: string }) => {
        beats.push(m.id);
        return true;
      },
    });
    const c = consume(
      s,
      () => {
        const hostile = Promise.resolve();
        Object.defineProperty(hostile, 'constructor', {
          get() {
            throw new Error('no constructor');
          },
        });
        return hostile;
      },
      { concurrency: 1, maxDeliveries: 1 },
    );
    while (s.ops('deadLetter').length < 1) await flush();
    expect(c.stats()).toMatchObject({ running: 0, held: 0 });
    // A job left in the running set would go on being heartbeaten.
    vi.advanceTimersByTime(50);
    await flush();
    expect(beats).toEqual([]);
    expect((await c.close()).canceled).toBe(0);
  });

  it('asks the source for at most the free slots; held never exceeds concurrency', async () => {
    const s = new MemorySource();
    for (let i = 0; i < 20; i++) s.push(JSON.stringify(i));
    const gates = Array.from({ length: 20 }, () => deferred<void>());
    let n = 0;
    const c = consume(s, () => gates[n++]!.promise, { concurrency: 4 });
    await flush();
    expect(s.asked).toEqual([4]);
    expect(c.stats()).toMatchObject({ held: 4, running: 4 });
    gates[0]!.resolve();
    await flush();
    expect(s.asked).toEqual([4, 1]); // one slot freed (after its ack) → asks for exactly one
    for (const g of gates) g.resolve();
    while (s.ops('ack').length < 20) await flush();
    const report = await c.close();
    expect(report.stats.peakHeld).toBe(4);
    expect(Math.max(...s.asked)).toBeLessThanOrEqual(4);
    expect(s.closed).toBe(true);
  });

  it('orderedAcks: a slot frees when its ack is issued (the ack rides with the next fetch); drain waits for the ack', async () => {
    const s = new MemorySource();
    (s as { orderedAcks?: boolean }).orderedAcks = true;
    const ackGate = deferred<void>();
    s.ack = async (m) => {
      await ackGate.promise;
      s.calls.push({ op: 'ack', id: m.id });
    };
    s.push('1', '2');
    const c = consume(s, () => {}, { concurrency: 2 });
    while (s.asked.length < 2) await flush();
    // Both handlers are done and their acks are unconfirmed, yet the loop asked for 2 more.
    expect(s.asked).toEqual([2, 2]);
    expect(c.stats()).toMatchObject({ held: 0, acking: 2, acked: 0 });
    const drained = c.close();
    await flush();
    expect(s.closed).toBe(false); // still waiting for the two acks
    ackGate.resolve();
    const report = await drained;
    expect(report.stats).toMatchObject({ acked: 2, acking: 0, peakHeld: 2 });
    expect(s.closed).toBe(true);
  });

  it("orderedAcks: a full loop's next fetch starts before the source's own flush of the acks that freed it (so the acks can ride with that fetch)", async () => {
    const s = new MemorySource();
    (s as { orderedAcks?: boolean }).orderedAcks = true;
    const log: string[] = [];
    // Like the PostgreSQL and Redis sources: the acks of one turn are sent at its setImmediate,
    // unless a fetch takes them first.
    let pending: string[] = [];
    const queueAck = (ids: string[]) => {
      if (pending.length === 0) {
        const batch = pending; // a fetch that takes the acks starts a new batch
        setImmediate(() => batch === pending && log.push('flush'));
      }
      pending.push(...ids);
    };
    (s as { ackMany?: unknown }).ackMany = async (ms: { id: string }[]) =>
      queueAck(ms.map((m) => m.id));
    s.ack = async (m) => void queueAck([m.id]);
    const fetch = s.fetch.bind(s);
    s.fetch = (max, signal) => {
      log.push(pending.length > 0 ? `fetch with ${pending.length} acks` : 'fetch');
      pending = [];
      return fetch(max, signal);
    };
    s.push('1', '2', '3', '4');
    // The handlers end in a later turn than their fetch (as any handler doing I/O does): the
    // loop, full, is waiting when their acks free the slots.
    let gate = deferred<void>();
    const c = consume(s, () => gate.promise, { concurrency: 2 });
    for (let fetches = 1; fetches <= 2; fetches++) {
      while (s.asked.length < fetches) await flush();
      await flush();
      const done = gate;
      gate = deferred<void>();
      done.resolve();
    }
    while (s.asked.length < 3) await flush();
    // Both slots free in one turn, and the next fetch takes the two acks before the turn's
    // flush (the third fetch finds the queue empty: it waits).
    expect(log).toEqual(['fetch', 'fetch with 2 acks', 'fetch with 2 acks']);
    expect((await c.close()).stats).toMatchObject({ acked: 4, acking: 0 });
  });

  it('a handler is called as a plain function (this undefined) and its native promise adopted with the built-in then, in both forms', async () => {
    const s = new MemorySource();
    s.push('1', '2', '3', '4');
    const seen: unknown[] = [];
    let ownThenCalls = 0;
    // A native promise whose own `then` (never called by await) would settle it at once.
    const withOwnThen = <V>(value: V) => {
      const p = Promise.resolve(value);
      // biome-ignore lint/suspicious/noThenProperty: a native promise's own then, never called.
      (p as { then: unknown }).then = () => {
        ownThenCalls++;
      };
      return p;
    };
    const c = consume(
      s,
      function (this: unknown) {
        seen.push(this);
        return withOwnThen('done');
      },
      { concurrency: 2 },
    );
    while (s.ops('ack').length < 4) await flush();
    await c.close();
    expect(seen).toEqual([undefined, undefined, undefined, undefined]);
    expect(ownThenCalls).toBe(0);

    const b = new MemorySource();
    b.push('1', '2', '3');
    const batchThis: unknown[] = [];
    const batches = consume(
      b,
      function (this: unknown) {
        batchThis.push(this);
        return withOwnThen(undefined);
      },
      { concurrency: 3, batch: { size: 3 } },
    );
    while (b.ops('ack').length < 3) await flush();
    await batches.close();
    expect(batchThis.every((t) => t === undefined)).toBe(true);
    expect(ownThenCalls).toBe(0);
  });

  it('retries with the backoff, then dead-letters with the error after maxDeliveries', async () => {
    const s = new MemorySource();
    s.push(
      { id: 'a', body: '1', deliveryCount: 1 },
      { id: 'b', body: '1', deliveryCount: 2 },
      { id: 'c', body: '1', deliveryCount: 3 },
    );
    const c = consume(
      s,
      () => {
        throw new Error('boom');
      },
      { concurrency: 3, maxDeliveries: 3, backoff: { initial: 100, factor: 2, jitter: 0 } },
    );
    while (s.calls.length < 3) await flush();
    await c.close();
    expect(s.calls.sort((x, y) => x.id.localeCompare(y.id))).toEqual([
      { op: 'retry', id: 'a', delay: 100, error: 'boom' },
      { op: 'retry', id: 'b', delay: 200, error: 'boom' },
      { op: 'deadLetter', id: 'c', error: 'boom' },
    ]);
  });

  it('a backoff function returning NaN or a negative delay is reported and the default backoff used; a huge one is capped', async () => {
    const s = new MemorySource();
    s.push(
      { id: 'nan', body: '1', deliveryCount: 1 },
      { id: 'neg', body: '1', deliveryCount: 2 },
      { id: 'inf', body: '1', deliveryCount: 3 },
    );
    const reported: { op: string; message: string }[] = [];
    const delays: Record<number, number> = { 1: Number.NaN, 2: -5, 3: Number.POSITIVE_INFINITY };
    const c = consume(
      s,
      () => {
        throw new Error('boom');
      },
      {
        concurrency: 3,
        maxDeliveries: 9,
        backoff: (n) => delays[n]!,
        onError: (e, op) => reported.push({ op, message: e.message }),
      },
    );
    while (s.calls.length < 3) await flush();
    await c.close();
    // Still handed back (with the default backoff), or a push broker would keep the message.
    const byId = Object.fromEntries(s.calls.map((call) => [call.id, call]));
    expect(byId.inf).toEqual({ op: 'retry', id: 'inf', delay: 2_147_483_647, error: 'boom' });
    expect(byId.nan).toMatchObject({ op: 'retry', error: 'boom' });
    expect(byId.nan!.delay).toBeGreaterThanOrEqual(500);
    expect(byId.nan!.delay).toBeLessThanOrEqual(1000);
    expect(byId.neg).toMatchObject({ op: 'retry', error: 'boom' });
    expect(byId.neg!.delay).toBeGreaterThanOrEqual(1000);
    expect(byId.neg!.delay).toBeLessThanOrEqual(2000);
    expect(reported.sort((x, y) => x.message.localeCompare(y.message))).toEqual([
      {
        op: 'retry',
        message: expect.stringMatching(/returned -5 for delivery 2: expected a number of ms >= 0/),
      },
      { op: 'retry', message: expect.stringMatching(/returned NaN for delivery 1/) },
    ]);
  });

  it('a fetch failing with a misuse code (e.g. a closed source) is reported once and drains the consumer', async () => {
    const s = new MemorySource();
    s.fetchError = Object.assign(new Error('the source is closed'), { code: 'ERR_INVALID_STATE' });
    const reported: string[] = [];
    const c = consume(s, () => {}, {
      concurrency: 2,
      onError: (e, op) => reported.push(`${op}: ${e.message}`),
    });
    const report = await deadline(c.done, 2000, 'the consumer to stop by itself');
    expect(reported).toEqual(['fetch: the source is closed']);
    expect(s.asked).toEqual([2]);
    expect(report.completed).toBe(0);
    expect(c.closed).toBe(true);
  });

  it('a message delivered past maxDeliveries (its dead-lettering failed before) is dead-lettered again without running, as ERR_DELIVERY_LIMIT', async () => {
    const s = new MemorySource();
    s.push({ id: 'again', body: '1', deliveryCount: 4 });
    let runs = 0;
    const c = consume(s, () => void runs++, { concurrency: 1, maxDeliveries: 3 });
    while (s.calls.length < 1) await flush();
    await c.close();
    expect(runs).toBe(0);
    expect(s.calls).toEqual([
      {
        op: 'deadLetter',
        id: 'again',
        error:
          'delivered 4 times, over maxDeliveries 3: earlier deliveries ended without a result (the process died holding it, or a dead-lettering failed)',
        code: 'ERR_DELIVERY_LIMIT',
      },
    ]);
  });

  it('a source whose fetch returns nothing at once does not starve the event loop', async () => {
    let fetches = 0;
    const broken = Object.assign(new MemorySource(), {
      fetch: async () => {
        fetches++;
        return [];
      },
    });
    const c = consume(broken, () => {}, { concurrency: 1 });
    // With a microtask-only loop this timer would never fire and the test would time out.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await c.close();
    expect(fetches).toBeGreaterThan(1);
  });

  it('dead-letters malformed messages at once (decode or handler throwing MalformedMessageError)', async () => {
    const s = new MemorySource();
    s.push('{bad', '"x"', '"invalid"');
    const c = consume<string>(
      s,
      (p) => {
        if (p === 'invalid') throw new MalformedMessageError('payload is not valid');
      },
      { concurrency: 2, maxDeliveries: 5 },
    );
    while (s.calls.length < 3) await flush();
    const report = await c.close();
    expect(s.ops('ack')).toHaveLength(1);
    expect(s.ops('deadLetter').map((x) => x.error)).toEqual([
      expect.stringMatching(/^message body is not JSON/),
      'payload is not valid',
    ]);
    expect(report.stats).toMatchObject({ malformed: 2, deadLettered: 2, retried: 0 });
  });

  it('drain: running handlers finish and are acked; messages fetched after the drain began are released and counted', async () => {
    const s = new MemorySource();
    s.push('1', '2');
    const gate = deferred<void>();
    const c = consume(s, () => gate.promise, { concurrency: 4 });
    await flush();
    // The next fetch (2 free slots) is in flight when the drain starts, and then returns 2.
    const fetchHeld = deferred<void>();
    s.gate = fetchHeld.promise;
    s.push('3', '4');
    const drained = c.drain();
    fetchHeld.resolve();
    await flush();
    gate.resolve();
    const report = await drained;
    expect(s.ops('ack')).toHaveLength(2);
    expect(s.ops('release')).toHaveLength(2);
    expect(report).toMatchObject({ completed: 2, released: 2, canceled: 0 });
    expect(report.stats.fetched).toBe(4);
  });

  it("a shutdown report's completed counts from the call, per message: 0 when all settled before it, an ack in flight at the call counted, a batch counted per message", async () => {
    const idle = new MemorySource();
    idle.push('1', '2', '3');
    const a = consume<number>(idle, () => undefined, { concurrency: 3 });
    while (a.stats().acked < 3) await flush();
    expect(await a.close()).toMatchObject({ completed: 0, stats: { acked: 3 } });

    const inFlight = new MemorySource();
    const ackHeld = deferred<void>();
    const ackCalled = deferred<void>();
    inFlight.ack = async (m) => {
      ackCalled.resolve();
      await ackHeld.promise;
      inFlight.calls.push({ op: 'ack', id: m.id });
    };
    inFlight.push('1');
    const b = consume<number>(inFlight, () => undefined, { concurrency: 1 });
    await ackCalled.promise;
    const closing = b.close();
    ackHeld.resolve();
    expect(await closing).toMatchObject({ completed: 1, stats: { acked: 1 } });

    const batched = new MemorySource();
    batched.push('1', '2', '3');
    const started = deferred<void>();
    const finish = deferred<void>();
    const c = consume<number>(
      batched,
      async () => {
        started.resolve();
        await finish.promise;
      },
      { concurrency: 3, batch: { size: 3 } },
    );
    await started.promise;
    const draining = c.drain();
    finish.resolve();
    expect(await draining).toMatchObject({ completed: 3, stats: { batches: 1, acked: 3 } });
  });

  it('drain({ timeout }): handlers still running at the deadline are canceled (signal aborted) and released', async () => {
    const s = new MemorySource();
    s.push('1');
    const sawAbort = deferred<void>();
    const c = consume(s, hungUntilAborted(sawAbort), { concurrency: 2 });
    await flush();
    const report = await c.drain({ timeout: 20 });
    await sawAbort.promise;
    expect(report).toMatchObject({ completed: 0, canceled: 1, released: 0 });
    expect(s.ops('release')).toHaveLength(1);
    expect(s.ops('retry')).toHaveLength(0);
  });

  it("a later drain({ timeout }) bounds a plain drain() already under way (the earliest deadline wins, as a Pool's), and returns the same report", async () => {
    const s = new MemorySource();
    s.push('1');
    const sawAbort = deferred<void>();
    const c = consume(s, hungUntilAborted(sawAbort), { concurrency: 2 });
    await flush();
    const plain = c.drain(); // SIGTERM: would wait for the hung handler for ever
    const forced = c.drain({ timeout: 0 }); // the second signal
    await sawAbort.promise;
    expect(forced).toBe(plain);
    expect(await forced).toMatchObject({ completed: 0, canceled: 1 });
  });

  it('a custom source whose fetch returns more than max: the extra are released unstarted and reported (ERR_INVALID_RETURN_VALUE); held never exceeds concurrency', async () => {
    class Greedy extends MemorySource {
      override async fetch(max: number, signal: AbortSignal) {
        const wanted = await super.fetch(max, signal);
        // A buggy source: everything it has, whatever it was asked for.
        return [...wanted, ...this.queue.splice(0)];
      }
    }
    const s = new Greedy();
    for (let i = 0; i < 10; i++) s.push(String(i));
    const gates = Array.from({ length: 10 }, () => deferred<void>());
    const started: number[] = [];
    const errors: { op: string; code: unknown; message: string }[] = [];
    const c = consume(
      s,
      (n: number) => {
        started.push(n);
        return gates[n]!.promise;
      },
      {
        concurrency: 3,
        onError: (e, op) =>
          errors.push({ op, code: (e as { code?: unknown }).code, message: e.message }),
      },
    );
    while (started.length < 3) await flush();
    await flush();
    expect(c.stats().peakHeld).toBe(3); // was 10: every message returned was held
    while (s.ops('release').length < 7) await flush();
    expect(s.asked).toEqual([3]);
    expect(started).toEqual([0, 1, 2]);
    // The 7 released were fetched too: fetched = released + held.
    expect(c.stats()).toMatchObject({ fetched: 10, held: 3, peakHeld: 3, released: 7 });
    expect(errors).toEqual([
      {
        op: 'fetch',
        code: 'ERR_INVALID_RETURN_VALUE',
        message: expect.stringContaining('returned 10 messages when asked for at most 3'),
      },
    ]);
    for (const g of gates) g.resolve();
    while (s.ops('ack').length < 3) await flush();
    await c.close();
    expect(c.stats().peakHeld).toBe(3);
  });

  it('a custom source whose fetch returns a frozen array of more than max: the extra are released, the first max run (the array is not modified)', async () => {
    class FrozenGreedy extends MemorySource {
      override async fetch(max: number, signal: AbortSignal) {
        const wanted = await super.fetch(max, signal);
        return Object.freeze([...wanted, ...this.queue.splice(0)]) as never;
      }
    }
    const s = new FrozenGreedy();
    for (let i = 0; i < 5; i++) s.push(String(i));
    const started: number[] = [];
    const errors: unknown[] = [];
    const c = consume(s, (n: number) => void started.push(n), {
      concurrency: 2,
      onError: (e) => errors.push((e as { code?: unknown }).code),
    });
    while (s.ops('release').length < 3 || s.ops('ack').length < 2) await flush();
    await c.close();
    expect(started).toEqual([0, 1]);
    expect(errors).toEqual(['ERR_INVALID_RETURN_VALUE']);
    expect(c.stats()).toMatchObject({ fetched: 5, released: 3, acked: 2, held: 0 });
  });

  it('a custom source whose fetch resolves with no array of messages, or rejects with a value whose code getter throws, fails that fetch (reported, retried): the consumer goes on and close() returns', async () => {
    const trap = () => {
      throw new Error('trap');
    };
    const answers: [string, () => unknown, unknown][] = [
      ['undefined', () => undefined, 'ERR_INVALID_RETURN_VALUE'],
      ['an array-like', () => ({ length: 1 }), 'ERR_INVALID_RETURN_VALUE'],
      ['an array holding null', () => [null], 'ERR_INVALID_RETURN_VALUE'],
      [
        'an array Proxy whose reading throws',
        () => new Proxy([], { get: (_, k) => (k === 'then' ? undefined : trap()) }),
        'ERR_INVALID_RETURN_VALUE',
      ],
      [
        'a rejection whose code getter throws',
        () =>
          Promise.reject(
            new Proxy(new Error('down'), {
              get: (target, k) => (k === 'code' ? trap() : Reflect.get(target, k)),
            }),
          ),
        'unreadable',
      ],
    ];
    for (const [label, answer, code] of answers) {
      class Broken extends MemorySource {
        broken = true;
        override async fetch(max: number, signal: AbortSignal) {
          if (!this.broken) return super.fetch(max, signal);
          this.broken = false;
          return answer() as never;
        }
      }
      const s = new Broken();
      s.push('1');
      const errors: { op: string; code: unknown }[] = [];
      const c = consume(s, () => undefined, {
        concurrency: 2,
        onError: (e, op) => {
          let code: unknown;
          try {
            code = (e as { code?: unknown }).code;
          } catch {
            code = 'unreadable';
          }
          errors.push({ op, code });
        },
      });
      while (s.ops('ack').length < 1) await flush();
      const report = await c.close();
      expect({ label, errors }).toEqual({ label, errors: [{ op: 'fetch', code }] });
      expect(report.stats).toMatchObject({ held: 0, acked: 1 });
    }
  });

  it("a fetch's array is read by index: its own iterator, which could yield other values or never end, is not called", async () => {
    class Iterating extends MemorySource {
      override async fetch(max: number, signal: AbortSignal) {
        const messages = await super.fetch(max, signal);
        const junk = { id: 'junk', body: text('junk'), deliveryCount: 1 };
        return Object.assign(messages, {
          *[Symbol.iterator]() {
            yield* messages.values();
            yield junk;
            yield junk;
          },
        });
      }
    }
    const s = new Iterating();
    s.push('1');
    const errors: string[] = [];
    const c = consume(s, () => undefined, {
      concurrency: 4,
      onError: (_e, op) => errors.push(op),
    });
    while (s.ops('ack').length < 1) await flush();
    const report = await c.close();
    expect(report.stats).toMatchObject({ fetched: 1, acked: 1, held: 0, deadLettered: 0 });
    expect(s.calls.map((call) => call.id)).not.toContain('junk');
    expect(errors).toEqual([]);
  });

  it("a custom source's settle or heartbeat that answers synchronously — a plain value, a throw, a value whose then getter throws — is settled and reported, never thrown out of the consumer", async () => {
    const trap = () => {
      throw new Error('trap');
    };
    const hostile = () => new Proxy({}, { get: trap });
    const cases: [string, (s: MemorySource) => void, Record<string, unknown>][] = [
      ['ack returning undefined', (s) => (s.ack = (() => undefined) as never), { acked: 2 }],
      ['ack returning a hostile value', (s) => (s.ack = hostile as never), { unsettled: 2 }],
      [
        // Reached through a fetch returning one message past `max`: that one is released at once.
        'release throwing',
        (s) => {
          s.release = trap as never;
          s.push('3');
          const fetch = s.fetch.bind(s);
          s.fetch = (max, signal) => fetch(max + 1, signal);
        },
        { released: 0, fetched: 3, acked: 2 },
      ],
      [
        'ackMany returning a hostile value',
        (s) => Object.assign(s, { ackMany: hostile }),
        { unsettled: 2 },
      ],
      [
        'heartbeat throwing',
        (s) => Object.assign(s, { heartbeatInterval: 1, heartbeat: trap }),
        { acked: 2 },
      ],
      [
        'heartbeat returning a hostile value',
        (s) => Object.assign(s, { heartbeatInterval: 1, heartbeat: hostile }),
        { acked: 2 },
      ],
    ];
    for (const [label, setUp, expected] of cases) {
      const s = new MemorySource();
      setUp(s);
      s.push('1', '2');
      const errors: string[] = [];
      const release = deferred<void>();
      const c = consume(s, () => release.promise, {
        concurrency: 2,
        onError: (_e, op) => errors.push(op),
      });
      while (c.stats().running < 2) await flush();
      // The call under test has failed and been reported (a heartbeat: on its 1 ms timer).
      const op = label.split(' ')[0] as string;
      if (op === 'heartbeat' || op === 'release') {
        while (!errors.includes(op)) await new Promise((r) => setTimeout(r, 1));
      }
      release.resolve();
      while (c.stats().held > 0) await flush();
      const report = await c.close();
      expect({ label, stats: report.stats }).toMatchObject({
        label,
        stats: { held: 0, ...expected },
      });
      if (label.startsWith('heartbeat')) expect(errors).toContain('heartbeat');
    }
  });

  it("a custom source's message whose fields cannot be read (a getter or Proxy that throws) is dead-lettered as malformed; the rest of its fetch runs and close() returns", async () => {
    const trap = () => {
      throw new Error('trap');
    };
    const cases: [string, () => object][] = [
      [
        'a throwing deliveryCount getter',
        () => ({
          id: 'x',
          body: text('x'),
          get deliveryCount() {
            return trap();
          },
        }),
      ],
      ['a Proxy whose every read throws', () => new Proxy({}, { get: trap })],
    ];
    for (const withSubscriber of [false, true]) {
      for (const [label, hostile] of cases) {
        const published: string[] = [];
        const subscriber = (m: unknown) => published.push((m as { outcome: string }).outcome);
        if (withSubscriber) diagnostics.subscribe(SLUICE_MESSAGE_SETTLED, subscriber);
        try {
          const s = new MemorySource();
          s.push('1');
          s.queue.push(hostile() as never);
          s.push('2');
          const errors: string[] = [];
          const c = consume(s, () => undefined, {
            concurrency: 4,
            onError: (_e, op) => errors.push(op),
          });
          while (s.ops('ack').length < 2) await flush();
          const report = await deadline(c.close(), 5_000, `close() after ${label}`);
          expect({ label, stats: report.stats }).toMatchObject({
            label,
            stats: { held: 0, fetched: 3, acked: 2, malformed: 1 },
          });
          // Its dead letter is handed to the source, which settles or refuses it.
          expect(report.stats.deadLettered + report.stats.unsettled).toBe(1);
          if (withSubscriber) expect(published).toHaveLength(3);
        } finally {
          if (withSubscriber) diagnostics.unsubscribe(SLUICE_MESSAGE_SETTLED, subscriber);
        }
      }
    }
  });

  it('close() returns promptly while the fetch waits on an empty queue', async () => {
    const s = new MemorySource();
    const c = consume(s, () => {}, { concurrency: 2 });
    await flush();
    expect(s.asked).toEqual([2]);
    const report = await c.close();
    expect(report).toMatchObject({ completed: 0, released: 0, canceled: 0 });
    expect(c.closed).toBe(true);
    await expect(c.done).resolves.toBe(report);
  });

  it('a heartbeat answering false (lease lost) aborts the handler; the message is neither acked nor retried', async () => {
    const s = new MemorySource();
    s.heartbeatInterval = 5;
    s.heartbeat = async () => false;
    s.push('1');
    const aborted = deferred<unknown>();
    const c = consume(
      s,
      (_p, { signal }) =>
        new Promise<void>((_, reject) => {
          signal.addEventListener('abort', () => {
            aborted.resolve(signal.reason);
            reject(signal.reason);
          });
        }),
      { concurrency: 1 },
    );
    const reason = (await aborted.promise) as Error;
    // The signal's reason is coded, as every error a broker consumer reports.
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect(reason).toMatchObject({
      code: 'ERR_LEASE_LOST',
      messageId: 'm0-1',
      message: expect.stringMatching(/lease was lost/),
    });
    while (c.stats().held > 0) await flush();
    const report = await c.close();
    expect(s.calls).toEqual([]);
    expect(report.stats.leaseLost).toBe(1);
  });

  it('a failing fetch is reported through onError and retried; the loop goes on', async () => {
    const s = new MemorySource();
    s.fetchError = new Error('connection refused');
    const errors: string[] = [];
    const done = deferred<void>();
    s.push('1');
    const c = consume(s, () => done.resolve(), {
      concurrency: 1,
      onError: (e, op) => errors.push(`${op}: ${e.message}`),
    });
    await done.promise;
    await c.close();
    expect(errors).toEqual(['fetch: connection refused']);
    expect(s.ops('ack')).toHaveLength(1);
  });

  it('aborting the signal option drains the consumer', async () => {
    const s = new MemorySource();
    const ac = new AbortController();
    const c = consume(s, () => {}, { concurrency: 1, signal: ac.signal });
    ac.abort();
    const report = await c.done;
    expect(report.stats.fetched).toBe(0);
    expect(s.closed).toBe(true);
  });

  it('drainTimeout 0: when the signal aborts, running handlers are canceled at once and released, with no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const s = new MemorySource();
      s.push('1');
      const started = deferred<void>();
      const ac = new AbortController();
      const c = consume(
        s,
        (_p, { signal }) =>
          new Promise<void>((_resolve, reject) => {
            started.resolve();
            signal.addEventListener('abort', () => reject(signal.reason));
          }),
        { concurrency: 1, signal: ac.signal, drainTimeout: 0 },
      );
      await started.promise;
      ac.abort();
      const report = await c.done;
      expect(report).toMatchObject({ completed: 0, canceled: 1 });
      expect(s.ops('release')).toHaveLength(1);
      await expect(c.close()).resolves.toBe(report);
      await flush();
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('drain() with a bad timeout rejects naming it and leaves the consumer running', async () => {
    const s = new MemorySource();
    const c = consume(s, () => {}, { concurrency: 1 });
    await expect(c.drain({ timeout: -1 })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(/^Invalid option "timeout"/),
    });
    await expect(c.drain('x' as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(c.closed).toBe(false);
    await c.close();
  });

  it("a source's heartbeat interval that is not a number of ms > 0 is refused at construction, naming it", () => {
    for (const every of [0, -5, Number.NaN, '5000']) {
      const s = new MemorySource();
      s.heartbeatInterval = every as number;
      s.heartbeat = async () => {};
      // Was taken: Node's setInterval beat every 1 ms, for every running message.
      expect(() => consume(s, () => {}, { concurrency: 1 })).toThrow(
        expect.objectContaining({
          code: 'ERR_INVALID_OPTION',
          message: expect.stringMatching(/^Invalid option "heartbeatInterval".*got /),
        }),
      );
    }
  });

  it("a source's heartbeat interval past the longest timer beats at that timer's delay, not every millisecond", async () => {
    const s = new MemorySource();
    s.heartbeatInterval = 1e12 / 3;
    let beats = 0;
    s.heartbeat = async () => {
      beats++;
    };
    s.push('1');
    const release = deferred<void>();
    const started = deferred<void>();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const c = consume(
        s,
        () => {
          started.resolve();
          return release.promise;
        },
        { concurrency: 1 },
      );
      await started.promise;
      await new Promise((r) => setTimeout(r, 30));
      expect(beats).toBe(0);
      release.resolve();
      await c.close();
      await flush();
      expect(warnings).not.toContain('TimeoutOverflowWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('abort() cancels running handlers and hands their messages back', async () => {
    const s = new MemorySource();
    s.push('1', '2');
    const c = consume(
      s,
      (_p, { signal }) => new Promise((r) => signal.addEventListener('abort', r)),
      {
        concurrency: 2,
      },
    );
    await flush();
    const report = await c.abort(new Error('shutdown'));
    expect(report.canceled).toBe(2);
    expect(s.ops('release')).toHaveLength(2);
  });

  it('a handler error whose code getter throws, while the consumer stops, is still settled once', async () => {
    const s = new MemorySource();
    s.push('1');
    const hostile = new Error('boom');
    Object.defineProperty(hostile, 'code', {
      get() {
        throw new Error('no code for you');
      },
    });
    const c = consume(
      s,
      (_p, { signal }) =>
        new Promise((_r, reject) => signal.addEventListener('abort', () => reject(hostile))),
      { concurrency: 1, onError: () => {} },
    );
    await flush();
    await c.abort(new Error('shutdown'));
    // Settled once (handed back), and nothing thrown while classifying the error.
    expect(s.calls.map((call) => call.op)).toEqual(['release']);
  });

  it('jsonDecode: JSON in, MalformedMessageError for anything else', () => {
    expect(jsonDecode(text('{"a":1}'))).toEqual({ a: 1 });
    expect(() => jsonDecode(new Uint8Array([0xff]))).toThrow(MalformedMessageError);
    expect(() => jsonDecode(text('nope'))).toThrow(/not JSON/);
  });
});

describe('consume(): settles the broker did not confirm', () => {
  /** A source whose ack, retry and dead letter fail as in an outage (or refuse a lost lease). */
  function failingSettles(s: MemorySource, withAckMany: boolean): void {
    const timeout = (op: 'ack' | 'retry' | 'dead-letter', m: { id: string }) =>
      new SettleTimeoutError(op, `message ${m.id}`, 1_000);
    s.ack = async (m) => {
      throw m.id === 'lost' ? new LeaseLostError(m.id, 'ack') : timeout('ack', m);
    };
    s.retry = async (m) => {
      throw timeout('retry', m);
    };
    s.deadLetter = async (m) => {
      throw timeout('dead-letter', m);
    };
    if (withAckMany) {
      (s as { ackMany?: unknown }).ackMany = async (ms: { id: string }[]) =>
        ms.map((m) => (m.id === 'lost' ? new LeaseLostError(m.id, 'ack') : timeout('ack', m)));
    }
  }

  it.each([
    ['one ack call per message', false],
    ['ackMany', true],
  ] as const)(
    'a drain whose handlers finished but whose acks, retries and dead letters failed reports them as unsettled (%s), and only those',
    async (_how, withAckMany) => {
      const s = new MemorySource();
      failingSettles(s, withAckMany);
      s.push(
        { id: 'ok', body: '"ok"', deliveryCount: 1 },
        { id: 'lost', body: '"ok"', deliveryCount: 1 },
        { id: 'again', body: '"fail"', deliveryCount: 1 },
        { id: 'last', body: '"fail"', deliveryCount: 3 },
      );
      const go = deferred<void>();
      const started = deferred<void>();
      let running = 0;
      const codes: string[] = [];
      const c = consume<string>(
        s,
        async (payload) => {
          if (++running === 4) started.resolve();
          await go.promise;
          if (payload === 'fail') throw new Error('handler failed');
        },
        {
          concurrency: 4,
          maxDeliveries: 3,
          onError: (e) => codes.push((e as { code?: string }).code ?? e.message),
        },
      );
      await deadline(started.promise, 5_000, 'four handlers running');
      const drained = c.drain();
      go.resolve();
      const report = await drained;
      expect(report).toMatchObject({ completed: 0, released: 0, canceled: 0, unsettled: 4 });
      expect(report.stats).toMatchObject({ acked: 0, leaseLost: 1, unsettled: 4, errors: 4 });
      expect(codes.sort()).toEqual([
        'ERR_LEASE_LOST',
        'ERR_SETTLE_TIMEOUT',
        'ERR_SETTLE_TIMEOUT',
        'ERR_SETTLE_TIMEOUT',
      ]);
    },
  );

  it('a confirmed ack, or a canceled message whose release failed, is not counted as unsettled', async () => {
    const s = new MemorySource();
    s.release = async () => {
      throw new Error('release failed');
    };
    s.push('"fast"', '"slow"');
    const slowRunning = deferred<void>();
    const c = consume<string>(
      s,
      (payload, { signal }) => {
        if (payload === 'fast') return;
        slowRunning.resolve();
        return new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
        );
      },
      { concurrency: 2, onError: () => {} },
    );
    await deadline(slowRunning.promise, 5_000, 'the slow handler running');
    while (s.ops('ack').length < 1) await flush();
    const report = await c.drain({ timeout: 0 });
    expect(report).toMatchObject({ canceled: 1, unsettled: 0 });
    expect(report.stats).toMatchObject({ acked: 1, unsettled: 0, errors: 1 });
  });
});
