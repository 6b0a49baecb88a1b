/**
 * The shutdowns of every `shutdownOn` in the process that a signal started, as one group:
 * the process exits when the last of them finished (a service with a pool and a consumer, each
 * with its own `shutdownOn`, must not be cut off by whichever drain ends first; Go's errgroup
 * waits for every member the same way), with the highest exit code any of them reached or
 * promised (or the code the process had when the round began: never lowered), and a forced
 * stop of one (a repeated signal, a timeout) forces them all: the earliest deadline wins. A
 * member that finished keeps its signal handlers until the round ends, so a repeat of its
 * signal still forces the others rather than killing the process (the default action).
 *
 * @module
 */

/** A running shutdown, as the group sees it. */
export interface Member {
  /** The exit code it would give if the process ended now: 1 while draining, the forced code. */
  code: number;
  /** Aborts its drain and finishes it after its grace (idempotent). */
  readonly force: (code: number, reason: string) => void;
  /** Called when the round ends (its signal handlers come off then). */
  readonly end: () => void;
}

const running = new Set<Member>();
/** Members of this round that finished: they end with it. */
const finished: Member[] = [];
/** The highest code of the members that finished in this round. */
let worst = 0;
/** Some member that finished in this round asked to exit the process (`exit: true`). */
let exitWanted = false;

/** The code the process would exit with now. */
function current(): number {
  let code = worst;
  for (const m of running) code = Math.max(code, m.code);
  return code;
}

/** A shutdown started draining. Until it finishes, an exit (a loop that emptied) is a failure. */
export function join(member: Member): void {
  if (running.size === 0 && finished.length === 0) worst = exitCodeNow();
  running.add(member);
  process.exitCode = current();
}

/** A member's promised code rose (it was forced). */
export function raise(member: Member, code: number): void {
  member.code = Math.max(member.code, code);
  process.exitCode = current();
}

/** Forces every running member (each aborts its drain, then finishes after its own grace). */
export function forceAll(code: number, reason: string): void {
  for (const m of [...running]) m.force(code, reason);
}

/**
 * A member finished with `code`. When it was the last, the round ends: the process exits with
 * the round's highest code if any member asked for that, else only `process.exitCode` is left.
 */
export function leave(member: Member, code: number, exit: boolean): void {
  running.delete(member);
  finished.push(member);
  worst = Math.max(worst, code);
  exitWanted ||= exit;
  const final = current();
  process.exitCode = final;
  if (running.size > 0) return;
  const exitNow = exitWanted;
  worst = 0;
  exitWanted = false;
  for (const m of finished.splice(0)) m.end();
  if (exitNow) process.exit(final);
}

/** `process.exitCode` as a number (0 when unset or not a number). */
function exitCodeNow(): number {
  const code = Number(process.exitCode ?? 0);
  return Number.isInteger(code) && code > 0 ? code : 0;
}
