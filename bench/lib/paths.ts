import { fileURLToPath } from 'node:url';

/** Absolute path of the repository root (two levels above this file). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Absolute path of the bench/ folder. */
export const benchDir = fileURLToPath(new URL('../', import.meta.url));

/** Scratch folder for bundled child programs (git-ignored). */
export const scratchDir = fileURLToPath(new URL('../../.tmp/bench/', import.meta.url));

/**
 * True when the calling module is the program being run (`npx tsx bench/x.ts`), false when it was
 * imported, and always false inside an isolated child (whose bundle inlines the suite module, so
 * `import.meta.url` would otherwise match the child's own entry).
 */
export function isMain(moduleUrl: string): boolean {
  if (process.env.SLUICE_BENCH_CHILD) return false;
  const entry = process.argv[1];
  return entry !== undefined && fileURLToPath(moduleUrl) === entry;
}
