/**
 * The NATS source's ack frames (`src/brokers/nats/acks.ts`), against the real server on
 * loopback: the acks of one event-loop turn are published together at its end, a confirmed
 * one resolves only on the server's reply, and the failures (no reply, no responder, close)
 * reject each waiting ack.
 */
import {
  ClosedConnectionError,
  connect,
  type NatsConnection,
  NoRespondersError,
  TimeoutError,
} from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consume } from '../../src/brokers/consumer.js';
import { AckRequests, settleError } from '../../src/brokers/nats/acks.js';
import { natsSource } from '../../src/brokers/nats/index.js';
import { LeaseLostError, NotConnectedError, SettleTimeoutError } from '../../src/errors.js';
import { deadline } from '../fixtures/brokers/consumer-harness.js';
import { startFaultProxy } from '../fixtures/brokers/fault-proxy.js';
import {
  NATS_URL,
  type NatsAdmin,
  natsAdmin,
  uniqueStream,
} from '../fixtures/brokers/nats-helpers.js';
import { deferred } from '../helpers.js';

let admin: NatsAdmin;
let nc: NatsConnection;
const streams: string[] = [];
const never = new AbortController().signal;
const ACK = new TextEncoder().encode('+ACK');

beforeAll(async () => {
  admin = await natsAdmin();
  nc = await connect({ servers: NATS_URL, noAsyncTraces: true });
});
afterAll(async () => {
  await nc.close();
  await admin.cleanup(...streams);
});

/** Counts `nc.publish` calls to subjects starting with `prefix`. */
function countPublishes(conn: NatsConnection, prefix: string): { count: () => number } {
  let n = 0;
  const publish = conn.publish.bind(conn);
  conn.publish = (subject, ...rest) => {
    if (subject.startsWith(prefix)) n++;
    return publish(subject, ...rest);
  };
  return { count: () => n };
}

