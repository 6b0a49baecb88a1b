/**
 * Bad options of every broker source and of consume() fail at once — before any connection is
 * attempted — with the same shape as the core's: a TypeError (wrong type) or RangeError (number
 * out of range), `code: 'ERR_INVALID_OPTION'`, and a message naming the option and the value.
 */
import { describe, expect, it } from 'vitest';
import {
  amqpDeadLetters,
  enqueue as amqpEnqueue,
  amqpSource,
} from '../../src/brokers/amqp/index.js';
import { consume } from '../../src/brokers/consumer.js';
import {
  natsDeadLetters,
  enqueue as natsEnqueue,
  natsSource,
} from '../../src/brokers/nats/index.js';
import { enqueue as pgEnqueue, postgresSource } from '../../src/brokers/postgres/index.js';
import {
  redisDeadLetters,
  enqueue as redisEnqueue,
  redisSource,
} from '../../src/brokers/redis/index.js';
import type { BrokerSource } from '../../src/brokers/source.js';
import { amqpAdmin, uniqueQueue } from '../fixtures/brokers/amqp-helpers.js';
import { redisAdmin, uniqueStream } from '../fixtures/brokers/redis-helpers.js';

// Unreachable endpoints: a validation that ran after connecting would fail with a connection
// error instead, and the test would say so.
const NOWHERE = { redis: 'redis://127.0.0.1:1', pg: 'postgres://127.0.0.1:1/x' };

type Case = [label: string, make: () => unknown, name: string, ctor: typeof TypeError];
const sources: Case[] = [
  [
    'redis stream empty',
    () => redisSource({ stream: '', group: 'g', url: NOWHERE.redis }),
    'stream',
    TypeError,
  ],
  [
    'redis group missing',
    () => redisSource({ stream: 's', url: NOWHERE.redis } as never),
    'group',
    TypeError,
  ],
  [
    'redis lease 0',
    () => redisSource({ stream: 's', group: 'g', lease: 0, url: NOWHERE.redis }),
    'lease',
    RangeError,
  ],
  [
    'redis fetchWait "5"',
    () => redisSource({ stream: 's', group: 'g', fetchWait: '5' as never, url: NOWHERE.redis }),
    'fetchWait',
    TypeError,
  ],
  [
    'redis url of another scheme',
    () => redisSource({ stream: 's', group: 'g', url: 'http://nope' }),
    'url',
    TypeError,
  ],
  [
    'redis deleteOnAck "yes"',
    () => redisSource({ stream: 's', group: 'g', deleteOnAck: 'yes' as never, url: NOWHERE.redis }),
    'deleteOnAck',
    TypeError,
  ],
  [
    'nats servers 42',
    () => natsSource({ stream: 'A', consumer: 'c', servers: 42 as never }),
    'servers',
    TypeError,
  ],
  [
    'nats declare "no"',
    () =>
      natsSource({ stream: 'A', consumer: 'c', declare: 'no' as never, servers: '127.0.0.1:1' }),
    'declare',
    TypeError,
  ],
  [
    'postgres table with a quote',
    () => postgresSource({ table: 'jobs"; drop', connectionString: NOWHERE.pg }),
    'table',
    TypeError,
  ],
  [
    'redis lease past the longest timer (its heartbeat would fire every ms)',
    () => redisSource({ stream: 's', group: 'g', lease: 1e12, url: NOWHERE.redis }),
    'lease',
    RangeError,
  ],
  [
    'postgres lease past the longest timer',
    () => postgresSource({ table: 'jobs', lease: 2 ** 31, connectionString: NOWHERE.pg }),
    'lease',
    RangeError,
  ],
  [
    'nats lease past the longest timer',
    () => natsSource({ stream: 'A', consumer: 'c', lease: 2 ** 31, servers: '127.0.0.1:1' }),
    'lease',
    RangeError,
  ],
  [
    'postgres lease NaN',
    () => postgresSource({ table: 'jobs', lease: Number.NaN, connectionString: NOWHERE.pg }),
    'lease',
    RangeError,
  ],
  [
    'amqp queue empty',
    () => amqpSource({ queue: '', url: 'amqp://127.0.0.1:1' }),
    'queue',
    TypeError,
  ],
  [
    'amqp prefetch 0',
    () => amqpSource({ queue: 'q', prefetch: 0, url: 'amqp://127.0.0.1:1' }),
    'prefetch',
    RangeError,
  ],
  [
    'amqp prefetch 1.5',
    () => amqpSource({ queue: 'q', prefetch: 1.5, url: 'amqp://127.0.0.1:1' }),
    'prefetch',
    RangeError,
  ],
  [
    'amqp heartbeat past the protocol field (an unsigned short)',
    () => amqpSource({ queue: 'q', heartbeat: 65_536, url: 'amqp://127.0.0.1:1' }),
    'heartbeat',
    RangeError,
  ],
  [
    'amqp heartbeat -1',
    () => amqpSource({ queue: 'q', heartbeat: -1, url: 'amqp://127.0.0.1:1' }),
    'heartbeat',
    RangeError,
  ],
  [
    'nats stream with a dot',
    () => natsSource({ stream: 'a.b', consumer: 'c', servers: '127.0.0.1:1' }),
    'stream',
    TypeError,
  ],
  [
    'nats consumer with a wildcard',
    () => natsSource({ stream: 'A', consumer: 'c>', servers: '127.0.0.1:1' }),
    'consumer',
    TypeError,
  ],
  [
    'nats fetchWait 10 (a pull waits at least 1 s)',
    () => natsSource({ stream: 'A', consumer: 'c', fetchWait: 10, servers: '127.0.0.1:1' }),
    'fetchWait',
    RangeError,
  ],
];

