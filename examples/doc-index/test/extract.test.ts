import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import extract from '../src/extract.js';
import { BAD_PDFS, BUNDLED_PDFS } from './helpers.js';

// The ThreadPool worker function, called in-process: same code, no thread.
describe('extract (in-process)', () => {
  it('returns the text of every page with the content hash', async () => {
    const file = join(BUNDLED_PDFS, readdirSync(BUNDLED_PDFS).find((f) => f.endsWith('.pdf'))!);
    const doc = await extract({ path: file });
    expect(doc.path).toBe(file);
    expect(doc.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(doc.pages.length).toBeGreaterThan(0);
    expect(doc.pages.join(' ').length).toBeGreaterThan(500);
  });

  it.each([
    ['empty.pdf', /empty\.pdf: the file is empty \(0 bytes\)/],
    ['not-a-pdf.pdf', /not-a-pdf\.pdf: not a PDF \(no %PDF- header/],
    ['truncated-head.pdf', /truncated-head\.pdf: not a readable PDF \(InvalidPDFException: /],
    ['no-trailer.pdf', /no-trailer\.pdf: not a readable PDF \(InvalidPDFException: /],
    ['corrupted-bytes.pdf', /corrupted-bytes\.pdf: not a readable PDF \(InvalidPDFException: /],
  ])('fails %s with a clear error naming the file', async (name, message) => {
    const err = await extract({ path: join(BAD_PDFS, name) }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'ERR_EXTRACT',
      name: 'ExtractError',
      message: expect.stringMatching(message),
    });
  });

  it('fails a missing file with the reason', async () => {
    const err = await extract({ path: '/nonexistent/x.pdf' }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'ERR_EXTRACT',
      message: expect.stringMatching(/x\.pdf: cannot read the file \(ENOENT/),
    });
  });
});
