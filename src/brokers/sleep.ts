/**
 * The one abortable sleep of the broker adapters (internal). Every wait a source makes — an
 * empty-queue poll, a reconnect back-off, a retry's wake-up — goes through here, so that closing
 * a source ends every wait at once and no timer outlives it.
 *
 * @module
 */

/**
 * Resolves after `ms` (clamped to >= 0), or at once when `signal` aborts or when a wake function
 * registered in `wakers` is called (the source saw work arrive, or is closing). Never rejects:
 * the caller reads `signal.aborted` to tell a cut-short sleep from a full one.
 *
 * @param ms how long to sleep, ms.
 * @param signal ends the sleep early; an already-aborted signal resolves at once.
 * @param wakers the sleep's wake function is in this set while it sleeps, and removed after.
 * @example
 * ```ts
 * const wakers = new Set<() => void>();
 * await sleep(500, signal, wakers); // another method may call every function in `wakers`
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal, wakers?: Set<() => void>): Promise<void> {
  // Aborted during an earlier await: a listener added now would never fire.
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      wakers?.delete(done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
    wakers?.add(done);
  });
}

/** Calls every wake function in `wakers` (each removes itself). */
export function wakeAll(wakers: Set<() => void>): void {
  for (const wake of [...wakers]) wake();
}