describe('broker sources reject bad options before connecting', () => {
  it.each(sources)('%s', async (_, make, name, ctor) => {
    const error = await Promise.resolve()
      .then(make)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(ctor);
    expect(error).toMatchObject({ code: 'ERR_INVALID_OPTION' });
    expect((error as Error).message).toMatch(
      new RegExp(`^Invalid option "${name}": expected .*, got `),
    );
  });
});

// Every name a broker stores or routes by. A lone surrogate (half of a UTF-16 pair) has no UTF-8
// form: the broker would store U+FFFD, so `jobs\ud800` and `jobs\udfff` would be one stream.
// The optional ones were not checked at all: `consumer: 5` or `deadLetterStream: ''` was taken.
const AMQP_NOWHERE = 'amqp://127.0.0.1:1';
const NATS_NOWHERE = '127.0.0.1:1';
const named: [label: string, make: (value: unknown) => unknown, name: string][] = [
  [
    'redisSource stream',
    (v) => redisSource({ stream: v as string, group: 'g', url: NOWHERE.redis }),
    'stream',
  ],
  [
    'redisSource group',
    (v) => redisSource({ stream: 's', group: v as string, url: NOWHERE.redis }),
    'group',
  ],
  [
    'redisSource consumer',
    (v) => redisSource({ stream: 's', group: 'g', consumer: v as string, url: NOWHERE.redis }),
    'consumer',
  ],
  [
    'redisSource deadLetterStream',
    (v) =>
      redisSource({ stream: 's', group: 'g', deadLetterStream: v as string, url: NOWHERE.redis }),
    'deadLetterStream',
  ],
  [
    'redisSource field',
    (v) => redisSource({ stream: 's', group: 'g', field: v as string, url: NOWHERE.redis }),
    'field',
  ],
  [
    'redisDeadLetters stream',
    (v) => redisDeadLetters({ stream: v as string, url: NOWHERE.redis }),
    'stream',
  ],
  [
    'redisDeadLetters deadLetterStream',
    (v) => redisDeadLetters({ stream: 's', deadLetterStream: v as string, url: NOWHERE.redis }),
    'deadLetterStream',
  ],
  [
    'redis enqueue target.stream',
    (v) => redisEnqueue({ client: {} as never, stream: v as string }, 1),
    'target.stream',
  ],
  [
    'redis enqueue target.field',
    (v) => redisEnqueue({ client: {} as never, stream: 's', field: v as string }, 1),
    'target.field',
  ],
  ['amqpSource queue', (v) => amqpSource({ queue: v as string, url: AMQP_NOWHERE }), 'queue'],
  [
    'amqpSource deadLetterExchange',
    (v) => amqpSource({ queue: 'q', deadLetterExchange: v as string, url: AMQP_NOWHERE }),
    'deadLetterExchange',
  ],
  [
    'amqpSource deadLetterQueue',
    (v) => amqpSource({ queue: 'q', deadLetterQueue: v as string, url: AMQP_NOWHERE }),
    'deadLetterQueue',
  ],
  [
    'amqpDeadLetters deadLetterQueue',
    (v) => amqpDeadLetters({ queue: 'q', deadLetterQueue: v as string, url: AMQP_NOWHERE }),
    'deadLetterQueue',
  ],
  [
    'amqp enqueue target.queue',
    (v) => amqpEnqueue({ channel: {} as never, queue: v as string }, 1),
    'target.queue',
  ],
  [
    'natsSource stream',
    (v) => natsSource({ stream: v as string, consumer: 'c', servers: NATS_NOWHERE }),
    'stream',
  ],
  [
    'natsSource subject',
    (v) => natsSource({ stream: 'A', consumer: 'c', subject: v as string, servers: NATS_NOWHERE }),
    'subject',
  ],
  [
    'natsSource deadLetterSubject',
    (v) =>
      natsSource({
        stream: 'A',
        consumer: 'c',
        deadLetterSubject: v as string,
        servers: NATS_NOWHERE,
      }),
    'deadLetterSubject',
  ],
  [
    'natsSource deadLetterStream',
    (v) =>
      natsSource({
        stream: 'A',
        consumer: 'c',
        deadLetterStream: v as string,
        servers: NATS_NOWHERE,
      }),
    'deadLetterStream',
  ],
  [
    'natsDeadLetters subject',
    (v) => natsDeadLetters({ stream: 'A', subject: v as string, servers: NATS_NOWHERE }),
    'subject',
  ],
  [
    'nats enqueue target.subject',
    (v) => natsEnqueue({ connection: {} as never, subject: v as string }, 1),
    'target.subject',
  ],
];

