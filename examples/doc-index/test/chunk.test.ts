import { describe, expect, it } from 'vitest';
import { chunkPages, normalize } from '../src/chunk.js';

describe('chunkPages', () => {
  it('keeps each chunk on one page and numbers pages from 1', () => {
    const chunks = chunkPages([
      'First page text that is long enough.',
      '',
      'Third page text here, also long.',
    ]);
    expect(chunks.map((c) => [c.page, c.ordinal])).toEqual([
      [1, 0],
      [3, 1],
    ]);
  });

  it('never exceeds maxChars and loses no words', () => {
    const words = Array.from({ length: 800 }, (_, i) => `word${i}`);
    const page = words.join(' ');
    const chunks = chunkPages([page], { maxChars: 300 });
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) expect(c.text.length).toBeLessThanOrEqual(300);
    expect(chunks.flatMap((c) => c.text.split(/\s+/))).toEqual(words);
  });

  it('prefers paragraph and sentence boundaries over a mid-sentence cut', () => {
    const para = 'A'.repeat(150) + '. ' + 'b'.repeat(100) + '\n\n' + 'c'.repeat(200);
    const chunks = chunkPages([para], { maxChars: 300 });
    expect(chunks[0]!.text.endsWith('b'.repeat(100))).toBe(true);
    expect(chunks[1]!.text).toBe('c'.repeat(200));
  });

  it('hard-cuts an unbroken run longer than maxChars', () => {
    const chunks = chunkPages(['x'.repeat(250)], { maxChars: 100 });
    expect(chunks.map((c) => c.text.length)).toEqual([100, 100, 50]);
  });

  it('collapses whitespace but keeps paragraph breaks', () => {
    expect(normalize('  a \t b\r\n\r\n\r\n\nc  ')).toBe('a b\n\nc');
  });

  it('rejects a bad maxChars with a RangeError naming the option', () => {
    expect(() => chunkPages(['x'], { maxChars: 10 })).toThrow(/maxChars.*10/);
  });
});
