import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { renderHtmlReport } from '../src/html-report.js';
import type { Summary } from '../src/report.js';
import type { TimelineData } from '../src/run-timeline.js';
import { cli } from './cli-harness.js';
import { CORPUS, REPO_ROOT, tempDir } from './helpers.js';
import { startOpenAiServer } from './openai-server.js';

// Debian's chromium, driven by playwright-core (no browser download). CI installs it (.ci/run);
// elsewhere the browser test is skipped, saying why.
const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
// `UPDATE_SCREENSHOT=1 npx vitest run examples/doc-index/test/html-report.test.ts` refreshes the
// README's picture.
const SCREENSHOT = join(REPO_ROOT, 'docs', 'run-report.png');

const tmp = tempDir('doc-index-report-');
afterAll(() => tmp.cleanup());

const STAGES = ['extract', 'embed', 'insert'];

function summary(overrides: Partial<Summary> = {}): Summary {
  return {
    total: 1,
    indexed: 0,
    skipped: 0,
    failed: [],
    canceled: 0,
    notStarted: 0,
    elapsedMs: 1000,
    docsPerSecond: 1,
    stages: [],
    bottleneck: undefined,
    embedder: { kind: 'lexical', model: 'lexical-v1', dimension: 16 },
    db: 'x.db',
    ...overrides,
  };
}

const emptyTimeline: TimelineData = { intervalMs: 100, t: [0], pulls: [0], stages: [] };

describe('the HTML report', () => {
  it('inlines everything and keeps a document path from closing its script', () => {
    const html = renderHtmlReport({
      timeline: {
        ...emptyTimeline,
        stages: [
          {
            name: 'ex</script><script>alert(1)</script>',
            concurrency: [1],
            running: [0],
            queued: [0],
            utilization: [0],
            done: [0],
          },
        ],
      },
      summary: summary({
        failed: [{ path: '/a/<b>.pdf', stage: 'extract', message: '/a/<b>.pdf: broken </script>' }],
      }),
    });
    // One closing tag per script element: uPlot, the data, the page's code.
    expect(html.match(/<\/script>/g)).toHaveLength(3);
    expect(html).toContain('/a/&#60;b&#62;.pdf: broken &#60;/script&#62;');
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);
  });

  it('refuses a --report it could not write before reading any document (exit 2)', async () => {
    const db = join(tmp.dir, 'never.db');
    const run = await cli([
      'index',
      CORPUS,
      '--db',
      db,
      '--report',
      join(tmp.dir, 'no-such-folder', 'run.html'),
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--report .*run\.html: cannot write in .*no-such-folder/);
    expect(existsSync(db)).toBe(false);
  });

  it.skipIf(!HAVE_CHROMIUM)(
    HAVE_CHROMIUM
      ? 'index --report writes a page that renders in headless Chromium, one series per stage'
      : `skipped: ${CHROMIUM} is not installed (apt-get install -y chromium)`,
    async () => {
      // A slow embeddings server makes 'embed' the slow stage: its buffer fills, 'extract' waits.
      const server = await startOpenAiServer((_req, _n, _res, ok) => void setTimeout(ok, 600));
      const db = join(tmp.dir, 'report.db');
      const report = join(tmp.dir, 'run.html');
      const threads = 2;
      let browser: Browser | undefined;
      try {
        const run = await cli([
          'index',
          CORPUS,
          '--db',
          db,
          '--threads',
          String(threads),
          '--embed-url',
          server.url,
          '--embed-model',
          'fake-embed',
          '--embed-concurrency',
          '1',
          '--progress',
          'none',
          '--report',
          report,
        ]);
        expect(run.stderr).toBe('');
        expect(run.code).toBe(1); // the five broken PDFs
        const html = readFileSync(report, 'utf8');

        // The data behind the plots: every pull and every document is there at the end, and
        // the buffer before 'embed' never held more than extract can have ahead of it
        // (its buffer, `threads`, plus the `threads` jobs running when it filled).
        const data = JSON.parse(
          /<script id="timeline" type="application\/json">(.*?)<\/script>/s.exec(html)?.[1] ?? '',
        ) as { timeline: TimelineData };
        const tl = data.timeline;
        expect(tl.stages.map((s) => s.name)).toEqual(STAGES);
        expect(tl.pulls.at(-1)).toBe(17);
        expect(tl.stages.map((s) => s.done.at(-1))).toEqual([17, 12, 12]);
        const embedQueued = tl.stages[1]?.queued ?? [];
        expect(Math.max(...embedQueued)).toBeLessThanOrEqual(2 * threads);

        browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
        const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
        const errors: string[] = [];
        const requests: string[] = [];
        page.on('console', (m) => {
          if (m.type() === 'error') errors.push(m.text());
        });
        page.on('pageerror', (e) => errors.push(String(e)));
        page.on('request', (r) => requests.push(r.url()));
        const url = pathToFileURL(report).href;
        await page.goto(url);
        await page.waitForFunction('"sluiceReport" in window');
        // Strings, not functions: this file is compiled without the DOM library.
        const shown = (await page.evaluate('window.sluiceReport')) as {
          stages: string[];
          samples: number;
          charts: Array<{ metric: string; series: string[]; points: number }>;
        };
        expect(errors).toEqual([]);
        // Self-contained: the page itself is the only thing loaded.
        expect(requests).toEqual([url]);
        expect(shown.stages).toEqual(STAGES);
        expect(shown.charts.map((c) => c.metric)).toEqual([
          'running',
          'queued',
          'utilization',
          'pulls',
        ]);
        for (const chart of shown.charts.slice(0, 3)) expect(chart.series).toEqual(STAGES);
        expect(shown.charts[3]?.series).toEqual([
          'source pulls',
          ...STAGES.map((s) => `${s} done`),
        ]);
        for (const chart of shown.charts) expect(chart.points).toBe(tl.t.length);
        // Drawn: one uPlot canvas per chart, legends naming each stage.
        expect(await page.locator('.uplot canvas').count()).toBe(4);
        expect(
          await page.locator('#queued .u-legend .u-series .u-label').allTextContents(),
        ).toEqual(['s', ...STAGES]);
        const png = await page.screenshot({ fullPage: true });
        expect(png.subarray(1, 4).toString()).toBe('PNG');
        if (process.env.UPDATE_SCREENSHOT) {
          mkdirSync(join(REPO_ROOT, 'docs'), { recursive: true });
          writeFileSync(SCREENSHOT, png);
        }
      } finally {
        await browser?.close();
        await server.close();
      }
    },
    180_000,
  );
});
