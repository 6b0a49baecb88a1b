/**
 * The NATS JetStream adapter on its own, against the real server on loopback: fetch bounds,
 * confirmed ack, nak with delay, dead letter with the error, release, heartbeat. Abort/close
 * and enqueue(), shared by every adapter, are in source-cases.ts (run by nats.consume.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueue, type NatsSource, natsSource } from '../../src/brokers/nats/index.js';
import { PublishTimeoutError } from '../../src/errors.js';
import { type NatsAdmin, natsAdmin, uniqueStream } from '../fixtures/brokers/nats-helpers.js';

let admin: NatsAdmin;
const streams: string[] = [];
const sources: NatsSource[] = [];

async function setup(opts: { lease?: number } = {}) {
  const stream = uniqueStream('A');
  streams.push(stream, `${stream}_DEAD`);
  const source = await natsSource({ stream, consumer: 'workers', ...opts });
  sources.push(source);
  return { stream, source, subject: `${stream}.work` };
}

beforeAll(async () => {
  admin = await natsAdmin();
});
afterAll(async () => {
  for (const s of sources) await s.close();
  await admin.cleanup(...streams);
});

const never = new AbortController().signal;

/** The next message: a fetch returns nothing when its wait ends before one lands (a loaded machine). */
async function nextOf(
  source: NatsSource,
): Promise<Awaited<ReturnType<NatsSource['fetch']>>[number]> {
  for (;;) {
    const [message] = await source.fetch(1, never);
    if (message) return message;
  }
}
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('natsSource (adapter)', () => {
  it('fetches at most max, acks with server confirmation, leaves nothing pending', async () => {
    const { stream, source, subject } = await setup();
    await admin.publishMany(subject, 50, (i) => `m${i}`);
    const got: string[] = [];
    while (got.length < 50) {
      const batch = await source.fetch(7, never);
      expect(batch.length).toBeLessThanOrEqual(7);
      for (const m of batch) {
        expect(m.deliveryCount).toBe(1);
        got.push(text(m.body));
        await source.ack(m);
      }
    }
    expect(new Set(got).size).toBe(50);
    expect(await admin.pending(stream, 'workers')).toMatchObject({ ackPending: 0, pending: 0 });
    expect(await admin.count(stream)).toBe(0); // work-queue stream: acked = deleted
  });

  it('retry redelivers after the delay with a higher delivery count', async () => {
    const { source, subject } = await setup();
    await admin.publishMany(subject, 1, () => 'again');
    const first = await nextOf(source);
    expect(first?.deliveryCount).toBe(1);
    const t0 = Date.now();
    await source.retry(first!, 300, new Error('boom'));
    let second: Awaited<ReturnType<NatsSource['fetch']>>[number] | undefined;
    while (!second) [second] = await source.fetch(1, never);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(second.deliveryCount).toBe(2);
    expect(second.id).toBe(first!.id);
    await source.ack(second);
  });

  it('deadLetter publishes body + error to the dead-letter stream, then terminates', async () => {
    const { stream, source, subject } = await setup();
    await admin.publishMany(subject, 1, () => '{"bad"');
    const m = await nextOf(source);
    const err = Object.assign(new Error('body is not JSON\nline two'), {
      code: 'ERR_MESSAGE_MALFORMED',
    });
    await source.deadLetter(m!, err);
    const dead = await admin.readAll(`${stream}_DEAD`);
    expect(dead).toHaveLength(1);
    expect(dead[0]?.data).toBe('{"bad"');
    expect(dead[0]?.headers['Sluice-Error']).toBe('body is not JSON line two');
    expect(dead[0]?.headers['Sluice-Error-Code']).toBe('ERR_MESSAGE_MALFORMED');
    expect(dead[0]?.headers['Sluice-Deliveries']).toBe('1');
    expect(await admin.pending(stream, 'workers')).toMatchObject({ ackPending: 0, pending: 0 });
  });

  it('release hands a message back at once', async () => {
    const { source, subject } = await setup();
    await admin.publishMany(subject, 1, () => 'x');
    const m = await nextOf(source);
    await source.release(m!);
    const again = await nextOf(source);
    expect(again?.id).toBe(m!.id);
    expect(again?.deliveryCount).toBe(2);
    await source.ack(again!);
  });

  it('heartbeats keep a slow message from redelivery past ack_wait', async () => {
    // ack_wait 2 s: heartbeats every 667 ms leave 1.3 s of slack on a loaded machine (with 1 s,
    // 667 ms, which a stalled timer can outlast).
    const { stream, source, subject } = await setup({ lease: 2000 });
    expect(source.heartbeatInterval).toBeLessThanOrEqual(667);
    await admin.publishMany(subject, 1, () => 'slow');
    const m = await nextOf(source);
    // The same lease: a source sets the shared consumer's ack_wait to its own.
    const other = await natsSource({ stream, consumer: 'workers', lease: 2000 });
    sources.push(other);
    const timer = setInterval(() => void source.heartbeat(m!), source.heartbeatInterval);
    try {
      // 1.5 ack_waits: without heartbeats the message would be redelivered to `other`.
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        expect(await other.fetch(1, AbortSignal.timeout(until - Date.now()))).toEqual([]);
      }
    } finally {
      clearInterval(timer);
    }
    // Control: once the heartbeats stop, ack_wait expires and the other consumer gets it.
    let stolen: Awaited<ReturnType<NatsSource['fetch']>> = [];
    const until = Date.now() + 10_000;
    while (stolen.length === 0 && Date.now() < until) stolen = await other.fetch(1, never);
    expect(stolen[0]?.id).toBe(m!.id);
    expect(stolen[0]?.deliveryCount).toBe(2);
    await other.ack(stolen[0]!);
    expect(await admin.pending(stream, 'workers')).toMatchObject({ ackPending: 0, pending: 0 });
  });

  it('a late ack after ack_wait is refused here: JetStream would end the redelivery another consumer runs', async () => {
    const { stream, source: a } = await setup({ lease: 1000 });
    const b = await natsSource({ stream, consumer: 'workers', lease: 1000 });
    sources.push(b);
    await admin.publishMany(`${stream}.work`, 1, () => 'x');
    const mine = await nextOf(a);
    // a stalls (no heartbeat): the server redelivers the message to b after ack_wait.
    let theirs: Awaited<ReturnType<NatsSource['fetch']>>[number] | undefined;
    while (!theirs) [theirs] = await b.fetch(1, never);
    // The same message, redelivered. Its count is not checked: the server's count is usually 2
    // (more when one of b's pulls expired with the message in flight), but 1 was seen here about
    // once in 7 runs, on the previous release too — unexplained so far, and not what this test is
    // about: a's late settle must be refused whatever b was handed.
    expect(theirs.id).toBe(mine!.id);
    expect(await a.heartbeat(mine!)).toBe(false);
    await expect(a.ack(mine!)).rejects.toMatchObject({ code: 'ERR_LEASE_LOST' });
    await expect(a.retry(mine!, 0, new Error('x'))).rejects.toMatchObject({
      code: 'ERR_LEASE_LOST',
    });
    await expect(a.deadLetter(mine!, new Error('x'))).rejects.toMatchObject({
      code: 'ERR_LEASE_LOST',
    });
    // b's delivery is untouched: still pending until b acks it.
    expect(await admin.pending(stream, 'workers')).toMatchObject({ ackPending: 1 });
    await b.ack(theirs);
    expect(await admin.pending(stream, 'workers')).toMatchObject({ ackPending: 0, pending: 0 });
  });

  it('a heartbeat within ack_wait keeps the lease: ack after 2 x ack_wait is accepted', async () => {
    // ack_wait 2 s, a heartbeat every 500 ms: 1.5 s of slack for a late timer on a loaded machine.
    const { stream, source } = await setup({ lease: 2000 });
    await admin.publishMany(`${stream}.work`, 1, () => 'x');
    const m = await nextOf(source);
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 500));
      expect(await source.heartbeat(m!)).toBe(true);
    }
    await source.ack(m!);
    expect(await admin.pending(stream, 'workers')).toMatchObject({ ackPending: 0, pending: 0 });
  });
});

describe('enqueue: a PubAck that does not come in time', () => {
  it('fails with PublishTimeoutError (ERR_PUBLISH_TIMEOUT, the timeout, nats.js’s error as cause)', async () => {
    // A subject no stream captures, answered by a core subscriber that never replies: the
    // request has a responder (no "no responders"), so only the timeout can end it.
    const subject = `${uniqueStream('NOACK')}.work`;
    const silent = admin.nc.subscribe(subject);
    await admin.nc.flush();
    try {
      const error = await enqueue({ connection: admin.nc, subject, timeout: 200 }, 'x').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(PublishTimeoutError);
      expect(error).toMatchObject({
        code: 'ERR_PUBLISH_TIMEOUT',
        timeout: 200,
        message: expect.stringContaining(`NATS subject "${subject}"`),
        cause: expect.objectContaining({ name: 'TimeoutError' }),
      });
    } finally {
      silent.unsubscribe();
    }
  });
});
