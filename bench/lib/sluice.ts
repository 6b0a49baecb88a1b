/** The public surface of sluice as built in dist/. */
export type Sluice = typeof import('../../dist/index.js');

/**
 * Loads the built sluice (`dist/index.js`) when a case runs rather than when the suite module
 * is linked: the suite's parent process never needs it, and a stale or half-built dist/ then
 * fails only the cases that use it, after `ensureBuilt()` had its chance to rebuild. Inside a
 * bundled child the import is rewritten to the dist in use (see bundle.ts).
 */
export function loadSluice(): Promise<Sluice> {
  return import('../../dist/index.js');
}
