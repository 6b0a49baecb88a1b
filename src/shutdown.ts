import { constants } from 'node:os';
import {
  argument,
  invalidArgument,
  invalidOption,
  nonNegativeInt,
  numberAtLeast,
  optionalBoolean,
  optionalDuration,
  optionsObject,
} from './internal/options.js';
import { forceAll, join, leave, type Member, raise } from './internal/shutdown-group.js';

/**
 * Signals a drain cannot be started from: SIGKILL and SIGSTOP cannot be caught; SIGBUS, SIGFPE,
 * SIGSEGV and SIGILL raised by a real fault leave the process where a JavaScript listener is
 * unsafe (Node's `process` signal docs), and a listener would stop the default crash.
 */
const UNTRAPPABLE = new Set(['SIGKILL', 'SIGSTOP', 'SIGBUS', 'SIGFPE', 'SIGSEGV', 'SIGILL']);

/** Options of {@link shutdownOn}. */
export interface ShutdownOptions {
  /**
   * Deadline in ms for the drain, from the first signal. At expiry the drain's `signal` aborts
   * and the process exits with code 1. Default 30,000 (Kubernetes' default grace period is 30 s;
   * set it a little below your orchestrator's). `Infinity` waits forever.
   */
  timeout?: number;
  /**
   * A repeat of a signal within this many ms of the first counts as the same signal (a terminal
   * sends SIGINT to the whole process group, and a supervisor may forward it again). Default 100.
   */
  debounce?: number;
  /**
   * After a forced stop (second signal or timeout), how long in ms the drain may take to wind
   * down after its `signal` aborted before the process exits anyway. Default 1,000.
   */
  forceGrace?: number;
  /**
   * Exit the process when done (default true): 0 after a clean drain, `canceledExitCode` when
   * the drain's report says work was dropped (canceled jobs, unsettled messages), 1 if the drain rejected or timed out, 128 +
   * signal number (130 SIGINT, 143 SIGTERM) when a second signal forced it. With false, only
   * `process.exitCode` is set.
   */
  exit?: boolean;
  /**
   * The exit code when `drain` resolves with a report that counts dropped work — a
   * `DrainReport`, a pipeline's or a consumer's report with `canceled > 0` (e.g.
   * `pool.drain({ timeout })` hit its deadline), a consumer's report with `unsettled > 0` (acks,
   * retries or dead letters the broker did not confirm: those messages are delivered again), or
   * an array of reports one of which does: the stop was not clean. An integer 0..255; default 1.
   * 0 only when everything finished and was settled.
   */
  canceledExitCode?: number;
}

/** What the drain callback is told. */
export interface ShutdownContext {
  /** The signal that started the shutdown. */
  signal: NodeJS.Signals;
  /** Aborts when the shutdown is forced (a later repeat of a signal, or the timeout): cancel the rest now. */
  abortSignal: AbortSignal;
}

/**
 * Graceful shutdown on process signals, in two phases. The first signal calls `drain` (stop
 * intake, finish in-flight work); when it settles the process exits 0 — or `canceledExitCode`
 * (default 1) when it resolved with a drain report that counts canceled jobs (or a consumer's
 * report counting `unsettled` messages), so `() => pool.drain({ timeout })` exits non-zero when
 * its deadline dropped work — or 1 if it
 * rejected (the rejection is written to stderr with `console.error`, so the reason outlives the
 * process). A
 * repeat within `debounce` ms is ignored. A later repeat — or the `timeout` — aborts
 * `ctx.abortSignal` so the drain can cancel what is left, and exits non-zero promptly.
 *
 * Several `shutdownOn` in one process (a pool's and a consumer's, say) whose drains run at once
 * end together: the process exits when the last drain finished — if any of them has `exit`
 * true — with the highest exit code any of them reached; a forced stop of one (a later repeat
 * of its signal, its `timeout`) forces them all, so the earliest deadline wins.
 *
 * @param signals - e.g. `['SIGTERM', 'SIGINT']`.
 * @param drain - called once, with the signal and an abort signal for a forced stop.
 * @returns an uninstaller that removes the handlers (e.g. for tests, or after a manual close).
 * @throws RangeError/TypeError naming the option when an option is invalid
 *   (`ERR_INVALID_OPTION`); TypeError `ERR_INVALID_ARGUMENT` for empty or unknown signals (and
 *   SIGKILL, SIGSTOP, SIGBUS, SIGFPE, SIGSEGV, SIGILL, which a drain cannot start from), a
 *   `drain` that is not a function, or options that are not an object (`null`: the defaults).
 * @example
 * ```ts
 * shutdownOn(['SIGTERM', 'SIGINT'], async (_sig, { abortSignal }) => {
 *   abortSignal.addEventListener('abort', () => void pool.abort('forced'));
 *   await pool.drain();
 * }, { timeout: 25_000 });
 * ```
 */
