/**
 * Property attack on consume(): one to four in-memory sources sharing one concurrency, one
 * message at a time or in batches (random size and maxWait), random per-message outcomes
 * (succeed, fail, malformed, left out of the batch's map, hostile throws of the whole call),
 * random maxDeliveries, and a shutdown at a random point (close, a drain with a short deadline,
 * abort), and sources with or without `ackMany` (all acked, some refused as lost leases, whole
 * calls rejected or thrown). Invariants: held never exceeds the cap (counted by the sources themselves, at every
 * fetch), every delivery is settled exactly once and on its own source, no batch is larger than
 * its size, the consumer's acked/leaseLost counts equal what the sources did, a close with nothing
 * left to do leaves every message acked or dead-lettered, and
 * nothing hangs or rejects unhandled, and abort listeners do not pile up on the signal the
 * consumer passes to every fetch.
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { type BatchItem, consume } from '../../src/brokers/consumer.js';
import type { BrokerMessage, BrokerSource } from '../../src/brokers/source.js';
import { MalformedMessageError } from '../../src/errors.js';
import {
  abortListeners,
  fuzzAssert,
  fuzzParams,
  makeThrown,
  THROWN_KINDS,
  testTimeout,
  UnhandledCounter,
  watchdog,
} from './harness.js';

type Outcome = 'ok' | 'fail' | 'malformed' | 'omit';
/**
 * The sources' `ackMany`: absent (ack per message), all acked, some refused (a lost lease: the
 * message comes back as the broker would redeliver it), or every other call failing as a whole
 * (rejected, or thrown synchronously: none acked, all come back).
 */
type AckMany = 'none' | 'ok' | 'refuse-some' | 'reject' | 'throw';

interface Case {
  sources: number[]; // messages per source
  concurrency: number;
  batch: { size: number; maxWait: number } | undefined;
  maxDeliveries: number;
  outcomes: Outcome[]; // by message number, cycled
  throwEvery: number; // every n-th handler call throws as a whole (0: never)
  thrown: (typeof THROWN_KINDS)[number];
  stop: 'close-when-done' | 'drain-early' | 'abort-early';
  stopAfter: number; // handler calls before an early stop
  ackMany: AckMany;
}

/** A queue that hands retries straight back (the delay is not the point here). */
class FuzzSource implements BrokerSource {
  readonly queue: BrokerMessage[] = [];
  readonly settled = new Map<string, string[]>(); // delivery → its settlements
  readonly final = new Map<string, 'ack' | 'deadLetter'>(); // message id → end state
  outstanding = 0;
  /** Acks that took effect (ack, or ackMany's acked entries): the consumer's `acked` must match. */
  acked = 0;
  /** ackMany entries refused with ERR_LEASE_LOST: the consumer's `leaseLost` must match. */
  refused = 0;
  #manyCalls = 0;
  #waiter: (() => void) | undefined;
  #seq = 0;

  constructor(
    readonly name: string,
    n: number,
    readonly shared: {
      outstanding: number;
      peak: number;
      cap: number;
      sources: number;
      violations: string[];
    },
  ) {
    for (let i = 0; i < n; i++) this.#put(`${name}-${i}`, 1);
  }

