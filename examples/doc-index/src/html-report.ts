/**
 * `index --report run.html`: one self-contained HTML file — the run's summary and timeline plots
 * (running, queued and utilization per stage, the source's pulls) — that opens offline: the
 * charting library, its CSS and the data are all inlined, nothing is fetched.
 *
 * Why uPlot: one 51 kB minified file with no dependencies (MIT, maintained), canvas time series
 * with a shared cursor across plots, a legend that reads values under the cursor, and zoom — which
 * hand-written SVG would have to grow axes, ticks and legends to match. It is read from
 * node_modules when the report is written, so the file works wherever it is copied.
 *
 * @module
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { UsageError } from './errors.js';
import type { Summary } from './report.js';
import type { TimelineData } from './run-timeline.js';

/** What the report shows. */
export interface HtmlReportInput {
  timeline: TimelineData;
  summary: Summary;
  /** The page's title. Default 'sluice-doc-index run'. */
  title?: string;
}

const require = createRequire(import.meta.url);

function asset(path: string): string {
  return readFileSync(require.resolve(path), 'utf8');
}

// One colour per stage, the same in every plot (colour-blind-safe Okabe-Ito palette).
const COLOURS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#D55E00', '#56B4E9', '#F0E442'];

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** JSON that is safe inside a <script> element: no `</script>` or `<!--` can appear in it. */
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c');

/**
 * The report as an HTML string.
 *
 * @example
 * ```ts
 * const html = renderHtmlReport({ timeline: timeline.data(), summary });
 * ```
 */