export function shutdownOn(
  signals: NodeJS.Signals[],
  drain: (signal: NodeJS.Signals, ctx: ShutdownContext) => Promise<unknown> | unknown,
  options: ShutdownOptions = {},
): () => void {
  if (!Array.isArray(signals) || signals.length === 0) {
    invalidArgument('signals', signals, 'a non-empty array of signal names');
  }
  if (typeof drain !== 'function') {
    invalidArgument('drain', drain, 'a function');
  }
  // As every options argument: null means the defaults; anything else that is not an object
  // (`shutdownOn(sigs, fn, 5_000)` for `{ timeout: 5_000 }`) is a mistake to report, not ignore.
  const opts = optionsObject<ShutdownOptions>(argument('opts'), options) ?? {};
  const timeout =
    opts.timeout === Number.POSITIVE_INFINITY
      ? undefined
      : optionalDuration('timeout', opts.timeout ?? 30_000);
  const debounce = nonNegativeMs('debounce', opts.debounce ?? 100);
  const forceGrace = nonNegativeMs('forceGrace', opts.forceGrace ?? 1_000);
  for (const name of signals) {
    if (typeof name !== 'string' || !(name in constants.signals) || UNTRAPPABLE.has(name)) {
      invalidArgument('signals', name, 'names of signals a process can handle');
    }
  }
  // Our own copy, each name once: a name listed twice would add two handlers, so one delivery
  // would count as a repeat (the forced stop, with a short `debounce`), and the uninstaller must
  // remove what was installed even if the caller's array changed since.
  const names = [...new Set(signals)];
  const exit = optionalBoolean('exit', opts.exit) ?? true;
  const canceledExitCode = nonNegativeInt('canceledExitCode', opts.canceledExitCode ?? 1, false);
  if (canceledExitCode > 255) {
    invalidOption('canceledExitCode', canceledExitCode, 'an exit code 0..255', true);
  }
  const controller = new AbortController();
  let firstAt = -1;
  let forcedCode: number | undefined;
  let timer: NodeJS.Timeout | undefined;

  let finished = false;
  const finish = (code: number): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    leave(member, code, exit); // its handlers come off when the last drain ends (see the group)
  };

  const force = (code: number, reason: string): void => {
    if (forcedCode !== undefined || finished) return;
    forcedCode = code;
    // Promised now: if the event loop empties before the grace timer (it is unref'd), the
    // process must still exit with the forced code, not 0.
    raise(member, code);
    controller.abort(new Error(reason));
    // Let the drain cancel cleanly for a moment; unref'd so it never holds the process open.
    setTimeout(() => finish(code), forceGrace).unref();
  };
  // Until the drain settles, an exit (say, the loop emptied under a hung drain) is a failure.
  const member: Member = { code: 1, force, end: () => uninstall() };

  const start = (signal: NodeJS.Signals): void => {
    join(member);
    if (timeout !== undefined) {
      timer = setTimeout(() => forceAll(1, `shutdown timed out after ${timeout} ms`), timeout);
    }
    Promise.resolve()
      .then(() => drain(signal, { signal, abortSignal: controller.signal }))
      .then(
        (report: unknown) => finish(forcedCode ?? (reportsDropped(report) ? canceledExitCode : 0)),
        (error: unknown) => {
          // The process is about to exit 1: the reason must not vanish with it.
          console.error(`shutdownOn: the drain after ${signal} failed:`, error);
          finish(forcedCode ?? 1);
        },
      );
  };

  const handler = (signal: NodeJS.Signals): void => {
    const now = Date.now();
    if (firstAt < 0) {
      firstAt = now;
      start(signal);
    } else if (now - firstAt > debounce) {
      forceAll(128 + (constants.signals[signal] ?? 0), `second ${signal}: shutdown forced`);
    }
  };

  const uninstall = (): void => {
    for (const s of names) process.off(s, handler);
  };
  try {
    for (const s of names) process.on(s, handler);
  } catch (error) {
    // All or nothing: a handler left behind would run a drain the caller thinks is not set up.
    uninstall();
    throw error;
  }
  return uninstall;
}

/**
 * True when the drain's resolved value is a report that says work was dropped — `canceled > 0`
 * (a Pool's, ThreadPool's, pipeline's or consumer's report) or `unsettled > 0` (a consumer's:
 * outcomes the broker did not confirm) — or an array holding one. One rule for every report
 * kind. A value whose inspection throws counts as unclean: nothing says the stop was clean.
 */
function reportsDropped(value: unknown): boolean {
  try {
    if (Array.isArray(value)) return value.some(reportsDropped);
    if (typeof value !== 'object' || value === null) return false;
    const report = value as { canceled?: unknown; unsettled?: unknown };
    return positive(report.canceled) || positive(report.unsettled);
  } catch {
    return true;
  }
}

function positive(count: unknown): boolean {
  return typeof count === 'number' && count > 0;
}

/** A non-negative whole number of ms (debounce, grace periods). */
function nonNegativeMs(name: string, value: unknown): number {
  if (value == null) nonNegativeInt(name, value, false);
  return numberAtLeast(name, value as number, 0, { integer: true, unit: 'ms' });
}
