/**
 * Two-step shutdown on SIGINT/SIGTERM: the first signal asks the run to stop taking new
 * documents and finish the ones in flight; a second one aborts them. A repeat within 100 ms
 * counts as the same signal (a terminal or a process manager often delivers one twice).
 *
 * Why not sluice's `shutdownOn`: on a second signal it exits the process itself, and the indexer
 * wants to print its summary (with the aborted documents) before choosing its exit code.
 *
 * @module
 */

/** What {@link onShutdownSignals} hands back. */
export interface ShutdownControl {
  /** Aborted by the first signal: stop taking new documents. */
  readonly stop: AbortSignal;
  /** Aborted by the second signal: cancel what is in flight. */
  readonly abort: AbortSignal;
  /** The first signal received, if any. */
  readonly received: () => NodeJS.Signals | undefined;
  /** Removes the handlers. */
  readonly uninstall: () => void;
}

const SAME_SIGNAL_MS = 100;

/**
 * How long, ms, the documents in flight get after the first signal before they are canceled
 * (`--drain-timeout`; `index` and `serve`): sluice's consumers' own default.
 */
export const DEFAULT_DRAIN_TIMEOUT = 30_000;

/**
 * @example
 * ```ts
 * const shutdown = onShutdownSignals((s, step) => console.error(`${s}: ${step}`));
 * try { await runIndex({ ..., stop: shutdown.stop, signal: shutdown.abort }) } finally { shutdown.uninstall() }
 * ```
 */
export function onShutdownSignals(
  notify: (signal: NodeJS.Signals, step: 'stop' | 'abort') => void = () => {},
  signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'],
): ShutdownControl {
  const stop = new AbortController();
  const abort = new AbortController();
  let first: NodeJS.Signals | undefined;
  let firstAt = 0;
  const handler = (signal: NodeJS.Signals) => {
    if (first === undefined) {
      first = signal;
      firstAt = performance.now();
      notify(signal, 'stop');
      stop.abort(signal);
    } else if (performance.now() - firstAt > SAME_SIGNAL_MS && !abort.signal.aborted) {
      notify(signal, 'abort');
      abort.abort(signal);
    }
  };
  for (const s of signals) process.on(s, handler);
  return {
    stop: stop.signal,
    abort: abort.signal,
    received: () => first,
    uninstall: () => {
      for (const s of signals) process.off(s, handler);
    },
  };
}