describe('NATS ack frames', () => {
  it('acks issued in one turn are published together at its end, each confirmed by the server', async () => {
    const stream = uniqueStream('ACKS');
    streams.push(stream, `${stream}_DEAD`);
    const source = await natsSource({ stream, consumer: 'workers', connection: nc });
    await admin.publishMany(`${stream}.work`, 20, (i) => `m${i}`);
    const held = [];
    while (held.length < 20) held.push(...(await source.fetch(20 - held.length, never)));
    const acks = countPublishes(nc, '$JS.ACK.');
    const settled: number[] = [];
    const pending = held.map((m, i) => source.ack(m).then(() => settled.push(i)));
    // Nothing is published during the turn the acks were issued in.
    expect(acks.count()).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(acks.count()).toBe(20);
    await Promise.all(pending);
    expect(settled).toHaveLength(20);
    // Confirmed means applied: the server holds no pending ack for them.
    expect(await admin.pending(stream, 'workers')).toMatchObject({ ackPending: 0, pending: 0 });
    await source.close();
  });

  it("a confirmed frame resolves only on its reply, and times out without one as ERR_SETTLE_TIMEOUT naming the settle (the client's TimeoutError as its cause)", async () => {
    const requests = new AckRequests(nc, 100);
    const subject = `silent.${uniqueStream('S')}`;
    const seen: string[] = [];
    // A responder that answers only the first request it sees.
    const sub = nc.subscribe(subject, {
      callback: (_err, msg) => {
        seen.push(msg.reply ?? '');
        if (seen.length === 1) msg.respond();
      },
    });
    await nc.flush();
    await expect(requests.send(subject, ACK, true, 'ack', '1')).resolves.toBeUndefined();
    const second = requests.send(subject, ACK, true, 'ack', '1');
    const timedOut = await second.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(timedOut).toBeInstanceOf(SettleTimeoutError);
    expect(timedOut).toMatchObject({ code: 'ERR_SETTLE_TIMEOUT', operation: 'ack', timeout: 100 });
    expect((timedOut as Error).message).toMatch(/message 1 .*ackTimeout \(100 ms\)/);
    expect((timedOut as Error).cause).toBeInstanceOf(TimeoutError);
    expect(seen).toHaveLength(2);
    expect(requests.outstanding).toBe(0);
    sub.unsubscribe();
    requests.close();
  });

  it('rejects with LeaseLostError (nats.js NoRespondersError as cause) when nobody answers the subject: its consumer is gone', async () => {
    const requests = new AckRequests(nc, 5000);
    const error = await requests.send(`nobody.${uniqueStream('N')}`, ACK, true, 'ack', '1').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(LeaseLostError);
    expect(error).toMatchObject({ code: 'ERR_LEASE_LOST', messageId: '1' });
    expect(error?.cause).toBeInstanceOf(NoRespondersError);
    requests.close();
  });

  it('close rejects the frames still waiting for their reply, and sends the queued ones', async () => {
    const requests = new AckRequests(nc, 5000);
    const subject = `mute.${uniqueStream('M')}`;
    let received = 0;
    const sub = nc.subscribe(subject, { callback: () => void received++ });
    await nc.flush();
    const waiting = requests.send(subject, ACK, true, 'ack', '1');
    await new Promise((resolve) => setImmediate(resolve));
    const plain = requests.send(subject, ACK, false, 'ack', '1');
    requests.close();
    await expect(waiting).rejects.toThrow(/closed/);
    await expect(plain).resolves.toBeUndefined();
    // Closed: nothing more is sent (no new reply subscription on the caller's connection).
    await expect(requests.send(subject, ACK, true, 'ack', '1')).rejects.toThrow(/closed/);
    await nc.flush();
    expect(received).toBe(2);
    sub.unsubscribe();
  });

  it('a consumer whose broker stops answering reports its ack as ERR_SETTLE_TIMEOUT, and its drain counts the message unsettled', async () => {
    const stream = uniqueStream('STALL');
    streams.push(stream, `${stream}_DEAD`);
    const proxy = await startFaultProxy({ port: 4222 });
    try {
      const source = await natsSource({
        stream,
        consumer: 'workers',
        servers: `127.0.0.1:${proxy.port}`,
        ackTimeout: 300,
      });
      await admin.publishMany(`${stream}.work`, 1, () => '{}');
      const running = deferred<void>();
      const finish = deferred<void>();
      const reported = deferred<Error>();
      const consumer = consume(
        source,
        async () => {
          running.resolve();
          await finish.promise;
        },
        { concurrency: 1, onError: (e, op) => op === 'ack' && reported.resolve(e) },
      );
      await deadline(running.promise, 10_000, 'the handler running');
      const drained = consumer.drain();
      proxy.stall(); // the ack goes out and no reply comes back
      finish.resolve();
      const error = await deadline(reported.promise, 10_000, 'the ack reported');
      expect(error).toBeInstanceOf(SettleTimeoutError);
      expect(error).toMatchObject({ code: 'ERR_SETTLE_TIMEOUT', operation: 'ack', timeout: 300 });
      expect(error.cause).toBeInstanceOf(TimeoutError);
      proxy.resume(); // let the source close its connection
      const report = await deadline(drained, 10_000, 'the drain');
      expect(report).toMatchObject({ completed: 0, unsettled: 1 });
    } finally {
      await proxy.close();
    }
  });

  it("a settle on a closed connection fails as ERR_NOT_CONNECTED (the client's error as cause); the source's own close too; other errors pass unchanged", async () => {
    const closed = new ClosedConnectionError();
    const wrapped = settleError(closed, 'retry', '7', 100);
    expect(wrapped).toBeInstanceOf(NotConnectedError);
    expect(wrapped).toMatchObject({ code: 'ERR_NOT_CONNECTED', cause: closed });
    const other = new Error('something else');
    expect(settleError(other, 'ack', '7', 100)).toBe(other);
    const requests = new AckRequests(nc, 5000);
    requests.close();
    await expect(requests.send('any', ACK, true, 'ack', '1')).rejects.toMatchObject({
      code: 'ERR_NOT_CONNECTED',
    });
  });
});
