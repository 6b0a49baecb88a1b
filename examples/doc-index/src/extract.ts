/**
 * Text extraction: the ThreadPool worker module of the 'extract' stage. Its default export reads
 * one PDF and returns the text of each page. It is CPU-bound (~50 ms per document), which is why it
 * runs in worker threads; it also works in-process (tests and the benchmark's baseline call it
 * directly).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';
import { ExtractError } from './errors.js';

/** Input of the extract stage: one file. */
export interface ExtractJob {
  /** Path of the PDF (absolute, as produced by the source). */
  path: string;
}

/** Output of the extract stage. Plain data: it crosses the thread boundary by structured clone. */
export interface ExtractedDocument {
  path: string;
  /** sha256 (hex) of the bytes that were extracted — the index's "unchanged" check. */
  sha256: string;
  /** File size in bytes. */
  bytes: number;
  /** Text of each page, in page order (index 0 = page 1). A page without text is ''. */
  pages: string[];
}

// Why these pdfjs options: there is no DOM and no canvas in a worker thread, and we only want
// text. Font faces and eval'd glyph programs only matter for rendering; system fonts would make
// output depend on the machine. pdfjs runs its own "worker" in this thread (fake worker), since
// spawning a nested worker per document would only add start-up cost.
const PDFJS_OPTIONS = {
  disableFontFace: true,
  isEvalSupported: false,
  useSystemFonts: false,
  useWorkerFetch: false,
  verbosity: 0,
} as const;

/**
 * Reads `job.path` and returns its text per page.
 *
 * @throws ExtractError (code `ERR_EXTRACT`) naming the file and the reason when the file is empty,
 * is not a PDF, or pdfjs cannot parse it. The error fails that one job only.
 * @example
 * ```ts
 * const pool = await ThreadPool.fromModule<typeof import('./extract.js')>(
 *   new URL('./extract.js', import.meta.url),
 * );
 * const doc = await pool.run({ path: '/tmp/a.pdf' }); // an ExtractedDocument
 * ```
 */
export default async function extract(job: ExtractJob): Promise<ExtractedDocument> {
  const { path } = job;
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new ExtractError(path, `cannot read the file (${(err as Error).message})`, {
      cause: err,
    });
  }
  checkHeader(path, bytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const pages = await extractPages(path, bytes);
  return { path, sha256, bytes: bytes.length, pages };
}

function checkHeader(path: string, bytes: Buffer): void {
  if (bytes.length === 0) throw new ExtractError(path, 'the file is empty (0 bytes)');
  // The spec puts %PDF- first; readers accept it within the first 1 KiB (after junk or a BOM).
  if (bytes.subarray(0, 1024).indexOf('%PDF-') === -1) {
    throw new ExtractError(path, 'not a PDF (no %PDF- header in the first 1024 bytes)');
  }
}

async function extractPages(path: string, bytes: Buffer): Promise<string[]> {
  // pdfjs takes ownership of (and may detach) the array it is given, so hand it a copy.
  const task = getDocument({ ...PDFJS_OPTIONS, data: new Uint8Array(bytes) });
  let doc: Awaited<typeof task.promise>;
  try {
    doc = await task.promise;
  } catch (err) {
    await task.destroy();
    throw new ExtractError(path, `not a readable PDF (${describe(err)})`, { cause: err });
  }
  try {
    const pages: string[] = [];
    for (let n = 1; n <= doc.numPages; n++) pages.push(await pageText(doc, n));
    return pages;
  } catch (err) {
    throw new ExtractError(path, `failed while reading its pages (${describe(err)})`, {
      cause: err,
    });
  } finally {
    await doc.destroy();
  }
}

type PdfDocument = Awaited<ReturnType<typeof getDocument>['promise']>;

async function pageText(doc: PdfDocument, n: number): Promise<string> {
  const page = await doc.getPage(n);
  try {
    const content = await page.getTextContent();
    let text = '';
    for (const item of content.items) {
      if (!('str' in item)) continue;
      text += item.str;
      if (item.hasEOL) text += '\n';
    }
    return text;
  } finally {
    page.cleanup();
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
