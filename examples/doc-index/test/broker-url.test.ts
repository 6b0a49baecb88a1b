import { describe, expect, it } from 'vitest';
import { parseBrokerUrl } from '../src/broker-url.js';
import { UsageError } from '../src/errors.js';
import { decodeDocumentMessage } from '../src/serve.js';

describe('parseBrokerUrl: every URL form', () => {
  it('redis: the path is the stream; group and db from the query', () => {
    expect(parseBrokerUrl('redis://127.0.0.1:6379/docs')).toEqual({
      kind: 'redis',
      url: 'redis://127.0.0.1:6379',
      stream: 'docs',
      group: 'doc-index',
    });
    expect(parseBrokerUrl('rediss://u:p@cache.local:6380/docs?group=g1&db=2')).toEqual({
      kind: 'redis',
      url: 'rediss://u:p@cache.local:6380/2',
      stream: 'docs',
      group: 'g1',
    });
  });

  it('nats: stream and durable consumer, default port 4222', () => {
    expect(parseBrokerUrl('nats://127.0.0.1:4222/DOCS')).toEqual({
      kind: 'nats',
      servers: '127.0.0.1:4222',
      stream: 'DOCS',
      consumer: 'doc-index',
    });
    expect(parseBrokerUrl('nats://nats.local/DOCS?consumer=indexers')).toMatchObject({
      servers: 'nats.local:4222',
      consumer: 'indexers',
    });
  });

  it('amqp: the path is the queue; the vhost moves to the query', () => {
    expect(parseBrokerUrl('amqp://guest:guest@127.0.0.1:5672/docs')).toEqual({
      kind: 'amqp',
      url: 'amqp://guest:guest@127.0.0.1:5672',
      queue: 'docs',
    });
    expect(parseBrokerUrl('amqps://u:p@mq.local:5671/docs?vhost=/')).toEqual({
      kind: 'amqp',
      url: 'amqps://u:p@mq.local:5671/%2F',
      queue: 'docs',
    });
  });

  it('postgres: the path is the database, the table from the query; pg parameters are kept', () => {
    expect(parseBrokerUrl('postgres://postgres@127.0.0.1:5432/test?table=docs')).toEqual({
      kind: 'postgres',
      url: 'postgres://postgres@127.0.0.1:5432/test',
      table: 'docs',
    });
    expect(parseBrokerUrl('postgresql://db.local/app?sslmode=require')).toEqual({
      kind: 'postgres',
      url: 'postgresql://db.local/app?sslmode=require',
      table: 'doc_index',
    });
  });
});

describe('parseBrokerUrl: bad URLs are usage errors naming the problem', () => {
  const cases: [string, RegExp][] = [
    ['not a url', /--to: not a URL/],
    [
      'http://127.0.0.1:6379/docs',
      /unknown scheme "http:".*expected redis:\/\/, nats:\/\/, amqp:\/\/ or postgres:\/\//,
    ],
    ['redis://127.0.0.1:6379', /must name exactly one stream as its path/],
    ['redis://127.0.0.1:6379/a/b', /must name exactly one stream/],
    ['redis://127.0.0.1:6379/docs?grop=x', /unknown parameter "grop".*known: group, db/],
    ['redis://127.0.0.1:6379/docs?db=x', /db must be a database number/],
    ['redis://127.0.0.1:6379/docs?group=', /group= is empty/],
    ['nats://127.0.0.1:4222/my.docs', /NATS stream name "my.docs" may only hold/],
    ['amqp://127.0.0.1:5672/', /must name exactly one queue/],
    ['postgres://127.0.0.1/test?table=Bad-Name', /table must be a plain lower-case identifier/],
    ['postgres://127.0.0.1', /must name exactly one database/],
  ];
  for (const [url, message] of cases) {
    it(url, () => {
      let error: unknown;
      try {
        parseBrokerUrl(url, '--to');
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(message);
    });
  }

  it('a password never appears in the message', () => {
    expect(() => parseBrokerUrl('amqp://u:secret@127.0.0.1/docs?x=1')).toThrow(/u:\*\*\*@/);
    expect(() => parseBrokerUrl('amqp://u:secret@127.0.0.1/docs?x=1')).not.toThrow(/secret/);
  });
});

describe('decodeDocumentMessage', () => {
  const body = (s: string) => new TextEncoder().encode(s);
  it('takes {"path": "/absolute"} and refuses anything else as malformed', () => {
    expect(decodeDocumentMessage(body('{"path":"/data/a.pdf","x":1}'))).toEqual({
      path: '/data/a.pdf',
    });
    for (const [text, message] of [
      ['nope', /not JSON/],
      ['[1]', /not a JSON object/],
      ['{"file":"/a.pdf"}', /no "path" string/],
      ['{"path":"a.pdf"}', /must be absolute/],
    ] as const) {
      expect(() => decodeDocumentMessage(body(text))).toThrow(
        expect.objectContaining({
          code: 'ERR_MESSAGE_MALFORMED',
          message: expect.stringMatching(message),
        }),
      );
    }
  });
});
