/**
 * Attack on the text `enqueue` and the broker sources take as keys, header values and names
 * (no broker needed): arbitrary strings — whole and lone surrogates, every kind of whitespace at
 * either end, NUL, line breaks. Whatever is taken must reach every broker as itself: its UTF-8
 * round trip is itself (a lone surrogate became U+FFFD), nats.js sends it unchanged as a header
 * value (it trims them: ` k` and `k` were one Nats-Msg-Id, the second job reported deduplicated
 * and dropped), and it holds no NUL (PostgreSQL's text refuses it). What is refused is refused
 * with ERR_INVALID_OPTION, naming the option.
 */
import { headers as natsHeaders } from '@nats-io/nats-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkEnqueue } from '../../src/brokers/enqueue-options.js';
import { brokerName } from '../../src/internal/options.js';
import { fuzzAssert, fuzzParams, testTimeout } from './harness.js';

/** A string's UTF-8 round trip (Buffer keeps a leading BOM; TextDecoder would drop it). */
const viaUtf8 = (value: string): string => Buffer.from(value, 'utf8').toString('utf8');

/** Characters where broker text breaks, mixed with plain ones. */
const hostileChar = fc.constantFrom(
  ' ',
  '\t',
  '\u00a0',
  '\ufeff',
  '\u2028',
  '\u3000',
  '\n',
  '\r',
  '\0',
  '\ud800',
  '\udfff',
  '\ud83d\ude00',
  'k',
  'é',
  ':',
  '.',
);
const text: fc.Arbitrary<string> = fc.oneof(
  fc.array(hostileChar, { maxLength: 6 }).map((cs) => cs.join('')),
  fc.string({ unit: 'binary', maxLength: 12 }),
);

/** What a NATS header value becomes on the wire, or undefined when nats.js refuses it. */
function viaNats(value: string): string | undefined {
  const h = natsHeaders();
  try {
    h.set('X', value);
  } catch {
    return undefined;
  }
  return h.get('X');
}

function storedAsItself(value: string): void {
  expect(viaUtf8(value)).toBe(value);
  expect(viaNats(value)).toBe(value);
  expect(value).not.toContain('\0');
}

function refusal(call: () => unknown): { code?: string; message: string } | undefined {
  try {
    call();
    return undefined;
  } catch (error) {
    return error as { code?: string; message: string };
  }
}

const target = { client: {}, stream: 's' };

describe('fuzz: enqueue keys, header values and broker names reach the broker as themselves', () => {
  it(
    'a key, a header value or a name taken is stored as itself; one refused names its option',
    async () => {
      await fuzzAssert(
        'enqueue-text',
        fc.asyncProperty(text, async (value) => {
          const key = refusal(() => checkEnqueue(target, '{ client, stream }', { key: value }));
          if (key === undefined) storedAsItself(value);
          else
            expect(key).toMatchObject({
              code: 'ERR_INVALID_OPTION',
              message: expect.stringMatching(/^Invalid option "key"/),
            });
          const header = refusal(() =>
            checkEnqueue(target, '{ client, stream }', { headers: { x: value } }),
          );
          if (header === undefined) storedAsItself(value);
          else
            expect(header).toMatchObject({
              code: 'ERR_INVALID_OPTION',
              message: expect.stringMatching(/^Invalid option "headers\.x"/),
            });
          const name = refusal(() => brokerName('stream', value));
          if (name === undefined) expect(viaUtf8(value)).toBe(value);
          else
            expect(name).toMatchObject({
              code: 'ERR_INVALID_OPTION',
              message: expect.stringMatching(/^Invalid option "stream"/),
            });
          const stream = refusal(() =>
            checkEnqueue({ client: {}, stream: value }, '{ client, stream }', {}),
          );
          if (stream === undefined) expect(viaUtf8(value)).toBe(value);
          else
            expect(stream).toMatchObject({
              code: 'ERR_INVALID_OPTION',
              message: expect.stringMatching(/^Invalid option "target\.stream"/),
            });
        }),
        fuzzParams(40),
      );
    },
    testTimeout(30_000),
  );
});
