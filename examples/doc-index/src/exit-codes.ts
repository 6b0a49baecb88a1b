/**
 * The CLI's exit codes. Documented in the README and in `--help`.
 *
 * @module
 */
export const EXIT = {
  /** Every document was indexed (or was already indexed and skipped). */
  OK: 0,
  /** The run completed, but some documents failed (each is listed with its reason). */
  SOME_FAILED: 1,
  /** Bad command line, missing input, unusable database, or an embedder mismatch. */
  USAGE: 2,
  /** `search`: nothing in the index is a good match for the query (the closest are still shown). */
  NO_GOOD_MATCH: 3,
  /** Stopped by SIGINT (128 + 2), after committing the documents in flight. */
  INTERRUPTED_SIGINT: 130,
  /** Stopped by SIGTERM (128 + 15), after committing the documents in flight. */
  INTERRUPTED_SIGTERM: 143,
} as const;

/** Exit code for a run stopped by `signal`. */
export function interruptedCode(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? EXIT.INTERRUPTED_SIGINT : EXIT.INTERRUPTED_SIGTERM;
}

/** The exit codes of `index`, appended to its `--help`. */
export const EXIT_CODES_HELP = `
Exit codes:
  0    every document indexed (or unchanged and skipped)
  1    the run completed but some documents failed (listed in the summary)
  2    usage error (bad flags, missing input, no PDF files found, a --db that is not a
       writable index, embedder mismatch with the index)
  130  interrupted by SIGINT: documents in flight were finished and committed
  143  interrupted by SIGTERM: the same (a second signal aborts them instead)
`;

/**
 * The exit codes of all commands, appended to the top-level `--help`. `index` and `serve` answer
 * signals differently (a drained service exits 0), so the list says which command does what.
 */
export const PROGRAM_EXIT_CODES_HELP = `
Exit codes (each command's --help has its own):
  0    success; for serve also a drain after the first SIGINT/SIGTERM
  1    index: the run completed but some documents failed (listed in the summary)
  2    usage error (bad flags or URL, missing input, no PDF files found, unusable index,
       embedder mismatch, unreachable broker)
  3    search: no good match for the query
  130  index: interrupted by SIGINT (documents in flight were finished and committed);
       serve: a second SIGINT aborted the documents in flight (back to the queue)
  143  the same for SIGTERM
`;

/** The exit codes of `search`, appended to its `--help`. */
export const SEARCH_EXIT_CODES_HELP = `
Exit codes:
  0    results printed, the first of them a good match
  2    usage error (bad flags, a query without a word, no index at --db, not an index,
       embedder mismatch)
  3    no good match: nothing in the index is relevant enough ("noGoodMatch": true in --json;
       the closest documents are still listed, as weak guesses)
`;
