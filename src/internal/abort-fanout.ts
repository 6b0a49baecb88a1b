/**
 * One 'abort' listener per distinct AbortSignal, fanned out to every subscriber. A caller who
 * passes one long-lived signal to thousands of jobs would otherwise get one listener per job —
 * and Node's MaxListenersExceededWarning past ten. Subscribers are dropped when their job
 * settles, and the single listener is removed when the last one goes. Internal.
 */
type Callback = (reason: unknown) => void;

const subscribers = new WeakMap<AbortSignal, Set<Callback>>();

function fire(this: AbortSignal): void {
  const set = subscribers.get(this);
  if (!set) return;
  // One at a time, each removed just before it runs: a callback that settles a job may
  // unsubscribe others (their jobs settled too), and those must then not be called.
  for (const callback of [...set]) {
    if (!set.delete(callback)) continue;
    callback(this.reason);
  }
  subscribers.delete(this);
}

/**
 * Calls `callback(signal.reason)` once when `signal` aborts. Returns the unsubscribe function.
 * The caller checks `signal.aborted` first: this never calls back synchronously.
 */
export function onAbort(signal: AbortSignal, callback: Callback): () => void {
  let set = subscribers.get(signal);
  if (!set) {
    set = new Set();
    subscribers.set(signal, set);
    signal.addEventListener('abort', fire, { once: true });
  }
  set.add(callback);
  return () => {
    const current = subscribers.get(signal);
    if (!current?.delete(callback) || current.size > 0 || signal.aborted) return;
    subscribers.delete(signal);
    signal.removeEventListener('abort', fire);
  };
}