describe('broker names: a lone surrogate, an empty string or a non-string is refused before connecting', () => {
  it.each(named)('%s', async (_, make, name) => {
    for (const value of ['jobs-\ud800', '\udfffx', '', 5]) {
      const error = await Promise.resolve()
        .then(() => make(value))
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error, String(value)).toBeInstanceOf(TypeError);
      expect(error).toMatchObject({ code: 'ERR_INVALID_OPTION' });
      expect((error as Error).message).toMatch(
        new RegExp(`^Invalid option "${name.replace('.', '\\.')}": expected .*, got `),
      );
    }
  });
});

// NATS subjects: whitespace or an empty token failed late and uncoded — nats.js's
// InvalidSubjectError at a publish, the server's "invalid subject" (JetStream API error 10052)
// after connecting; a publish to a wildcard was reported as "no stream captures it".
const subjects: [
  label: string,
  make: (value: string) => unknown,
  name: string,
  wildcards: boolean,
][] = [
  [
    'natsSource subject',
    (v) => natsSource({ stream: 'A', consumer: 'c', subject: v, servers: NATS_NOWHERE }),
    'subject',
    true,
  ],
  [
    'natsSource deadLetterSubject',
    (v) => natsSource({ stream: 'A', consumer: 'c', deadLetterSubject: v, servers: NATS_NOWHERE }),
    'deadLetterSubject',
    false,
  ],
  [
    'natsDeadLetters subject',
    (v) => natsDeadLetters({ stream: 'A', subject: v, servers: NATS_NOWHERE }),
    'subject',
    true,
  ],
  [
    'nats enqueue target.subject',
    (v) => natsEnqueue({ connection: {} as never, subject: v }, 1),
    'target.subject',
    false,
  ],
];

