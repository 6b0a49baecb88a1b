/**
 * What a user types into `search`, turned into an FTS5 MATCH expression. Users type words, not
 * FTS5 syntax, so the query is parsed here and every piece is quoted: a stray `-`, `:`, `(` or
 * `AND` in a query can never be a syntax error or an operator by accident.
 *
 * - plain words: any of them may match; chunks holding more of them (and rarer ones) rank higher
 *   (BM25). Common English words ("how", "the", "do") are dropped.
 * - `"a quoted phrase"`: those words, adjacent and in that order.
 * - `prefix*`: any word starting with `prefix` (`hyperlink*` finds "hyperlinks").
 *
 * @module
 */
import { tokenize } from './lexical-embedder.js';

/** A query split into the pieces FTS5 can match. */
export interface ParsedQuery {
  /** Plain words, lower-cased, stop words removed, in order, without duplicates. */
  terms: string[];
  /** Quoted phrases, each as its list of words. */
  phrases: string[][];
  /** Words typed with a trailing `*`, without the star. */
  prefixes: string[];
}

// Words that carry no topic: matching them says nothing about relevance, and a question
// ("how do I …") would otherwise match every chunk. Short on purpose: technical words stay.
const STOP_WORDS = new Set(
  (
    'a an and any are as at be been but by can could do does doing did for from had has have how ' +
    'if in into is it its me my no not of on or our should so some such than that the their them ' +
    'then there these they this those to too up was we what when where which while who whom why ' +
    'will with would you your yours i am about all also just more most other only own same very ' +
    'get got make want need way use using used one two want'
  ).split(' '),
);

/** True for a word `search` ignores when it stands alone (not inside a phrase). */
export function isStopWord(word: string): boolean {
  return STOP_WORDS.has(word);
}

/**
 * Splits `query` into plain words, quoted phrases and prefixes.
 *
 * @example
 * ```ts
 * parseQuery('how do I rotate "landscape pages" hyperlink*');
 * // { terms: ['rotate'], phrases: [['landscape', 'pages']], prefixes: ['hyperlink'] }
 * ```
 */
export function parseQuery(query: string): ParsedQuery {
  const terms: string[] = [];
  const phrases: string[][] = [];
  const prefixes: string[] = [];
  // An unclosed quote runs to the end of the query.
  for (const m of query.matchAll(/"([^"]*)"?|(\S+)/g)) {
    if (m[1] !== undefined) {
      const words = tokenize(m[1]);
      if (words.length > 1) phrases.push(words);
      else if (words.length === 1) addUnique(terms, words[0]!);
      continue;
    }
    const raw = m[2]!;
    const words = tokenize(raw);
    if (raw.endsWith('*') && words.length) {
      for (const w of words.slice(0, -1)) addWord(terms, w);
      addUnique(prefixes, words[words.length - 1]!);
    } else for (const w of words) addWord(terms, w);
  }
  return { terms, phrases, prefixes };
}

function addWord(terms: string[], word: string): void {
  if (!isStopWord(word)) addUnique(terms, word);
}

function addUnique(list: string[], word: string): void {
  if (!list.includes(word)) list.push(word);
}

/**
 * The FTS5 MATCH expression for `parsed`: its pieces OR'ed, each quoted; undefined when the
 * query has nothing to match (only stop words or punctuation).
 *
 * @example
 * ```ts
 * toMatchExpression(parseQuery('"landscape pages" hyperlink*'));
 * // '"landscape pages" OR "hyperlink"*'
 * ```
 */
export function toMatchExpression(parsed: ParsedQuery): string | undefined {
  const parts = pieces(parsed);
  return parts.length ? parts.join(' OR ') : undefined;
}

/** Each piece of `parsed` as its own MATCH expression (for per-piece document frequencies). */
export function pieces(parsed: ParsedQuery): string[] {
  return [
    ...parsed.phrases.map((p) => quote(p.join(' '))),
    ...parsed.terms.map(quote),
    ...parsed.prefixes.map((p) => `${quote(p)}*`),
  ];
}

// tokenize() leaves only letters and digits, so there is never a quote to escape; doubling one
// anyway keeps this safe if that ever changes.
function quote(text: string): string {
  return `"${text.replaceAll('"', '""')}"`;
}
