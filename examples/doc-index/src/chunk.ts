/**
 * Chunking: pages of text become search units. A chunk never spans two pages (so a hit names one
 * page), and is at most `maxChars` long, cut at the best boundary before the limit: a blank line,
 * then a line end or sentence end, then a space — a hard cut only inside an unbroken run.
 *
 * @module
 */

/** One search unit. */
export interface Chunk {
  /** 1-based page number. */
  page: number;
  /** 0-based position of the chunk within the document. */
  ordinal: number;
  text: string;
}

/** Options of {@link chunkPages}. */
export interface ChunkOptions {
  /** Longest chunk, in characters (UTF-16 code units). Default 1000. */
  maxChars?: number;
}

const DEFAULT_MAX = 1000;

/**
 * Splits each page into chunks of at most `maxChars`. Whitespace is collapsed (runs of blank lines
 * become one, runs of spaces become one); pages with no text yield no chunks.
 *
 * @throws RangeError when `maxChars` is not an integer >= 100.
 * @example
 * ```ts
 * chunkPages(['Intro text…', 'Page two…'], { maxChars: 500 });
 * // [{ page: 1, ordinal: 0, text: 'Intro text…' }, { page: 2, ordinal: 1, text: 'Page two…' }]
 * ```
 */
export function chunkPages(pages: readonly string[], opts: ChunkOptions = {}): Chunk[] {
  const maxChars = opts.maxChars ?? DEFAULT_MAX;
  if (!Number.isInteger(maxChars) || maxChars < 100) {
    throw new RangeError(`chunk option maxChars must be an integer >= 100, got ${maxChars}`);
  }
  const chunks: Chunk[] = [];
  pages.forEach((raw, i) => {
    for (const text of splitText(normalize(raw), maxChars)) {
      chunks.push({ page: i + 1, ordinal: chunks.length, text });
    }
  });
  return chunks;
}

/** Collapses whitespace while keeping paragraph (blank line) and line breaks as cut hints. */
export function normalize(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/[^\S\n]+/g, ' ')
    .replace(/ ?\n ?/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function splitText(text: string, maxChars: number): string[] {
  const parts: string[] = [];
  let rest = text;
  while (rest.length > maxChars) {
    const cut = findCut(rest, maxChars);
    parts.push(rest.slice(0, cut).trim());
    rest = rest.slice(cut).trim();
  }
  if (rest.length > 0) parts.push(rest);
  return parts;
}

// Look for the last boundary in the second half of the window, so chunks do not get tiny.
function findCut(text: string, maxChars: number): number {
  const window = text.slice(0, maxChars);
  const floor = Math.floor(maxChars / 2);
  for (const boundary of [/\n\n/g, /[.!?:;]\s|\n/g, / /g]) {
    let best = -1;
    for (const m of window.matchAll(boundary)) {
      const end = m.index + m[0].length;
      if (end >= floor) best = end;
    }
    if (best > 0) return best;
  }
  return maxChars;
}