export function renderHtmlReport(input: HtmlReportInput): string {
  const title = input.title ?? 'sluice-doc-index run';
  const s = input.summary;
  const data = {
    colours: COLOURS,
    timeline: input.timeline,
  };
  const js = asset('uplot/dist/uPlot.iife.min.js').replace(/<\/script/gi, '<\\/script');
  const css = asset('uplot/dist/uPlot.min.css');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${css}</style>
<style>${PAGE_CSS}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
${summaryHtml(s)}
<p class="how">How to read it: each stage is a pool with a bounded buffer before it. When a stage
slows down, its <b>queued</b> line climbs to the buffer's size, the stage before it stops finding
room for its results, so its <b>running</b> line drops, and the <b>source pulls</b> flatten: that
is backpressure, the source is read only as fast as the slowest stage goes.</p>
<div id="plots"></div>
<script>${js}</script>
<script id="timeline" type="application/json">${scriptJson(data)}</script>
<script>${PAGE_JS}</script>
</body>
</html>
`;
}

/**
 * Writes {@link renderHtmlReport}'s page to `path`.
 *
 * @example
 * ```ts
 * await writeHtmlReport('run.html', { timeline: timeline.data(), summary });
 * ```
 */
export async function writeHtmlReport(path: string, input: HtmlReportInput): Promise<void> {
  await writeFile(path, renderHtmlReport(input));
}

/**
 * Checks, before a run, that the report can be written where asked: a run is not to be spent
 * only to fail at its end.
 *
 * @throws UsageError naming `--report` when `path` is a folder or its folder is missing or
 * read-only.
 */
export function checkReportPath(path: string): void {
  const file = resolve(path);
  if (statSync(file, { throwIfNoEntry: false })?.isDirectory())
    throw new UsageError(`--report ${path}: is a folder, expected an .html file name`);
  const dir = dirname(file);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UsageError(`--report ${path}: cannot write in ${dir} (missing or read-only)`);
  }
}

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

function summaryHtml(s: Summary): string {
  const rows = s.stages
    .map(
      (st) => `<tr${st.name === s.bottleneck ? ' class="bottleneck"' : ''}>
<td>${escapeHtml(st.name)}</td><td>${st.concurrency}</td><td>${pct(st.utilization)}</td>
<td>${st.p50.toFixed(1)}</td><td>${st.p99.toFixed(1)}</td><td>${st.done}</td><td>${st.failed}</td>
<td>${st.name === s.bottleneck ? 'bottleneck' : ''}</td></tr>`,
    )
    .join('\n');
  const failures = s.failed.length
    ? `<details><summary>${s.failed.length} failed</summary><ul>${s.failed
        .map(
          (f) =>
            `<li>[${escapeHtml(f.stage)}${f.code ? ` ${escapeHtml(f.code)}` : ''}] ${escapeHtml(f.message)}</li>`,
        )
        .join('')}</ul></details>`
    : '';
  return `<p class="totals">${s.interruptedBy ? `Interrupted by ${escapeHtml(s.interruptedBy)}. ` : ''}
indexed <b>${s.indexed}</b> · skipped ${s.skipped} (unchanged) · failed <b>${s.failed.length}</b>
${s.canceled ? ` · canceled ${s.canceled}` : ''}${s.notStarted ? ` · not started ${s.notStarted}` : ''}
· of ${s.total} documents in ${(s.elapsedMs / 1000).toFixed(1)} s (${s.docsPerSecond.toFixed(1)} docs/s)</p>
<table id="stages"><thead><tr><th>stage</th><th>workers</th><th>utilization</th><th>p50 ms</th>
<th>p99 ms</th><th>done</th><th>failed</th><th></th></tr></thead><tbody>
${rows}
</tbody></table>
${failures}`;
}

const PAGE_CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1000px; }
h1 { font-size: 20px; margin: 0 0 8px; }
h2 { font-size: 15px; margin: 20px 0 4px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { padding: 2px 10px; text-align: right; border-bottom: 1px solid #ddd; }
th:first-child, td:first-child { text-align: left; }
tr.bottleneck td { font-weight: 600; }
.how { color: #555; max-width: 820px; }
.plot { margin-bottom: 8px; }
`;

// Runs in the page: one uPlot per metric, one series per stage, a shared cursor (sync) so the
// same instant lines up in every plot. window.sluiceReport is there for tests and the console.
const PAGE_JS = `
(function () {
  var data = JSON.parse(document.getElementById('timeline').textContent);
  var tl = data.timeline;
  var secs = tl.t.map(function (ms) { return ms / 1000; });
  var width = Math.min(960, document.body.clientWidth);
  var sync = uPlot.sync('run');
  var charts = [];
  var colour = function (i) { return data.colours[i % data.colours.length]; };
  function plot(id, title, yLabel, series, values, opts) {
    var box = document.createElement('div');
    box.className = 'plot';
    box.id = id;
    var h = document.createElement('h2');
    h.textContent = title;
    box.appendChild(h);
    document.getElementById('plots').appendChild(box);
    var u = new uPlot({
      width: width, height: 170,
      cursor: { sync: { key: sync.key } },
      scales: { x: { time: false }, y: opts && opts.y ? opts.y : {} },
      axes: [{ label: 'seconds since start' }, { label: yLabel }],
      series: [{ label: 's' }].concat(series),
    }, [secs].concat(values), box);
    u.root.dataset.metric = id;
    charts.push(u);
  }
  function perStage(metric, fmt) {
    return tl.stages.map(function (s, i) {
      return { label: s.name, stroke: colour(i), width: 2, value: fmt };
    });
  }
  function values(metric) { return tl.stages.map(function (s) { return s[metric]; }); }
  var n = function (u, v) { return v == null ? '-' : v.toFixed(1); };
  var p = function (u, v) { return v == null ? '-' : Math.round(v * 100) + '%'; };
  var fromZero = { range: function (u, min, max) { return [0, Math.max(1, max)]; } };
  plot('running', 'Running: jobs in each stage', 'jobs', perStage('running', n), values('running'),
    { y: fromZero });
  plot('queued', 'Queued: jobs waiting for each stage (the previous stage\\'s output buffer)', 'jobs',
    perStage('queued', n), values('queued'), { y: fromZero });
  plot('utilization', 'Utilization: running ÷ concurrency', 'busy slots',
    perStage('utilization', p), values('utilization'), { y: { range: [0, 1] } });
  var flow = [{ label: 'source pulls', stroke: '#000', width: 2, dash: [6, 3] }].concat(
    tl.stages.map(function (s, i) { return { label: s.name + ' done', stroke: colour(i), width: 1.5 }; }));
  plot('pulls', 'Source pulls and documents done (cumulative)', 'documents', flow,
    [tl.pulls].concat(values('done')), { y: fromZero });
  window.sluiceReport = {
    stages: tl.stages.map(function (s) { return s.name; }),
    samples: tl.t.length,
    charts: charts.map(function (u) {
      return { metric: u.root.dataset.metric,
        series: u.series.slice(1).map(function (s) { return s.label; }),
        points: u.data[0].length };
    }),
  };
})();
`;
