/**
 * The broker-independent part of the dead-letter operations: argument checks, what a filter
 * selects, and the batch walk replay and purge share (over an in-memory keyset store; the
 * brokers themselves are tested in `<broker>.dead-letters.test.ts`).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type DeadLetter,
  type DeadLetterPage,
  eachSelected,
  listOptions,
  type PagedStore,
  selection,
} from '../../src/brokers/dead-letters.js';

const letter = (id: number, over: Partial<DeadLetter> = {}): DeadLetter => ({
  id: String(id),
  messageId: undefined,
  body: new Uint8Array(),
  error: `boom ${id}`,
  code: id % 2 ? 'E_ODD' : 'E_EVEN',
  attempts: 1,
  firstFailedAt: undefined,
  lastFailedAt: new Date(1_000_000 + id * 1000),
  ...over,
});

/** Letters by numeric id, newest (highest id) first, keyset cursor = the last id. */
class MemoryStore implements PagedStore {
  readonly letters = new Map<number, DeadLetter>();
  constructor(ids: number[]) {
    for (const id of ids) this.letters.set(id, letter(id));
  }
  async page(limit: number, cursor: string | undefined): Promise<DeadLetterPage> {
    const below = cursor === undefined ? Number.POSITIVE_INFINITY : Number(cursor);
    const ids = [...this.letters.keys()].filter((id) => id < below).sort((a, b) => b - a);
    const letters = ids.slice(0, limit).map((id) => this.letters.get(id)!);
    return { letters, next: ids.length > limit ? letters.at(-1)!.id : undefined };
  }
  async byIds(ids: string[]): Promise<DeadLetter[]> {
    return ids.flatMap((id) => this.letters.get(Number(id)) ?? []);
  }
}

describe('dead-letter selections', () => {
  it('a filter holds when every condition it gives holds', () => {
    const pick = (f: Parameters<typeof selection>[0]) => {
      const s = selection(f);
      if (s.kind !== 'filter') throw new Error('not a filter');
      return [1, 2, 3, 4]
        .map((id) => letter(id))
        .filter(s.test)
        .map((l) => l.id);
    };
    expect(pick({ code: 'E_ODD' })).toEqual(['1', '3']);
    expect(pick({ error: 'boom 2' })).toEqual(['2']);
    // A /g expression keeps lastIndex between tests; each letter is tested from the start.
    expect(pick({ error: /boom [234]/g })).toEqual(['2', '3', '4']);
    expect(pick({ failedAfter: new Date(1_003_000) })).toEqual(['3', '4']);
    expect(pick({ failedBefore: new Date(1_003_000) })).toEqual(['1', '2']);
    expect(pick({ code: 'E_EVEN', where: (l) => l.id !== '2' })).toEqual(['4']);
    expect(pick({})).toEqual(['1', '2', '3', '4']);
  });

  it("'all' and ids pass through; ids are deduplicated", () => {
    expect(selection('all')).toEqual({ kind: 'all' });
    expect(selection(['a', 'b', 'a'])).toEqual({ kind: 'ids', ids: ['a', 'b'] });
  });

  it('refuses what is not a selection, naming the part', () => {
    for (const bad of [42, null, 'some', [''], [1], { colour: 'red' }, { code: 1 }, { error: 1 }]) {
      expect(() => selection(bad as never)).toThrow(
        expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARGUMENT' }),
      );
    }
    expect(() => selection({ failedAfter: new Date(Number.NaN) })).toThrow(
      /^Invalid argument "which\.failedAfter"/,
    );
    expect(() => selection({ where: 'x' as never })).toThrow(/^Invalid argument "which\.where"/);
  });

  it('list options given as null, or a null limit or cursor, mean the defaults (the first page of 50)', () => {
    expect(listOptions(null as never)).toEqual({ limit: 50, cursor: undefined });
    expect(listOptions({ limit: null, cursor: null } as never)).toEqual({
      limit: 50,
      cursor: undefined,
    });
  });

  it('list options: limit 1..1000 (default 50), a non-empty cursor, each a bad option (ERR_INVALID_OPTION)', () => {
    expect(listOptions(undefined)).toEqual({ limit: 50, cursor: undefined });
    expect(listOptions({ limit: 1000, cursor: 'c' })).toEqual({ limit: 1000, cursor: 'c' });
    for (const limit of [0, 1001, 1.5, Number.NaN]) {
      expect(() => listOptions({ limit })).toThrow(
        expect.objectContaining({ name: 'RangeError', code: 'ERR_INVALID_OPTION' }),
      );
    }
    expect(() => listOptions({ cursor: '' })).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_OPTION',
        message: expect.stringMatching(/^Invalid option "cursor"/),
      }),
    );
    expect(() => listOptions('x' as never)).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_ARGUMENT',
        message: expect.stringMatching(/"options"/),
      }),
    );
  });
});

describe('the batch walk of replay and purge', () => {
  it('hands every selected letter to act exactly once, in batches of at most 100, while act removes them', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 1, max: 5000 }), { maxLength: 400 }),
        fc.constantFrom('all', 'odd', 'ids'),
        fc.boolean(),
        async (ids, kind, removes) => {
          const store = new MemoryStore(ids);
          const wanted =
            kind === 'all' ? ids : kind === 'odd' ? ids.filter((id) => id % 2) : ids.slice(0, 150);
          const which =
            kind === 'all'
              ? selection('all')
              : kind === 'odd'
                ? selection({ code: 'E_ODD' })
                : selection(wanted.map(String));
          const seen: string[] = [];
          const done = await eachSelected(store, which, async (batch) => {
            expect(batch.length).toBeLessThanOrEqual(100);
            seen.push(...batch.map((l) => l.id));
            if (removes) for (const l of batch) store.letters.delete(Number(l.id));
            return batch.length;
          });
          expect(done).toBe(wanted.length);
          expect([...seen].sort()).toEqual(wanted.map(String).sort());
          if (kind !== 'ids') {
            // Newest first, as list shows them.
            expect(seen.map(Number)).toEqual([...wanted].sort((a, b) => b - a));
          }
        },
      ),
      { numRuns: 50 },
    );
  });
});
