/**
 * What every broker's `enqueue` refuses before sending anything, with the same coded error on
 * all four: a delay past the longest timer, a header the strictest broker (NATS) cannot carry,
 * an empty queue name. Against the real brokers on loopback.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { enqueue as pgEnqueue } from '../../src/brokers/postgres/index.js';
import { MAX_TIMER_MS } from '../../src/internal/options.js';
import { amqpUnderTest } from '../fixtures/brokers/amqp-helpers.js';
import type { BrokerUnderTest } from '../fixtures/brokers/broker-under-test.js';
import { natsUnderTest } from '../fixtures/brokers/nats-helpers.js';
import { pgAdmin, postgresUnderTest } from '../fixtures/brokers/postgres-helpers.js';
import { redisUnderTest } from '../fixtures/brokers/redis-helpers.js';

const brokers: BrokerUnderTest[] = [
  await redisUnderTest(),
  await natsUnderTest(),
  await amqpUnderTest(),
  postgresUnderTest(),
];
afterAll(async () => {
  for (const b of brokers) await b.cleanup();
});

/** A queue its source declared, so that a refused enqueue could only have been refused by us. */
async function declared(broker: BrokerUnderTest, tag: string): Promise<string> {
  const queue = broker.unique(tag);
  await broker.source(queue).then((s) => s.close());
  return queue;
}

