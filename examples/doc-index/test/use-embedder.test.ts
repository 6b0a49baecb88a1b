import { describe, expect, it } from 'vitest';
import { UseEmbedder } from '../src/use-embedder.js';

const norm = (v: Float32Array) => Math.hypot(...v);
const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);

describe('UseEmbedder (Universal Sentence Encoder lite, weights from node_modules)', () => {
  it('embeds in-process: 512 unit-length dimensions, closer for texts that mean the same', async () => {
    const e = new UseEmbedder({ threads: 0 });
    expect(e.identity).toEqual({
      kind: 'local',
      model: 'universal-sentence-encoder-lite',
      dimension: 512,
    });
    const [a, b, c] = await e.embed([
      'rotate the page to landscape',
      'turn the sheet sideways',
      'chocolate cake recipe',
    ]);
    expect(a).toHaveLength(512);
    expect(norm(a!)).toBeCloseTo(1, 4);
    expect(dot(a!, b!)).toBeGreaterThan(dot(a!, c!));
  });

  it('in worker threads gives the same vectors, in order, across batches', async () => {
    const texts = Array.from({ length: 5 }, (_, i) => `document number ${i} about fonts`);
    const threaded = new UseEmbedder({ threads: 1, batch: 2 });
    try {
      const fromThreads = await threaded.embed(texts);
      const inProcess = await new UseEmbedder({ threads: 0 }).embed(texts);
      expect(fromThreads).toHaveLength(5);
      for (const [i, v] of fromThreads.entries()) expect(dot(v, inProcess[i]!)).toBeCloseTo(1, 4);
    } finally {
      await threaded.close();
    }
  });

  it('refuses bad options', () => {
    expect(() => new UseEmbedder({ threads: -1 })).toThrow(RangeError);
    expect(() => new UseEmbedder({ batch: 0 })).toThrow(RangeError);
  });
});
