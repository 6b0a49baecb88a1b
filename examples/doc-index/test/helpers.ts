import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** examples/doc-index */
export const EXAMPLE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The repository root. */
export const REPO_ROOT = resolve(EXAMPLE_DIR, '../..');
/**
 * The shared test corpus: `$SLUICE_CORPUS`, else `../shared/corpus` beside the repository (CI
 * clones the repo next to shared/). A missing corpus fails loudly, naming where it looked.
 */
export const CORPUS = findCorpus();

function findCorpus(): string {
  const dir = resolve(process.env.SLUICE_CORPUS ?? resolve(REPO_ROOT, '../shared/corpus'));
  if (!existsSync(join(dir, 'pdf')) || !existsSync(join(dir, 'bad'))) {
    throw new Error(
      `test corpus not found at ${dir} (expected pdf/ and bad/ in it): clone the repository ` +
        'beside the shared/ folder, or set SLUICE_CORPUS to the corpus folder',
    );
  }
  return dir;
}
export const GOOD_PDFS = join(CORPUS, 'pdf');
export const BAD_PDFS = join(CORPUS, 'bad');
export const BUNDLED_PDFS = join(EXAMPLE_DIR, 'pdfs');

/** A fresh temporary folder; call the returned `cleanup` in afterEach/afterAll. */
export function tempDir(prefix = 'doc-index-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
