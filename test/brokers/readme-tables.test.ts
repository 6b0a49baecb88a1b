/**
 * The README's per-broker tables say what the code does: the common source options' defaults
 * and per-broker limits (src/brokers/source-options.ts), the renamed 0.1 options, and the
 * enqueue limits that are constants in the code. A change to one without the other fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_KEY_LENGTH } from '../../src/brokers/enqueue-options.js';
import { DEFAULT_DUPLICATE_WINDOW } from '../../src/brokers/nats/topology.js';
import {
  BROKER_LIMITS,
  type CommonLimits,
  RENAMED_OPTIONS,
  resolveCommon,
  SOURCE_DEFAULTS,
} from '../../src/brokers/source-options.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function between(tag: string): string {
  const start = readme.indexOf(`<!-- ${tag}:start`);
  const end = readme.indexOf(`<!-- ${tag}:end -->`);
  expect(start, `README marker ${tag}:start`).toBeGreaterThan(-1);
  expect(end, `README marker ${tag}:end`).toBeGreaterThan(start);
  return readme.slice(readme.indexOf('-->', start) + 3, end);
}

/** The body rows of a markdown table, as cells. */
function rows(table: string): string[][] {
  return table
    .split('\n')
    .filter((line) => line.startsWith('|') && !line.startsWith('| ---'))
    .slice(1)
    .map((line) =>
      line
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    );
}

const COLUMNS = ['redis', 'nats', 'amqp', 'postgres'] as const;

/** What a cell must say about an option's lower bound, from the code's limits. */
function expectedBound(option: keyof typeof SOURCE_DEFAULTS, limits: CommonLimits): string {
  if (option === 'lease' && limits.leaseMin === false) return '—';
  const min =
    option === 'fetchWait'
      ? (limits.fetchWaitMin ?? 1)
      : option === 'lease'
        ? limits.leaseMin || 1
        : 1;
  const integer = limits.integer === true && option !== 'connectTimeout';
  return `≥ ${min}${integer ? ', integer' : ''}`;
}

describe('README: the common source options table matches the code', () => {
  const table = rows(between('source-options'));

  it('has one row per common option, with its default', () => {
    const options = table.map((r) => /^`(\w+)`/.exec(r[0]!)?.[1]);
    expect(options.sort()).toEqual(Object.keys(SOURCE_DEFAULTS).sort());
    for (const row of table) {
      const option = /^`(\w+)`/.exec(row[0]!)![1] as keyof typeof SOURCE_DEFAULTS;
      expect(Number(row[1]), `${option} default`).toBe(SOURCE_DEFAULTS[option]);
    }
  });

  it.each(COLUMNS.map((b, i) => [b, i] as const))(
    '%s: each bound is the one the code enforces',
    (broker, i) => {
      const limits: CommonLimits = BROKER_LIMITS[broker];
      for (const row of table) {
        const option = /^`(\w+)`/.exec(row[0]!)![1] as keyof typeof SOURCE_DEFAULTS;
        const cell = row[2 + i]!;
        const bound = expectedBound(option, limits);
        if (bound === '—') {
          expect(cell.startsWith('—'), `${broker} ${option}: ${cell}`).toBe(true);
          expect(() => resolveCommon({ [option]: 1000 }, limits)).toThrow(/Invalid option/);
          continue;
        }
        expect(
          cell.endsWith(bound),
          `${broker} ${option}: "${cell}" should end with "${bound}"`,
        ).toBe(true);
        // And the code refuses just below the bound, and takes the bound.
        const min = Number(/≥ (\d+)/.exec(bound)![1]);
        expect(() => resolveCommon({ [option]: min - 0.5 }, limits)).toThrow(/Invalid option/);
        expect(resolveCommon({ [option]: min }, limits)[option]).toBe(min);
      }
    },
  );

  it('lists every renamed option of 0.1 with its replacement', () => {
    const listed = [...between('renamed').matchAll(/`(\w+)` → `(\w+)`/g)].map(([, a, b]) => [a, b]);
    expect(Object.fromEntries(listed)).toEqual(RENAMED_OPTIONS);
  });
});

describe('README: the enqueue table matches the code', () => {
  const table = rows(between('enqueue'));

  it('has one row per broker', () => {
    expect(table.map((r) => r[0])).toEqual(['Redis', 'NATS', 'RabbitMQ', 'PostgreSQL']);
  });

  it('states the key limits the code enforces', () => {
    expect(readme).toContain(`at most ${MAX_KEY_LENGTH} UTF-16 code units`);
    const nats = table.find((r) => r[0] === 'NATS')!;
    expect(nats[4]).toContain(`default ${DEFAULT_DUPLICATE_WINDOW} ms`);
    const amqp = table.find((r) => r[0] === 'RabbitMQ')!;
    expect(amqp[3]).toContain('`key` is refused');
  });
});
