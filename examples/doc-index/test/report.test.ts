import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bottleneckOf, formatSummary, namingDocument, type Summary } from '../src/report.js';
import { listPdfs, requirePdfs } from '../src/sources.js';
import { tempDir } from './helpers.js';

const stage = (name: string, utilization: number) => ({
  name,
  concurrency: 2,
  done: 10,
  failed: 0,
  utilization,
  p50: 5,
  p99: 50,
});

describe('summary', () => {
  it('names the stage with the highest utilization as the bottleneck', () => {
    expect(bottleneckOf([stage('extract', 0.4), stage('embed', 0.97), stage('insert', 0.1)])).toBe(
      'embed',
    );
    expect(bottleneckOf([])).toBeUndefined();
  });

  it('names no bottleneck when no stage did any work (every document skipped)', () => {
    const idle = (name: string) => ({ ...stage(name, 0), done: 0, p50: 0, p99: 0 });
    expect(bottleneckOf([idle('extract'), idle('embed'), idle('insert')])).toBeUndefined();
    expect(bottleneckOf([idle('extract'), stage('embed', 0.01)])).toBe('embed');
  });

  it('puts the path in front of a message that does not name its document', () => {
    expect(namingDocument('/x/a.pdf', 'job timed out after 1 ms')).toBe(
      '/x/a.pdf: job timed out after 1 ms',
    );
    const named = 'cannot extract text from /x/a.pdf: the file is empty (0 bytes)';
    expect(namingDocument('/x/a.pdf', named)).toBe(named);
  });

  it('says "1 worker" and "1 document" in the singular', () => {
    const text = formatSummary({
      total: 1,
      indexed: 1,
      skipped: 0,
      failed: [],
      canceled: 0,
      notStarted: 0,
      elapsedMs: 100,
      docsPerSecond: 10,
      stages: [{ ...stage('extract', 0.5), concurrency: 1 }, stage('embed', 0.1)],
      bottleneck: 'extract',
      embedder: { kind: 'lexical', model: 'lexical-v1', dimension: 1024 },
      db: 'i.db',
    });
    expect(text).toContain('· of 1 document\n');
    // The singular keeps the columns aligned with the plural.
    expect(text).toContain('    extract   1 worker   util  50%');
    expect(text).toContain('    embed     2 workers  util  10%');
  });

  it('prints counts, throughput, each failure with its reason, and how to resume', () => {
    const summary: Summary = {
      total: 10,
      indexed: 6,
      skipped: 1,
      failed: [
        { path: '/x/bad.pdf', stage: 'extract', code: 'ERR_EXTRACT', message: 'bad.pdf: empty' },
      ],
      canceled: 0,
      notStarted: 2,
      interruptedBy: 'SIGTERM',
      elapsedMs: 2000,
      docsPerSecond: 3.5,
      stages: [stage('extract', 0.9), stage('embed', 0.1)],
      bottleneck: 'extract',
      embedder: { kind: 'lexical', model: 'lexical-v1', dimension: 1024 },
      db: 'i.db',
    };
    const text = formatSummary(summary);
    expect(text).toMatch(/^Interrupted by SIGTERM\./);
    expect(text).toContain(
      'indexed 6 · skipped 1 (unchanged) · failed 1 · not started 2 · of 10 documents',
    );
    expect(text).toContain('3.5 docs/s · embedder lexical lexical-v1 (1024 dims)');
    expect(text).toMatch(/extract +2 workers +util +90%.*<- bottleneck/);
    expect(text).toContain('[extract ERR_EXTRACT] bad.pdf: empty');
    expect(text).toContain('Run the same command again to index the rest.');
  });
});

describe('listPdfs', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('finds *.pdf recursively (any case), takes named files as they are, sorted without duplicates', async () => {
    mkdirSync(join(tmp.dir, 'a', 'b'), { recursive: true });
    for (const f of ['a/one.pdf', 'a/b/two.PDF', 'a/notes.txt', 'named.bin'])
      writeFileSync(join(tmp.dir, f), 'x');
    const found = await listPdfs([
      join(tmp.dir, 'a'),
      join(tmp.dir, 'named.bin'),
      join(tmp.dir, 'a', 'one.pdf'),
    ]);
    expect(found).toEqual([
      join(tmp.dir, 'a/b/two.PDF'),
      join(tmp.dir, 'a/one.pdf'),
      join(tmp.dir, 'named.bin'),
    ]);
  });

  it('rejects a missing input with a usage error', async () => {
    await expect(listPdfs([join(tmp.dir, 'nope')])).rejects.toMatchObject({ code: 'ERR_USAGE' });
  });

  it('requirePdfs: inputs without a single PDF are a usage error', async () => {
    mkdirSync(join(tmp.dir, 'texts'));
    writeFileSync(join(tmp.dir, 'texts', 'notes.txt'), 'x');
    await expect(requirePdfs([join(tmp.dir, 'texts')])).rejects.toMatchObject({
      code: 'ERR_USAGE',
      message: `no PDF files found in ${join(tmp.dir, 'texts')}`,
    });
    expect(await requirePdfs([join(tmp.dir, 'a')])).toHaveLength(2);
  });
});
