/**
 * Hostile inputs that break the contract through defects known and not yet fixed on this branch.
 * Each flag turns one generator (or one strict check) off so the CI-budget run stays green while
 * the defect is open. When a fix lands, delete its flag here: the fuzz suite then attacks that
 * spot again. `FUZZ_ALL=1` ignores this set (every attack on); `FUZZ_OPEN=flag,flag` turns on
 * just those. A replay (FUZZ_SEED/FUZZ_PATH) needs the same FUZZ_OPEN/FUZZ_ALL as the failing run:
 * the flags change the generators.
 *
 * Each entry: the shrunk counterexample the suite found.
 */
export const KNOWN_OPEN: ReadonlySet<string> = new Set<string>([
  // Pool/runPool/pipeline: a worker throws (or rejects with) a revoked Proxy, or a Proxy whose
  // getPrototypeOf trap throws. Shrunk: Pool { concurrency 1, queueSize 0 }, submit a worker
  // that throws a revoked Proxy synchronously → the job never settles, drain() hangs, unhandled
  // rejection "Cannot perform 'getPrototypeOf' on a proxy that has been revoked".
  'thrown-revoked-proxy',
  // Pool/runPool/pipeline stages: a job canceled (caller signal, timeout, abort) frees its slot
  // before its ctx.signal aborts, so its replacement starts while it is still live. Shrunk:
  // Pool { concurrency 1, timeout 5 }: submit A (pending), submit B, advance 5 ms → B's worker
  // is called while A's signal is not aborted yet (2 live workers, limit 1). runPool and a
  // pipeline stage with timeout 5: the same with A pending, B sync.
  'live-workers-after-cancel',
  // Pool: submit(B, { signal }) waits, is accepted and started, and B's worker aborts that signal
  // synchronously → submit rejects with AbortError although B ran (stats count it, canceled 1).
  'submit-signal-aborted-by-its-worker',
  // runPool/pipeline: a source whose next() throws synchronously. Shrunk: source [sync-throw],
  // one next() → it rejects with the error, but the next next() never settles.
  'source-next-throws-sync',
  // runPool/pipeline: next() returns a plain { value, done } → "TypeError: ….then is not a
  // function" instead of the value.
  'source-next-plain-object',
  // runPool/pipeline: a pull pending at the stop loses its value. runPool: source [deferred,
  // never], next(), abort the signal, then the pending pull yields a value → no result for it.
  // pipeline: source [value], next(), abort(), next() → job 0 (already handed out by the source,
  // still inside the pipeline's wrapper) never yields.
  'value-after-stop-dropped',
  // ThreadPool: resize down then up runs more jobs at once than threads.
  'threadpool-resize-overrun',
  // ThreadPool: the pool's own signal keeps its listener after drain. Shrunk: { threads: 1,
  // signal }, resize(1), drain() → 1 listener left.
  'threadpool-signal-listener',
  // pipeline: a source whose return() never settles keeps the pipeline's signal listener, drain()
  // and next() calls queued behind the return() pending for ever once the iteration is stopped.
  // Shrunk: source [value, value] with return() never settling, one stage whose worker calls
  // return() on the pipeline's iterator → 1 listener left on the pipeline's signal. NOT among
  // the defects; a judgment call (for-await over that source hangs the same way), listed
  // so that the decision is made rather than forgotten.
  'pipeline-source-return-never-settles',
  // pipeline: return() on its iterator before any next(), then next() → drain() never resolves.
  'pipeline-return-before-next',
]);

/** True when the attack behind `flag` should run. */
export function attack(flag: string): boolean {
  const open = (process.env.FUZZ_OPEN ?? '').split(',');
  return process.env.FUZZ_ALL === '1' || open.includes(flag) || !KNOWN_OPEN.has(flag);
}
