import { describe, expect, it } from 'vitest';
import { LexicalEmbedder, tokenize } from '../src/lexical-embedder.js';

const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);

describe('LexicalEmbedder', () => {
  const e = new LexicalEmbedder();

  it('produces unit-length vectors of the configured dimension', async () => {
    const [v] = await e.embed(['The hyperref package makes hyperlinks in PDF output.']);
    expect(v).toHaveLength(1024);
    expect(norm(v!)).toBeCloseTo(1, 5);
  });

  it('is deterministic across instances', () => {
    const text = 'Memcheck detects memory-management problems';
    expect(new LexicalEmbedder().embedOne(text)).toEqual(e.embedOne(text));
  });

  it('ignores case, accents and punctuation', () => {
    expect(e.embedOne('Déjà-Vu, CAFÉ!')).toEqual(e.embedOne('deja vu cafe'));
  });

  it('scores related text above unrelated text', () => {
    const q = e.embedOne('colour tables in LaTeX');
    const related = e.embedOne(
      'This package adds colour to LaTeX tables: rows, columns and cells.',
    );
    const unrelated = e.embedOne(
      'Valgrind is an instrumentation framework for dynamic analysis tools.',
    );
    expect(dot(q, related)).toBeGreaterThan(dot(q, unrelated));
  });

  it('maps text without tokens to the zero vector', () => {
    expect(norm(e.embedOne('. , ; x'))).toBe(0);
  });

  it('records its identity with the dimension', () => {
    expect(new LexicalEmbedder({ dimension: 64 }).identity).toEqual({
      kind: 'lexical',
      model: 'lexical-v1',
      dimension: 64,
    });
  });

  it('rejects a bad dimension', () => {
    expect(() => new LexicalEmbedder({ dimension: 3 })).toThrow(RangeError);
  });

  it('tokenizes into lower-case letter/digit runs of 2+ characters', () => {
    expect(tokenize('Déjà vu, HTTP/2 x86_64!')).toEqual(['deja', 'vu', 'http', 'x86', '64']);
  });
});