describe('NATS subjects that are not subjects are refused before connecting, naming the option', () => {
  it.each(subjects)('%s', async (_, make, name, wildcards) => {
    const refused = async (value: string) =>
      Promise.resolve()
        .then(() => make(value))
        .then(
          () => undefined,
          (e: unknown) => e,
        );
    const bad = [
      'a b',
      'a\tb',
      'a\fb',
      'a..b',
      '.a',
      'a.',
      'a.>.b',
      '>.a',
      ...(wildcards ? [] : ['a.*', 'a.>', '*', '>', '*.a']),
    ];
    for (const value of bad) {
      const error = await refused(value);
      expect(error, value).toBeInstanceOf(TypeError);
      expect(error).toMatchObject({ code: 'ERR_INVALID_OPTION' });
      expect((error as Error).message).toMatch(
        new RegExp(`^Invalid option "${name.replace('.', '\\.')}": expected a NATS subject`),
      );
    }
    // A literal `*` inside a token is no wildcard; the option check passes (the call then fails
    // connecting, or, for enqueue, on the fake connection).
    // Whitespace the server takes as a subject's character (it refuses only space, tab, CR, LF
    // and form feed) passes too.
    const good = ['a.b*', 'ä.b', 'a.>b.c', 'a.b\u00a0c', 'a.\u3000', '\ufeffa'];
    for (const value of [...good, ...(wildcards ? ['a.*', 'a.>', '>', '*.a.>'] : [])]) {
      const error = await refused(value);
      expect((error as { code?: string } | undefined)?.code, value).not.toBe('ERR_INVALID_OPTION');
    }
  });
});

describe('amqpSource heartbeat: an integer of seconds from 0 to 65535', () => {
  it('the refusal names the option, the value and the range', async () => {
    await expect(
      amqpSource({ queue: 'q', heartbeat: 1e9, url: 'amqp://127.0.0.1:1' }),
    ).rejects.toThrow(
      'Invalid option "heartbeat": expected an integer of s >= 0 and <= 65535, got 1000000000',
    );
  });

  it.each([0, 65_535])('%s passes the checks (and fails only at connecting)', async (heartbeat) => {
    await expect(
      amqpSource({ queue: 'q', heartbeat, url: 'amqp://127.0.0.1:1' }),
    ).rejects.toMatchObject({ code: 'ERR_NOT_CONNECTED' });
  });
});

describe('the options of 0.1 that got one common name are refused, naming the new one', () => {
  const renamed: [string, () => Promise<unknown>, string, string][] = [
    [
      'redis block',
      () => redisSource({ stream: 's', group: 'g', block: 5, url: NOWHERE.redis } as never),
      'block',
      'fetchWait',
    ],
    [
      'redis claimIdle',
      () => redisSource({ stream: 's', group: 'g', claimIdle: 5, url: NOWHERE.redis } as never),
      'claimIdle',
      'lease',
    ],
    [
      'nats blockMs',
      () =>
        natsSource({ stream: 'A', consumer: 'c', blockMs: 5000, servers: '127.0.0.1:1' } as never),
      'blockMs',
      'fetchWait',
    ],
    [
      'nats ackWait',
      () =>
        natsSource({ stream: 'A', consumer: 'c', ackWait: 5000, servers: '127.0.0.1:1' } as never),
      'ackWait',
      'lease',
    ],
    [
      'amqp blockMs',
      () => amqpSource({ queue: 'q', blockMs: 5, url: 'amqp://127.0.0.1:1' } as never),
      'blockMs',
      'fetchWait',
    ],
    [
      'postgres pollInterval',
      () => postgresSource({ table: 't', pollInterval: 5, connectionString: NOWHERE.pg } as never),
      'pollInterval',
      'fetchWait',
    ],
  ];
  it.each(renamed)('%s', async (_, make, old, replacement) => {
    const error = await make().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error).toMatchObject({ code: 'ERR_INVALID_OPTION', name: 'TypeError' });
    expect(error?.message).toMatch(new RegExp(`^Invalid option "${old}": .*"${replacement}"`));
  });

  it('RabbitMQ has no lease: passing one is refused', async () => {
    await expect(
      amqpSource({ queue: 'q', lease: 1000, url: 'amqp://127.0.0.1:1' } as never),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', message: /^Invalid option "lease"/ });
  });

  // Null means "not given" for every option: these pass the checks and fail only at connecting.
  it.each([
    [
      'amqp lease null',
      () => amqpSource({ queue: 'q', lease: null, url: 'amqp://127.0.0.1:1' } as never),
    ],
    [
      'amqp lease undefined',
      () => amqpSource({ queue: 'q', lease: undefined, url: 'amqp://127.0.0.1:1' } as never),
    ],
    [
      'redis claimIdle null',
      () => redisSource({ stream: 's', group: 'g', claimIdle: null, url: NOWHERE.redis } as never),
    ],
    [
      'postgres pollInterval null',
      () =>
        postgresSource({ table: 't', pollInterval: null, connectionString: NOWHERE.pg } as never),
    ],
  ] as [string, () => Promise<unknown>][])('%s is not given', async (_, make) => {
    await expect(make()).rejects.toMatchObject({ code: 'ERR_NOT_CONNECTED' });
  });
});

