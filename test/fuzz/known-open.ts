/**
 * Which attacks the fuzz suite runs.
 *
 * KNOWN_OPEN: hostile inputs that break the contract through defects known and not yet fixed on
 * this branch. Each flag turns one generator (or one strict check) off so the CI-budget run
 * stays green while the defect is open; when its fix lands, delete the flag so the suite attacks
 * that spot again. Each entry records the shrunk counterexample the suite found. Empty today:
 * every defect the suite found is fixed.
 *
 * BY_DESIGN: inputs for which sluice deliberately does what the checks would call a failure. They
 * are not defects and stay off; each entry says why and where the README states it.
 *
 * `FUZZ_ALL=1` ignores both sets (every attack on); `FUZZ_OPEN=flag,flag` turns on just those. A
 * replay (FUZZ_SEED/FUZZ_PATH) needs the same FUZZ_OPEN/FUZZ_ALL as the failing run: the flags
 * change the generators.
 */
export const KNOWN_OPEN: ReadonlySet<string> = new Set<string>([]);

export const BY_DESIGN: ReadonlySet<string> = new Set<string>([
  // pipeline: a source whose return() never settles (with a pull pending, or once the iteration
  // is stopped) holds the pipeline's end: its signal listener, drain() and the next() calls
  // queued behind a return() stay pending until return() settles. Deliberate: a stop waits for
  // the source's return() to settle before abandoning a pending pull (so a value it brings is
  // never lost), exactly as `for await` over that source hangs in `break`. README, "A pull
  // pending at an abort or a drain". Shrunk: source [value, value] with return() never settling,
  // one stage whose worker calls return() on the pipeline's iterator → 1 listener left.
  'pipeline-source-return-never-settles',
  // runPool/pipeline: a next() that never settles, of a source without return() or whose
  // return() never settles, pending at an abort, a drain or a return(): the iteration's end (and
  // its signal listener) waits for it for ever. Deliberate: such a source cannot be told to stop,
  // and a value its pull brings must settle as a result, so the pull is waited for; `for await`
  // over that source hangs the same way. README, "A pull pending at an abort or a drain".
  // Shrunk: source [never] without return(), pull, abort → next() never settles.
  'source-pull-that-cannot-be-stopped-never-settles',
]);

/** True when the attack behind `flag` should run. */
export function attack(flag: string): boolean {
  const open = (process.env.FUZZ_OPEN ?? '').split(',');
  return (
    process.env.FUZZ_ALL === '1' ||
    open.includes(flag) ||
    (!KNOWN_OPEN.has(flag) && !BY_DESIGN.has(flag))
  );
}