  #put(id: string, deliveryCount: number): void {
    const body = new TextEncoder().encode(JSON.stringify(Number(id.split('-')[1])));
    this.queue.push({ id, body, deliveryCount, delivery: `${id}#${this.#seq++}` } as never);
    this.#waiter?.();
  }

  async fetch(max: number, signal: AbortSignal): Promise<BrokerMessage[]> {
    // The sources share one signal: the other sources' waits in flight have one listener each,
    // and the consumer may have one of its own. More means listeners pile up per fetch.
    const listeners = abortListeners(signal);
    if (listeners > this.shared.sources) {
      this.shared.violations.push(`${listeners} abort listeners on the fetch signal`);
    }
    if (this.queue.length === 0 && !signal.aborted) {
      // A finite block time, as the source contract requires (a real broker's BLOCK / expires).
      // The abort listener goes when the wait ends, however it ends: the consumer passes one
      // signal to every fetch, and a listener left per empty fetch would pile up on it.
      const onAbort = () => this.#waiter?.();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
        signal.addEventListener('abort', onAbort, { once: true });
      });
      signal.removeEventListener('abort', onAbort);
      this.#waiter = undefined;
    }
    const out = this.queue.splice(0, max);
    this.outstanding += out.length;
    this.shared.outstanding += out.length;
    this.shared.peak = Math.max(this.shared.peak, this.shared.outstanding);
    if (this.shared.outstanding > this.shared.cap) {
      this.shared.violations.push(`held ${this.shared.outstanding} > ${this.shared.cap}`);
    }
    return out;
  }

  #settle(m: BrokerMessage, op: string): void {
    const key = (m as unknown as { delivery: string }).delivery;
    if (key === undefined || !key.startsWith(`${this.name}-`)) {
      this.shared.violations.push(`${op} of ${m.id} on the wrong source ${this.name}`);
      return;
    }
    const ops = [...(this.settled.get(key) ?? []), op];
    this.settled.set(key, ops);
    if (ops.length > 1) this.shared.violations.push(`${key} settled twice: ${ops.join(', ')}`);
    this.outstanding--;
    this.shared.outstanding--;
  }

  ack = async (m: BrokerMessage) => {
    this.#settle(m, 'ack');
    this.final.set(m.id, 'ack');
    this.acked++;
  };
  /** Set per case (see AckMany); undefined: the consumer acks one message at a time. */
  ackMany: BrokerSource['ackMany'];

  withAckMany(mode: AckMany): this {
    if (mode === 'none') return this;
    this.ackMany = (messages) => {
      const whole = (mode === 'reject' || mode === 'throw') && this.#manyCalls++ % 2 === 0;
      if (whole) {
        // None acked: the broker keeps them and delivers them again.
        for (const m of messages) {
          this.#settle(m, 'ackMany-failed');
          this.#put(m.id, m.deliveryCount + 1);
        }
        if (mode === 'throw') throw new Error('ackMany threw');
        return Promise.reject(new Error('ackMany rejected'));
      }
      const out = messages.map((m, i) => {
        if (mode === 'refuse-some' && (i + m.deliveryCount) % 3 === 0) {
          this.#settle(m, 'ackMany-refused');
          this.refused++;
          this.#put(m.id, m.deliveryCount + 1);
          return Object.assign(new Error('lease lost'), { code: 'ERR_LEASE_LOST' });
        }
        this.#settle(m, 'ackMany');
        this.final.set(m.id, 'ack');
        this.acked++;
        return undefined;
      });
      return Promise.resolve(out.some((e) => e !== undefined) ? out : undefined);
    };
    return this;
  }
  deadLetter = async (m: BrokerMessage) => {
    this.#settle(m, 'deadLetter');
    this.final.set(m.id, 'deadLetter');
  };
  retry = async (m: BrokerMessage) => {
    this.#settle(m, 'retry');
    this.#put(m.id, m.deliveryCount + 1);
  };
  release = async (m: BrokerMessage) => {
    this.#settle(m, 'release');
    this.#put(m.id, m.deliveryCount);
  };
  close = async () => {};
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    sources: fc.array(fc.integer({ min: 0, max: 25 }), { minLength: 1, maxLength: 4 }),
    concurrency: fc.integer({ min: 1, max: 8 }),
    batchSize: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
    maxWait: fc.constantFrom(0, 1, 3),
    maxDeliveries: fc.integer({ min: 1, max: 3 }),
    outcomes: fc.array(fc.constantFrom<Outcome>('ok', 'ok', 'ok', 'fail', 'malformed', 'omit'), {
      minLength: 1,
      maxLength: 7,
    }),
    throwEvery: fc.integer({ min: 0, max: 5 }),
    thrown: fc.constantFrom(...THROWN_KINDS),
    stop: fc.constantFrom('close-when-done', 'drain-early', 'abort-early') as fc.Arbitrary<
      Case['stop']
    >,
    stopAfter: fc.integer({ min: 0, max: 10 }),
    ackMany: fc.constantFrom<AckMany>('none', 'ok', 'refuse-some', 'reject', 'throw'),
  })
  .map((r) => ({
    ...r,
    batch:
      r.batchSize === undefined
        ? undefined
        : { size: Math.min(r.batchSize, r.concurrency), maxWait: r.maxWait },
  }));

