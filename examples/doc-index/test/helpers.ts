import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** examples/doc-index */
export const EXAMPLE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The repository root. */
export const REPO_ROOT = resolve(EXAMPLE_DIR, '../..');
/**
 * The test corpus committed beside the tests (`test/corpus`, see its README): twelve real PDFs
 * with their licences and the five broken inputs. Tests read nothing outside the repository.
 */
export const CORPUS = join(EXAMPLE_DIR, 'test', 'corpus');
export const GOOD_PDFS = join(CORPUS, 'pdf');
export const BAD_PDFS = join(CORPUS, 'bad');
/** How many PDFs `GOOD_PDFS` holds. */
export const GOOD_COUNT = 12;
/**
 * The opt-in long corpus (`SLUICE_LONG_CORPUS`: a folder with `pdf/` and `bad/`, e.g. the
 * project's 170-PDF corpus), or undefined when the variable is unset.
 */
export const LONG_CORPUS = longCorpus();

function longCorpus(): string | undefined {
  const env = process.env.SLUICE_LONG_CORPUS;
  if (!env) return undefined;
  const dir = resolve(env);
  if (!existsSync(join(dir, 'pdf')) || !existsSync(join(dir, 'bad'))) {
    throw new Error(`SLUICE_LONG_CORPUS=${env}: expected pdf/ and bad/ in ${dir}`);
  }
  return dir;
}
export const BUNDLED_PDFS = join(EXAMPLE_DIR, 'pdfs');

/** A fresh temporary folder; call the returned `cleanup` in afterEach/afterAll. */
export function tempDir(prefix = 'doc-index-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