describe('enqueue(): a 0.1 call (client, name, payload) fails at once, naming the new shape', () => {
  const calls: [string, () => Promise<unknown>, string][] = [
    ['redis', () => redisEnqueue({} as never, 'jobs' as never), 'target.stream'],
    ['nats', () => natsEnqueue({} as never, 'JOBS.work' as never), 'target.subject'],
    ['amqp', () => amqpEnqueue({} as never, 'jobs' as never), 'target.queue'],
    ['postgres', () => pgEnqueue({} as never, 'jobs' as never), 'target.table'],
  ];
  it.each(calls)('%s', async (_, call, name) => {
    await expect(call()).rejects.toMatchObject({
      name: 'TypeError',
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(new RegExp(`^Invalid option "${name}".*is now enqueue\\(\\{`)),
    });
  });
});

describe('consume() rejects bad options at once', () => {
  const idle: BrokerSource = {
    fetch: async () => [],
    ack: async () => {},
    retry: async () => {},
    deadLetter: async () => {},
    release: async () => {},
    close: async () => {},
  } as unknown as BrokerSource;
  const cases: [Record<string, unknown>, string, typeof TypeError][] = [
    [{ concurrency: 0 }, 'concurrency', RangeError],
    [{ concurrency: '4' }, 'concurrency', TypeError],
    [{ concurrency: 2, maxDeliveries: 1.5 }, 'maxDeliveries', RangeError],
    [{ concurrency: 2, backoff: 5 }, 'backoff', TypeError],
    [{ concurrency: 2, backoff: { factor: 0.5 } }, 'backoff.factor', RangeError],
    [{ concurrency: 2, backoff: { jitter: 2 } }, 'backoff.jitter', RangeError],
    [{ concurrency: 2, backoff: { jitter: '0.5' } }, 'backoff.jitter', TypeError],
    [{ concurrency: 2, maxBodySize: -1 }, 'maxBodySize', RangeError],
    [{ concurrency: 2, drainTimeout: Number.POSITIVE_INFINITY }, 'drainTimeout', RangeError],
    [{ concurrency: 2, decode: 'json' }, 'decode', TypeError],
    [{ concurrency: 2, onError: 1 }, 'onError', TypeError],
    [{ concurrency: 2, signal: 'x' }, 'signal', TypeError],
    [{ concurrency: 2, timeout: 0 }, 'timeout', RangeError],
    [{ concurrency: 2, timeout: -1 }, 'timeout', RangeError],
    [{ concurrency: 2, timeout: 2 ** 31 }, 'timeout', RangeError],
    [{ concurrency: 2, drainTimeout: 2 ** 31 }, 'drainTimeout', RangeError],
    [{ concurrency: 2, drainTimeout: -1 }, 'drainTimeout', RangeError],
    [{ concurrency: 2, backoff: { max: 2 ** 31 } }, 'backoff.max', RangeError],
  ];
  it.each(cases)('%o → %s', (opts, name, ctor) => {
    let error: unknown;
    try {
      consume(idle, () => {}, opts as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ctor);
    expect(error).toMatchObject({ code: 'ERR_INVALID_OPTION' });
    expect((error as Error).message).toMatch(new RegExp(`^Invalid option "${name}"`));
  });

  it('timeout 0 and -1 get the same message; null means no timeout', () => {
    const message = (timeout: number) => {
      try {
        consume(idle, () => {}, { concurrency: 1, timeout });
      } catch (e) {
        return (e as Error).message.replace(/got .*/, '');
      }
    };
    expect(message(0)).toBe(message(-1));
    const c = consume(idle, () => {}, { concurrency: 1, timeout: null as never });
    void c.close();
  });

  it('every optional option given as null means its default, as undefined does (backoff too)', () => {
    const optional = [
      'maxDeliveries',
      'backoff',
      'decode',
      'maxBodySize',
      'timeout',
      'rate',
      'key',
      'perKey',
      'priority',
      'signal',
      'drainTimeout',
      'onError',
      'batch',
      'name',
      'watchdog',
    ];
    for (const name of optional) {
      const c = consume(idle, () => {}, { concurrency: 1, [name]: null } as never);
      void c.close();
    }
    const c = consume(idle, () => {}, {
      concurrency: 1,
      retry: { attempts: 2, backoff: null },
    } as never);
    void c.close();
  });

  it('a broker url given as null means the default broker, as an omitted one (was refused for Redis and RabbitMQ)', async () => {
    const stream = uniqueStream('nullurl');
    const redisAdminClient = await redisAdmin();
    redisAdminClient.track(stream);
    const queue = uniqueQueue('nullurl');
    const amqp = await amqpAdmin();
    try {
      await (await redisSource({ url: null as never, stream, group: 'g' })).close();
      await (await amqpSource({ url: null as never, queue })).close();
    } finally {
      await redisAdminClient.cleanup();
      await amqp.cleanup(queue);
    }
  });

  it.each([
    [
      'redisDeadLetters deadLetterStream',
      () =>
        redisDeadLetters({
          stream: 's',
          deadLetterStream: null,
          url: NOWHERE.redis,
          connectTimeout: 2000,
        } as never),
    ],
    [
      'redisDeadLetters field',
      () =>
        redisDeadLetters({
          stream: 's',
          field: null,
          url: NOWHERE.redis,
          connectTimeout: 2000,
        } as never),
    ],
    [
      'amqpDeadLetters deadLetterQueue',
      () =>
        amqpDeadLetters({
          queue: 'q',
          deadLetterQueue: null,
          url: 'amqp://127.0.0.1:1',
          connectTimeout: 2000,
        } as never),
    ],
    [
      'natsDeadLetters deadLetterStream',
      () =>
        natsDeadLetters({
          stream: 'S',
          deadLetterStream: null,
          servers: '127.0.0.1:1',
          connectTimeout: 2000,
        } as never),
    ],
    [
      'natsDeadLetters subject',
      () =>
        natsDeadLetters({
          stream: 'S',
          subject: null,
          servers: '127.0.0.1:1',
          connectTimeout: 2000,
        } as never),
    ],
  ])(
    '%s given as null means its default, as undefined does: not refused (the connection fails instead)',
    async (_label, open) => {
      await expect(open()).rejects.toMatchObject({ code: 'ERR_NOT_CONNECTED' });
    },
  );

  it('a handler that is not a function, or a source that is not one: ERR_INVALID_ARGUMENT', () => {
    expect(() => consume(idle, 'nope' as never, { concurrency: 1 })).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARGUMENT' }),
    );
    expect(() => consume(idle, 'nope' as never, { concurrency: 1 })).toThrow(/"handler"/);
    expect(() => consume(null as never, () => {}, { concurrency: 1 })).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARGUMENT' }),
    );
  });
  it('options that are not an object are refused as such, not reported as a missing concurrency', () => {
    expect(() => consume(idle, () => {}, 5 as never)).toThrow(
      expect.objectContaining({
        name: 'TypeError',
        code: 'ERR_INVALID_ARGUMENT',
        message: expect.stringMatching(/^Invalid argument "options"/),
      }),
    );
  });
});
