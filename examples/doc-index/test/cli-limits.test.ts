/**
 * Numbers a flag takes, checked against what sluice and Node accept, and the first signal's
 * deadline. A duration over 2147483647 ms once reached `new ThreadPool` (or a consumer's backoff)
 * and crashed with a RangeError after the index file was created; a retry count with no bound
 * kept a run busy for hours; the first SIGTERM waited for retries with no end.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Summary } from '../src/report.js';
import { cli, start, until } from './cli-harness.js';
import { BUNDLED_PDFS, tempDir } from './helpers.js';
import { startOpenAiServer } from './openai-server.js';

const tmp = tempDir('doc-index-limits-');
afterAll(() => tmp.cleanup());
const AMSMIDX = join(BUNDLED_PDFS, 'amsmidx.pdf');
/** One past the longest timer Node keeps. */
const OVER_TIMER = '2147483648';
const EMBED = ['--embed-url', 'http://127.0.0.1:9', '--embed-model', 'm'];
// Never contacted: every run below is refused while its flags are parsed.
const QUEUE = 'redis://127.0.0.1:1/doc-index-limits';

describe('every duration and retry-count flag is bounded: usage error (exit 2) naming flag and value, nothing created', () => {
  const db = join(tmp.dir, 'never.db');
  it.each([
    ['index', ['--extract-timeout', OVER_TIMER], 'from 1 to 2147483647'],
    ['index', ['--extract-timeout', '99999999999'], 'from 1 to 2147483647'],
    ['index', ['--drain-timeout', OVER_TIMER], 'from 0 to 2147483647'],
    ['index', [...EMBED, '--embed-timeout', OVER_TIMER], 'from 1 to 2147483647'],
    ['index', [...EMBED, '--embed-retries', '101'], 'from 0 to 100'],
    ['index', [...EMBED, '--embed-retries', '99999999999'], 'from 0 to 100'],
    ['serve', ['--extract-timeout', OVER_TIMER], 'from 1 to 2147483647'],
    ['serve', ['--drain-timeout', OVER_TIMER], 'from 0 to 2147483647'],
    ['serve', ['--retry-delay', '99999999999'], 'from 0 to 2147483647'],
    ['serve', ['--max-deliveries', '101'], 'from 1 to 100'],
    ['serve', [...EMBED, '--embed-timeout', OVER_TIMER], 'from 1 to 2147483647'],
    ['serve', [...EMBED, '--embed-retries', '101'], 'from 0 to 100'],
  ])('%s %j', async (command, flags, range) => {
    const target = command === 'index' ? [AMSMIDX] : ['--from', QUEUE];
    const run = await cli([command, ...target, '--db', db, ...flags]);
    const [flag, value] = flags.slice(-2) as [string, string];
    expect(run.stderr).toContain(`option '${flag} <`);
    expect(run.stderr).toContain(`argument '${value}' is invalid. expected an integer ${range}`);
    expect(run.stderr).not.toMatch(/RangeError|\n\s+at /);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(existsSync(db)).toBe(false);
  });

  it('the bounds themselves are accepted (the longest timer)', async () => {
    const ok = join(tmp.dir, 'bounds.db');
    const run = await cli([
      'index',
      AMSMIDX,
      '--db',
      ok,
      '--threads',
      '1',
      '--progress',
      'none',
      '--extract-timeout',
      '2147483647',
      '--drain-timeout',
      '2147483647',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('indexed 1 ');
  });
});

describe('index: the first signal drains until --drain-timeout, then cancels what is left', () => {
  it('an embeddings server that keeps failing: the retries stop at the deadline, the document is canceled (exit 143)', async () => {
    // 503 on every request: the embedder retries (backoff up to 30 s) for as long as it may.
    const embeddings = await startOpenAiServer((_req, _n, res) => {
      res.writeHead(503).end('busy');
    });
    const db = join(tmp.dir, 'drain.db');
    try {
      const run = start([
        'index',
        AMSMIDX,
        '--db',
        db,
        '--threads',
        '1',
        '--progress',
        'lines',
        '--json',
        '--embed-url',
        embeddings.url,
        '--embed-model',
        'm',
        '--embed-retries',
        '100',
        '--drain-timeout',
        '300',
      ]);
      await until(() => embeddings.seen.length >= 2, 'a retried embeddings request', 30_000);
      const signalled = performance.now();
      run.child.kill('SIGTERM');
      const done = await run.done;
      const afterSignal = performance.now() - signalled;
      expect(done.code, done.stderr).toBe(143);
      expect(done.stderr).toContain('finishing the ones in flight for up to 300 ms');
      expect(done.stderr).toContain('drain timeout (300 ms) passed');
      const summary = JSON.parse(done.stdout) as Summary;
      expect(summary).toMatchObject({
        indexed: 0,
        failed: [],
        canceled: 1,
        drainTimedOut: 300,
        interruptedBy: 'SIGTERM',
      });
      // A retry's backoff (up to 30 s each, 100 of them) did not hold the drain past its deadline.
      expect(afterSignal).toBeLessThan(15_000);
    } finally {
      await embeddings.close();
    }
  }, 60_000);
});
