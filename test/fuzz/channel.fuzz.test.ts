/**
 * Model-based attack on Channel: random send / trySend / receive / tryReceive / close and
 * signal aborts (signals shared between operations) against an exact model of Go's semantics.
 * Every operation's outcome must be the model's: nothing lost, duplicated or reordered.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, it } from 'vitest';
import { AbortError, Channel, ChannelClosedError } from '../../src/index.js';
import {
  abortListeners,
  flush,
  fuzzAssert,
  fuzzParams,
  runCommands,
  testTimeout,
  UnhandledCounter,
  Violations,
} from './harness.js';

type Command =
  | { t: 'send'; signal: number | undefined }
  | { t: 'trySend' }
  | { t: 'receive'; signal: number | undefined }
  | { t: 'tryReceive' }
  | { t: 'close' }
  | { t: 'abort'; signal: number }
  | { t: 'tick' };

const signalArb = fc.option(fc.nat(1), { nil: undefined });
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: signalArb.map((signal): Command => ({ t: 'send', signal })) },
  { weight: 2, arbitrary: fc.constant<Command>({ t: 'trySend' }) },
  { weight: 5, arbitrary: signalArb.map((signal): Command => ({ t: 'receive', signal })) },
  { weight: 2, arbitrary: fc.constant<Command>({ t: 'tryReceive' }) },
  { weight: 1, arbitrary: fc.constant<Command>({ t: 'close' }) },
  { weight: 2, arbitrary: fc.nat(1).map((signal): Command => ({ t: 'abort', signal })) },
  { weight: 2, arbitrary: fc.constant<Command>({ t: 'tick' }) },
);

/** An operation's outcome: what it resolved with, or the error class it rejected with. */
type Outcome = { kind: 'ok'; value?: number | 'done' } | { kind: 'closed' } | { kind: 'aborted' };

interface Op {
  id: number;
  what: string;
  expected: Outcome | undefined; // decided by the model; undefined while parked
  actual: Outcome | undefined;
  controller: number | undefined;
  value: number | undefined; // for sends
}

class ChannelModel {
  readonly v = new Violations();
  readonly log: string[] = [];
  readonly ch: Channel<number>;
  readonly buffer: number[] = [];
  readonly senders: Op[] = [];
  readonly receivers: Op[] = [];
  readonly ops: Op[] = [];
  readonly controllers = [new AbortController(), new AbortController()];
  readonly allControllers = [...this.controllers];
  closed = false;
  nextValue = 0;

  constructor(readonly capacity: number) {
    this.ch = new Channel<number>(capacity);
  }

  op(what: string, controller: number | undefined, value?: number): Op {
    const op: Op = {
      id: this.ops.length,
      what,
      expected: undefined,
      actual: undefined,
      controller,
      value,
    };
    this.ops.push(op);
    return op;
  }

  watch(op: Op, promise: Promise<unknown>): void {
    promise.then(
      (r) => {
        const res = r as IteratorResult<number> | undefined;
        op.actual = {
          kind: 'ok',
          value: res === undefined ? undefined : res.done ? 'done' : res.value,
        };
      },
      (e: unknown) => {
        op.actual =
          e instanceof ChannelClosedError
            ? { kind: 'closed' }
            : e instanceof AbortError
              ? { kind: 'aborted' }
              : { kind: 'ok', value: -1 };
        if (!(e instanceof ChannelClosedError || e instanceof AbortError))
          this.v.check(false, () => `op ${op.id} rejected with ${String(e)}`);
      },
    );
  }

  /** The model's offer: hand to a waiting receiver or buffer; false when full. */
  offer(value: number): boolean {
    const r = this.receivers.shift();
    if (r) {
      r.expected = { kind: 'ok', value };
      return true;
    }
    if (this.buffer.length < this.capacity) {
      this.buffer.push(value);
      return true;
    }
    return false;
  }

  /** The model's tryReceive. */
  take(): number | 'done' | undefined {
    const first = this.buffer.shift();
    if (first !== undefined) {
      const s = this.senders.shift();
      if (s) {
        this.buffer.push(s.value as number);
        s.expected = { kind: 'ok' };
      }
      return first;
    }
    const s = this.senders.shift();
    if (s) {
      s.expected = { kind: 'ok' };
      return s.value as number;
    }
    return this.closed ? 'done' : undefined;
  }

  signal(k: number | undefined): AbortSignal | undefined {
    return k === undefined ? undefined : this.controllers[k]?.signal;
  }

