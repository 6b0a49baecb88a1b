/**
 * The pipeline's source: the command line's files and folders, expanded to PDF paths, minus the
 * documents already indexed with the same content. It is pulled lazily by the pipeline, so it
 * only reads (and hashes) a file when the extract stage has room for it, and it stops yielding as
 * soon as the run is told to stop — that is how a signal "stops taking new documents".
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UsageError } from './errors.js';
import type { ExtractJob } from './extract.js';

/**
 * Expands `inputs` to absolute file paths: a file is taken as is (whatever its extension);
 * a folder contributes every `*.pdf` below it (case-insensitive, recursive). Sorted, no duplicates.
 *
 * @throws UsageError when an input does not exist or is neither a file nor a folder.
 * @example
 * ```ts
 * await listPdfs(['docs/', 'extra/manual.pdf']);
 * ```
 */
export async function listPdfs(inputs: readonly string[]): Promise<string[]> {
  const found = new Set<string>();
  for (const input of inputs) {
    const abs = resolve(input);
    const info = await stat(abs).catch((err: NodeJS.ErrnoException) => {
      // Only a missing path is "no such file"; a symlink loop or a denied folder says what it is.
      if (err.code === 'ENOENT') return undefined;
      // "ELOOP: too many symbolic links encountered, stat '/abs/path'" -> the middle part.
      const reason = /^\w+: (.*?), \w+ '/.exec(err.message)?.[1] ?? err.message;
      throw new UsageError(`cannot read ${input}: ${reason}`);
    });
    if (!info) throw new UsageError(`no such file or folder: ${input}`);
    if (info.isFile()) found.add(abs);
    else if (info.isDirectory()) for (const f of await pdfsUnder(abs)) found.add(f);
    else throw new UsageError(`not a file or folder: ${input}`);
  }
  return [...found].sort();
}

/**
 * {@link listPdfs}, refusing inputs without a single PDF: indexing or enqueueing nothing is a
 * mistaken path, not a success (unlike a re-run that finds every PDF already indexed).
 *
 * @throws UsageError as listPdfs does, and when no PDF is found.
 */
export async function requirePdfs(inputs: readonly string[]): Promise<string[]> {
  const paths = await listPdfs(inputs);
  if (!paths.length) throw new UsageError(`no PDF files found in ${inputs.join(', ')}`);
  return paths;
}

async function pdfsUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.pdf'))
    .map((e) => join(e.parentPath, e.name));
}

/** What {@link pendingDocuments} needs from the index. */
export interface IndexedCheck {
  isIndexed(path: string, sha256: string): boolean;
}

/**
 * Yields `{ path }` for each file not yet indexed with its current content; calls `onSkip` for
 * the others. Stops early (without an error) once `stop` is aborted. A file that cannot be read
 * is yielded anyway, so the extract stage reports it as that document's failure.
 */
export async function* pendingDocuments(
  paths: readonly string[],
  index: IndexedCheck,
  opts: { stop?: AbortSignal; onSkip?: (path: string) => void } = {},
): AsyncGenerator<ExtractJob> {
  for (const path of paths) {
    if (opts.stop?.aborted) return;
    const sha256 = await hashFile(path);
    if (opts.stop?.aborted) return;
    if (sha256 !== undefined && index.isIndexed(path, sha256)) opts.onSkip?.(path);
    else yield { path };
  }
}

async function hashFile(path: string): Promise<string | undefined> {
  try {
    return createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
  } catch {
    return undefined;
  }
}