describe.each(brokers.map((b) => [b.name, b] as const))('enqueue() over %s', (_, broker) => {
  it('refuses a delay past 2147483647 ms with a RangeError (ERR_INVALID_OPTION) and sends nothing', async () => {
    const queue = await declared(broker, 'longdelay');
    for (const delay of [MAX_TIMER_MS + 1, 3e9, Number.POSITIVE_INFINITY]) {
      await expect(broker.enqueue(queue, { n: 1 }, { delay })).rejects.toMatchObject({
        name: 'RangeError',
        code: 'ERR_INVALID_OPTION',
        message: expect.stringMatching(/^Invalid option "delay".*<= 2147483647/),
      });
    }
    expect(await broker.unacked(queue)).toBe(0);
  });

  it('refuses a header name with a space or control character, or a value with a line break, as a bad option', async () => {
    const queue = await declared(broker, 'badheader');
    const bad: Record<string, string>[] = [
      { 'x y': 'z' },
      { 'x\ty': 'z' },
      { é: 'z' },
      { ['n'.repeat(256)]: 'z' },
      { x: 'a\nb' },
      { x: 'a\rb' },
      { 'x:y': 'z' },
      { '': 'z' },
      // Reserved: sluice's own, and JetStream's (Nats-Msg-Id would bypass `key`).
      { 'sluice-code': 'z' },
      { 'Nats-Msg-Id': 'z' },
      { 'nats-expected-stream': 'z' },
    ];
    for (const headers of bad) {
      await expect(broker.enqueue(queue, { n: 1 }, { headers })).rejects.toMatchObject({
        name: 'TypeError',
        code: 'ERR_INVALID_OPTION',
        message: expect.stringMatching(/^Invalid option "headers/),
      });
    }
    expect(await broker.unacked(queue)).toBe(0);
    // What every broker carries: printable ASCII names, values of any other text on one line.
    await broker.enqueue(queue, { n: 2 }, { headers: { 'X-Trace_id.1~!': 'ünïcode  value' } });
    expect(await broker.unacked(queue)).toBe(1);
  });
});

describe.each(brokers.map((b) => [b.name, b] as const))(
  'enqueue() over %s: text that cannot be stored as itself',
  (name, broker) => {
    // A lone surrogate has no UTF-8 form: the broker would store U+FFFD instead, so two different
    // keys would become one (the second job "deduplicated" away) and a header value would change.
    it('refuses a key or a header value holding a lone surrogate (ERR_INVALID_OPTION) and sends nothing', async () => {
      const queue = await declared(broker, 'surrogate');
      if (name !== 'amqp') {
        for (const key of ['job-\ud800', 'job-\udfff', '\udc00x']) {
          await expect(broker.enqueue(queue, { n: 1 }, { key })).rejects.toMatchObject({
            code: 'ERR_INVALID_OPTION',
            message: expect.stringMatching(/^Invalid option "key"/),
          });
        }
      }
      await expect(
        broker.enqueue(queue, { n: 1 }, { headers: { x: 'cut \ud83d' } }),
      ).rejects.toMatchObject({
        code: 'ERR_INVALID_OPTION',
        message: expect.stringMatching(/^Invalid option "headers\.x"/),
      });
      expect(await broker.unacked(queue)).toBe(0);
      // A whole pair is one character: kept.
      const pair = name === 'amqp' ? {} : { key: `job-\ud83d\ude00-${queue}` };
      await broker.enqueue(queue, { n: 2 }, { ...pair, headers: { x: '\ud83d\ude00' } });
      expect(await broker.unacked(queue)).toBe(1);
    });

    // nats.js trims header values, so ` k` and `k\u00a0` were sent as the Nats-Msg-Id `k`: the
    // second and third jobs were reported deduplicated and dropped. PostgreSQL's text refuses a
    // NUL with an uncoded DatabaseError; a NATS header with a line break was nats.js's uncoded
    // InvalidArgumentError. One rule on every broker: text each stores as itself.
    it('refuses a key or a header value that a broker would change or refuse (ends trimmed, a NUL, a line break) and sends nothing', async () => {
      const queue = await declared(broker, 'trimmed');
      const bad = [
        ' k',
        'k ',
        'k\u00a0',
        '\ufeffk',
        '\tk',
        'k\u2028',
        'a\0b',
        'a\nb',
        'a\r\nb',
        ' ',
      ];
      for (const value of bad) {
        if (name !== 'amqp') {
          await expect(broker.enqueue(queue, { n: 1 }, { key: value })).rejects.toMatchObject({
            code: 'ERR_INVALID_OPTION',
            message: expect.stringMatching(/^Invalid option "key"/),
          });
        }
        await expect(
          broker.enqueue(queue, { n: 1 }, { headers: { x: value } }),
        ).rejects.toMatchObject({
          code: 'ERR_INVALID_OPTION',
          message: expect.stringMatching(/^Invalid option "headers\.x"/),
        });
      }
      expect(await broker.unacked(queue)).toBe(0);
      // Inner whitespace is kept: `a b` and `a  b` are two keys, two jobs.
      const inner =
        name === 'amqp' ? [{}, {}] : [{ key: `a b-${queue}` }, { key: `a  b-${queue}` }];
      for (const opts of inner) {
        const r = await broker.enqueue(queue, { n: 2 }, { ...opts, headers: { x: 'a\tb' } });
        expect(r.deduplicated).toBe(false);
      }
      expect(await broker.unacked(queue)).toBe(2);
    });

    it('a key given as null means no key, as every optional option', async () => {
      const queue = await declared(broker, 'nullkey');
      await broker.enqueue(queue, { n: 1 }, { key: null as never });
      await broker.enqueue(queue, { n: 2 }, { key: null as never });
      expect(await broker.unacked(queue)).toBe(2);
    });
  },
);

describe('enqueue() target fields are options', () => {
  it('PostgreSQL: an empty table is ERR_INVALID_OPTION, as a table name that is not an identifier', async () => {
    const admin = pgAdmin();
    try {
      for (const table of ['', 'Not-An-Identifier']) {
        await expect(pgEnqueue({ db: admin.pool, table }, { n: 1 })).rejects.toMatchObject({
          name: 'TypeError',
          code: 'ERR_INVALID_OPTION',
          message: expect.stringMatching(/^Invalid option "target\.table"/),
        });
      }
    } finally {
      await admin.cleanup();
    }
  });
});