  async exec(c: Command): Promise<void> {
    this.log.push(JSON.stringify(c));
    switch (c.t) {
      case 'send': {
        const value = this.nextValue++;
        const op = this.op(`send(${value})`, c.signal, value);
        const signal = this.signal(c.signal);
        this.watch(op, this.ch.send(value, signal ? { signal } : undefined));
        if (this.closed) op.expected = { kind: 'closed' };
        else if (signal?.aborted) op.expected = { kind: 'aborted' };
        else if (this.offer(value)) op.expected = { kind: 'ok' };
        else this.senders.push(op);
        break;
      }
      case 'trySend': {
        const value = this.nextValue++;
        let actual: boolean | 'closed';
        try {
          actual = this.ch.trySend(value);
        } catch (e) {
          this.v.check(e instanceof ChannelClosedError, () => `trySend threw ${String(e)}`);
          actual = 'closed';
        }
        const expected = this.closed ? 'closed' : this.offer(value);
        this.v.check(
          actual === expected,
          () => `trySend(${value}) gave ${actual}, model ${expected}`,
        );
        break;
      }
      case 'receive': {
        const op = this.op('receive', c.signal);
        const signal = this.signal(c.signal);
        this.watch(op, this.ch.receive(signal ? { signal } : undefined));
        if (signal?.aborted) op.expected = { kind: 'aborted' };
        else {
          const got = this.take();
          if (got === undefined) this.receivers.push(op);
          else op.expected = { kind: 'ok', value: got };
        }
        break;
      }
      case 'tryReceive': {
        const r = this.ch.tryReceive();
        const actual = r === undefined ? undefined : r.done ? 'done' : r.value;
        const expected = this.take();
        this.v.check(actual === expected, () => `tryReceive gave ${actual}, model ${expected}`);
        break;
      }
      case 'close':
        this.ch.close();
        if (!this.closed) {
          this.closed = true;
          for (const s of this.senders.splice(0)) s.expected = { kind: 'closed' };
          for (const r of this.receivers.splice(0)) r.expected = { kind: 'ok', value: 'done' };
        }
        break;
      case 'abort': {
        const k = c.signal;
        this.controllers[k]?.abort('fuzz');
        for (const list of [this.senders, this.receivers]) {
          for (let i = list.length - 1; i >= 0; i--) {
            const op = list[i] as Op;
            if (op.controller === k) {
              op.expected = { kind: 'aborted' };
              list.splice(i, 1);
            }
          }
        }
        const fresh = new AbortController();
        this.controllers[k] = fresh;
        this.allControllers.push(fresh);
        break;
      }
      case 'tick':
        await flush();
        this.compare();
        break;
    }
    this.v.check(
      this.ch.length === this.buffer.length,
      () => `length ${this.ch.length}, model ${this.buffer.length}`,
    );
    this.v.check(
      this.ch.length <= this.capacity,
      () => `length ${this.ch.length} over capacity ${this.capacity}`,
    );
    this.v.check(this.ch.closed === this.closed, () => 'closed flag differs');
  }

  compare(): void {
    for (const op of this.ops) {
      const e = JSON.stringify(op.expected);
      const a = JSON.stringify(op.actual);
      this.v.check(e === a, () => `op ${op.id} ${op.what}: got ${a}, model ${e}`);
    }
  }

  async finish(): Promise<void> {
    this.log.push('-- finish: close, drain what is buffered');
    await flush();
    this.compare();
    this.ch.close();
    if (!this.closed) {
      this.closed = true;
      for (const s of this.senders.splice(0)) s.expected = { kind: 'closed' };
      for (const r of this.receivers.splice(0)) r.expected = { kind: 'ok', value: 'done' };
    }
    // Closed: receivers still get every buffered value, in order, then done.
    const rest: number[] = [];
    for (let r = this.ch.tryReceive(); r && !r.done; r = this.ch.tryReceive()) rest.push(r.value);
    this.v.check(
      JSON.stringify(rest) === JSON.stringify(this.buffer),
      () => `after close got ${rest}, model ${this.buffer}`,
    );
    this.v.check(this.ch.tryReceive()?.done === true, () => 'a closed, empty channel is not done');
    await flush();
    this.compare();
    for (const c of this.allControllers) {
      this.v.check(
        abortListeners(c.signal) === 0,
        () => `${abortListeners(c.signal)} listeners left on a signal`,
      );
    }
  }
}

describe('fuzz: Channel', () => {
  const unhandled = new UnhandledCounter();
  beforeEach(() => unhandled.install());
  afterEach(() => unhandled.uninstall());

  it('every operation ends as the model says: FIFO, nothing lost or duplicated, listeners go', {
    timeout: testTimeout(30_000),
  }, async () => {
    await fuzzAssert(
      'Channel',
      fc.asyncProperty(
        fc.integer({ min: 0, max: 3 }),
        fc.array(command, { minLength: 1, maxLength: 40 }),
        async (capacity, commands) => {
          const m = new ChannelModel(capacity);
          m.log.push(`new Channel(${capacity})`);
          await runCommands(m, commands, unhandled);
        },
      ),
      fuzzParams(12),
    );
  });
});
