/**
 * The default embedder: lexical feature hashing. Normalized tokens and adjacent-token pairs are
 * hashed into a fixed number of dimensions with a sign bit (so collisions cancel out on average
 * instead of piling up), weighted by log term frequency, and the vector is L2-normalized.
 * No model, no download, fully deterministic — good at "which page mentions these words",
 * blind to synonyms.
 *
 * @module
 */
import { type Embedder, type EmbedderIdentity, l2normalize } from './embedder.js';

/** Default vector length of the lexical embedder. */
export const LEXICAL_DIMENSION = 1024;

/**
 * Lower-cases, strips diacritics (NFKD) and splits on anything that is not a letter or digit.
 * Single characters are dropped: in PDF text they are mostly stray glyphs and math.
 *
 * @example
 * ```ts
 * tokenize('Déjà vu, HTTP/2!'); // ['deja', 'vu', 'http']
 * ```
 */
export function tokenize(text: string): string[] {
  const folded = text
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase();
  return folded.split(/[^\p{L}\p{N}]+/u).filter((t) => t.length > 1);
}

/**
 * Feature-hashing embedder.
 *
 * @example
 * ```ts
 * const e = new LexicalEmbedder();
 * const [v] = await e.embed(['hyperlinks in PDF output']); // Float32Array(1024), unit length
 * ```
 */
export class LexicalEmbedder implements Embedder {
  readonly identity: EmbedderIdentity;
  readonly #dimension: number;

  /** @throws RangeError when `dimension` is not an integer in 16..65536. */
  constructor(opts: { dimension?: number } = {}) {
    const dimension = opts.dimension ?? LEXICAL_DIMENSION;
    if (!Number.isInteger(dimension) || dimension < 16 || dimension > 65536) {
      throw new RangeError(`lexical embedder option dimension must be 16..65536, got ${dimension}`);
    }
    this.#dimension = dimension;
    this.identity = { kind: 'lexical', model: 'lexical-v1', dimension };
  }

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    return texts.map((t) => this.embedOne(t));
  }

  /** Synchronous form of {@link embed} for one text. */
  embedOne(text: string): Float32Array {
    // Term frequency per hashed feature (distinct features colliding on a hash is rare enough).
    const tf = new Map<number, number>();
    const tokens = tokenize(text);
    for (let i = 0; i < tokens.length; i++) {
      bump(tf, fnv1a(tokens[i]!));
      // Pairs make phrases score above the same words scattered across a page.
      if (i > 0) bump(tf, fnv1a(`${tokens[i - 1]} ${tokens[i]}`));
    }
    const v = new Float32Array(this.#dimension);
    for (const [h, count] of tf) {
      // Bit 31 picks the sign, the rest picks the slot.
      const slot = (h & 0x7fffffff) % this.#dimension;
      const weight = 1 + Math.log(count);
      v[slot]! += h & 0x80000000 ? -weight : weight;
    }
    return l2normalize(v);
  }
}

function bump(map: Map<number, number>, key: number): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

// FNV-1a, 32-bit, over UTF-16 code units: fast, well spread, and stable across Node versions.
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
