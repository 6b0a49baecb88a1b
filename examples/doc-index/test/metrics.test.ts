/**
 * `serve --metrics-port`: a running server's /metrics, parsed with a Prometheus text-format parser,
 * has every metric the README documents, and its counts match what the run did (the committed
 * corpus, one broken PDF, one malformed message, over Redis).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { scrape } from '../../../test/prometheus/scrape.js';
import { parseBrokerUrl } from '../src/broker-url.js';
import { openProducer } from '../src/queue.js';
import type { ServeSummary } from '../src/serve.js';
import { cli, start, until } from './cli-harness.js';
import { GOOD_COUNT, GOOD_PDFS, REPO_ROOT, tempDir } from './helpers.js';
import { redisProbe } from './queue-probes.js';

const tmp = tempDir('doc-index-metrics-');
afterAll(() => tmp.cleanup());

/** The metric names of the README's Metrics table. */
function documentedMetrics(): string[] {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Metrics (`sluice/prometheus`)'));
  const table = section.slice(0, section.indexOf('\nWhat to know'));
  return table
    .split('\n')
    .filter((line) => line.startsWith('| `sluice_'))
    .map((line) => line.slice(3, line.indexOf('`', 3)));
}

describe('serve --metrics-port', () => {
  it('serves /metrics with every documented metric, and counts that match the run', async () => {
    const documented = documentedMetrics();
    expect(documented.length).toBeGreaterThanOrEqual(14);
    const probe = await redisProbe();
    const db = join(tmp.dir, 'metrics.db');
    const broken = join(tmp.dir, 'broken.pdf');
    writeFileSync(broken, '%PDF-1.4\nthis is not the rest of a PDF\n');
    const good = readdirSync(GOOD_PDFS)
      .filter((f) => f.endsWith('.pdf'))
      .map((f) => join(GOOD_PDFS, f));
    const server = start([
      'serve',
      '--from',
      probe.url,
      '--db',
      db,
      '--threads',
      '1',
      '--concurrency',
      '2',
      '--json',
      '--metrics-port',
      '0',
    ]);
    onTestFinished(async () => {
      if (server.child.exitCode === null) server.child.kill('SIGKILL');
      await probe.cleanup();
    });
    await until(() => server.stderr().includes('serving '), 'server ready', 20_000);
    const url = /metrics on (http:\S+)/.exec(server.stderr())?.[1];
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const read = async () => {
      const res = await fetch(url as string);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return scrape(await res.text());
    };

    const enqueued = await cli(['enqueue', ...good, broken, '--to', probe.url]);
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const producer = await openProducer(parseBrokerUrl(probe.url));
    await producer.send([{ file: 'no path here' }]);
    await producer.close();
    const messages = GOOD_COUNT + 2;
    const handled = () => server.stderr().match(/^(indexed|skipped|dead-lettered) /gm)?.length ?? 0;
    await until(() => handled() >= messages, `all ${messages} messages handled`, 30_000);
    for (let left = await probe.remaining(); left > 0; left = await probe.remaining()) {
      await new Promise((r) => setTimeout(r, 50));
    }
    // The last settle is confirmed by the broker before the consumer counts it: wait for it.
    let s = await read();
    const msgs = (outcome: string) =>
      s.value('sluice_messages_total', { pool: 'documents', outcome }) ?? 0;
    while (msgs('acked') + msgs('dead_lettered') < messages) {
      await new Promise((r) => setTimeout(r, 50));
      s = await read();
    }

    for (const name of documented) expect(s.families.has(name), name).toBe(true);
    expect(s.families.get('sluice_jobs_total')?.type).toBe('COUNTER');
    expect(s.families.get('sluice_job_run_seconds')?.type).toBe('HISTOGRAM');
    expect(s.families.get('sluice_jobs_running')?.type).toBe('GAUGE');

    // Messages: the good documents acked; the broken PDF and the malformed message dead-lettered.
    expect(msgs('acked')).toBe(GOOD_COUNT);
    expect(msgs('dead_lettered')).toBe(2);
    for (const outcome of ['retried', 'released', 'canceled', 'lease_lost']) {
      expect(msgs(outcome), outcome).toBe(0);
    }
    // Handler calls: the malformed message never ran; the broken PDF's failed.
    const jobs = (pool: string, outcome: string) => s.value('sluice_jobs_total', { pool, outcome });
    expect(jobs('documents', 'succeeded')).toBe(GOOD_COUNT);
    expect(jobs('documents', 'failed')).toBe(1);
    expect(s.value('sluice_jobs_accepted_total', { pool: 'documents' })).toBe(GOOD_COUNT + 1);
    expect(s.histogram('sluice_job_run_seconds', 'documents')?.count).toBe(GOOD_COUNT + 1);
    expect(s.histogram('sluice_job_wait_seconds', 'documents')?.count).toBe(GOOD_COUNT + 1);
    // The extraction threads: one job per document that ran.
    expect(jobs('extract-threads', 'succeeded')).toBe(GOOD_COUNT);
    expect(jobs('extract-threads', 'failed')).toBe(1);
    // Gauges of the idle, still-open server.
    expect(s.value('sluice_messages_held', { pool: 'documents' })).toBe(0);
    expect(s.value('sluice_jobs_running', { pool: 'documents' })).toBe(0);
    expect(s.value('sluice_concurrency_limit', { pool: 'documents' })).toBe(2);
    expect(s.value('sluice_concurrency_limit', { pool: 'extract-threads' })).toBe(1);
    expect(s.value('sluice_utilization_ratio', { pool: 'documents' })).toBe(0);
    expect(s.value('sluice_jobs_waiting', { pool: 'documents', gate: 'rate' })).toBe(0);

    server.child.kill('SIGTERM');
    const run = await server.done;
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as ServeSummary;
    // The scrape agrees with the server's own summary.
    expect(msgs('acked')).toBe(summary.consumer.acked);
    expect(msgs('dead_lettered')).toBe(summary.consumer.deadLettered);
    expect(summary.indexed + summary.skipped).toBe(GOOD_COUNT);
    // Closed with the server: the port no longer answers.
    await expect(fetch(url as string)).rejects.toThrow();
  });

  it('refuses a port out of range as a usage error', async () => {
    const run = await cli([
      'serve',
      '--from',
      'redis://127.0.0.1:6379/x',
      '--db',
      join(tmp.dir, 'x.db'),
      '--metrics-port',
      '70000',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--metrics-port/);
  });
});