async function runCase(c: Case): Promise<void> {
  const shared = {
    outstanding: 0,
    peak: 0,
    cap: c.concurrency,
    sources: c.sources.length,
    violations: [] as string[],
  };
  const sources = c.sources.map((n, i) =>
    new FuzzSource(`s${i}`, n, shared).withAckMany(c.ackMany),
  );
  const total = c.sources.reduce((a, b) => a + b, 0);
  let calls = 0;
  const early = { resolve: () => {} };
  const earlyStop = new Promise<void>((resolve) => {
    early.resolve = resolve;
  });
  const outcomeOf = (k: number): Outcome => c.outcomes[k % c.outcomes.length]!;
  const fail = (k: number, o: Outcome) =>
    o === 'malformed' ? new MalformedMessageError(`bad ${k}`) : new Error(`fail ${k}`);
  const callStart = () => {
    if (++calls === c.stopAfter) early.resolve();
    if (c.throwEvery > 0 && calls % c.throwEvery === 0) throw makeThrown(c.thrown);
  };
  const options = { concurrency: c.concurrency, maxDeliveries: c.maxDeliveries, onError: () => {} };
  const consumer = c.batch
    ? consume<number>(
        sources,
        async (items) => {
          if (items.length > c.batch!.size) {
            shared.violations.push(`batch of ${items.length} > size ${c.batch!.size}`);
          }
          callStart();
          await Promise.resolve();
          const map = new Map<BatchItem<number>, true | Error>();
          for (const item of items) {
            const o = outcomeOf(item.payload);
            if (o === 'ok') map.set(item, true);
            else if (o !== 'omit') map.set(item, fail(item.payload, o));
          }
          return map;
        },
        { ...options, batch: c.batch },
      )
    : consume<number>(
        sources,
        async (k) => {
          callStart();
          await Promise.resolve();
          const o = outcomeOf(k);
          if (o !== 'ok') throw fail(k, o);
        },
        options,
      );
  const finished = () => sources.reduce((sum, s) => sum + s.final.size, 0) === total;
  if (c.stop === 'close-when-done') {
    while (!finished()) await new Promise((r) => setTimeout(r, 1));
  } else {
    await Promise.race([earlyStop, new Promise((r) => setTimeout(r, 20))]);
  }
  const report =
    c.stop === 'abort-early'
      ? await consumer.abort(new Error('stop'))
      : await consumer.drain({ timeout: c.stop === 'drain-early' ? 5 : 10_000 });
  if (report.stats.peakHeld > c.concurrency) shared.violations.push('peakHeld over the cap');
  // Counts are exact, however the acks went (one at a time or through ackMany).
  const acked = sources.reduce((sum, s) => sum + s.acked, 0);
  const refused = sources.reduce((sum, s) => sum + s.refused, 0);
  if (report.stats.acked !== acked) {
    shared.violations.push(`stats.acked ${report.stats.acked} but the sources acked ${acked}`);
  }
  if (report.stats.leaseLost !== refused) {
    shared.violations.push(`stats.leaseLost ${report.stats.leaseLost} but ${refused} refused`);
  }
  if (shared.outstanding !== 0) shared.violations.push(`${shared.outstanding} never settled`);
  if (c.stop === 'close-when-done' && !finished()) shared.violations.push('not all finished');
  if (shared.violations.length > 0) throw new Error(shared.violations.slice(0, 5).join('; '));
}

describe('consume() under fuzz', () => {
  it(
    'several sources, batches, random outcomes and shutdowns: the cap holds, each delivery settles once on its own source',
    async () => {
      const unhandled = new UnhandledCounter();
      unhandled.install();
      try {
        await fuzzAssert(
          'consume',
          fc.asyncProperty(caseArb, (c) => watchdog(runCase(c), 'a consumer case', 5000)),
          fuzzParams(2),
        );
      } finally {
        unhandled.uninstall();
      }
      if (unhandled.reasons.length > 0) {
        throw new Error(`unhandled rejections: ${unhandled.reasons.length}`);
      }
    },
    testTimeout(120_000),
  );
});
