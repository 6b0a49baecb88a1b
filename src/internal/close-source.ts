/**
 * How both runPool engines close a job source they stop pulling. Internal.
 *
 * @module
 */

/**
 * Tells `source` to stop (its `return()`), then calls `abandonPending` to give up on a pull
 * still pending. Resolves once done; at once when the source has no `return()`: it cannot be
 * told to stop, so a pull pending now is waited for, whatever it takes, since what it brings
 * must settle as a result.
 *
 * The pending pull is abandoned rather than waited for because the source acknowledged the stop
 * and the pull may never settle (a hand-written `next()` that ignores its own `return()`). An
 * async generator never gets there with a pull pending: it queues `return()` behind that
 * `next()`; a Channel's iterator settles the pending `next()` in its `return()`.
 */
export async function closeSource(
  source: Iterator<unknown> | AsyncIterator<unknown>,
  abandonPending: () => void,
): Promise<void> {
  if (typeof source.return !== 'function') return;
  try {
    await source.return();
  } catch {
    // The source's own cleanup failed while we were stopping; nothing is waiting for it.
  }
  // One turn, so that a return() that throws synchronously (no turn at all) does not abandon a
  // pull the source had already answered before its callbacks ran: that value is ours.
  await undefined;
  abandonPending();
}
