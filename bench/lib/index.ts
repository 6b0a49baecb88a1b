// Shared helpers for bench/*.ts suites. Typical suite:
//   export const cases = { mine: async (p: { n: number }, ctx) => { ...; return { elapsedNs } } } satisfies Cases;
//   if (isMain(import.meta.url)) { ensureBuilt(); const run = await runIsolated(fileURLToPath(import.meta.url), 'mine', { n: 1e5 }); ... }
export { ensureBuilt } from './build.js';
export type { CaseContext, CaseFn, Cases } from './child.js';
export { count, markdownTable, mib, ns, ratio, seconds } from './format.js';
export type { IsolatedRun, IsolateOptions, RssSample } from './isolate.js';
export { rssGrowthSince, runIsolated } from './isolate.js';
export { withMachineLock } from './lock.js';
export {
  machineLine,
  packageVersion,
  printHeader,
  sluiceVersion,
  versionsLine,
} from './machine.js';
export { benchDir, isMain, repoRoot, scratchDir } from './paths.js';
export { loadSluice, type Sluice } from './sluice.js';
export { median, range } from './stats.js';
export { timed } from './timing.js';
