import xterm from '@xterm/headless';
import { describe, expect, it } from 'vitest';
import { createProgress, failedWords, type ProgressSnapshot } from '../src/progress.js';

// The display is driven with a fake clock and written to a fake TTY; what a user would see is
// read back from a headless terminal emulator (xterm.js) fed the same bytes, so "no stale copy"
// is checked on the screen itself, not on escape sequences.

class FakeTty {
  readonly isTTY: boolean;
  readonly columns = 120;
  readonly rows = 24;
  out = '';
  constructor(isTTY = true) {
    this.isTTY = isTTY;
  }
  write(text: string): boolean {
    this.out += text;
    return true;
  }
}

function clock() {
  let t = 0;
  return {
    now: () => t,
    set: (ms: number) => {
      t = ms;
    },
  };
}

/** The lines a terminal shows after receiving `bytes` (trailing blank lines dropped). */
async function screen(bytes: string): Promise<string[]> {
  // A tty turns "\n" into "\r\n" (onlcr): convertEol does the same.
  const term = new xterm.Terminal({
    cols: 120,
    rows: 24,
    convertEol: true,
    allowProposedApi: true,
  });
  await new Promise<void>((resolve) => term.write(bytes, resolve));
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < buffer.length; i++)
    lines.push(buffer.getLine(i)?.translateToString(true) ?? '');
  while (lines.length && lines.at(-1) === '') lines.pop();
  term.dispose();
  return lines;
}

type Counts = [done: number, failed: number, running?: number, queued?: number];

function snap(total: number, counts: Counts[], extra: Partial<ProgressSnapshot> = {}) {
  const names = ['extract', 'embed', 'insert'];
  return {
    total,
    skipped: 0,
    failed: counts.reduce((n, [, failed]) => n + failed, 0),
    stages: counts.map(([done, failed, running = 0, queued = 0], i) => ({
      name: names[i] as string,
      done,
      failed,
      running,
      queued,
    })),
    ...extra,
  } satisfies ProgressSnapshot;
}

const stageLine = (lines: string[], name: string) => lines.filter((l) => l.startsWith(` ${name} `));

describe('progress on a terminal', () => {
  it('ends with every stage complete when documents failed in an earlier stage', async () => {
    const tty = new FakeTty();
    const c = clock();
    const progress = createProgress('auto', tty, { now: c.now });
    c.set(1000);
    progress.update(
      snap(17, [
        [6, 2, 2],
        [3, 0, 1, 1],
        [3, 0],
      ]),
    );
    c.set(4000);
    // 5 documents failed in 'extract': they never reach 'embed' or 'insert'.
    progress.update(
      snap(17, [
        [17, 5],
        [12, 0],
        [12, 0],
      ]),
    );
    progress.stop();
    const lines = await screen(tty.out);
    expect(lines[0]).toMatch(/^doc-index {2}done in 4\.0 s · 17 to index · 0 skipped · 5 failed$/);
    expect(stageLine(lines, 'extract')[0]).toMatch(/\] 17\/17 · 5 failed · 4\.3\/s$/);
    expect(stageLine(lines, 'embed')[0]).toMatch(/\] 17\/17 · 5 failed before · 3\.0\/s$/);
    expect(stageLine(lines, 'insert')[0]).toMatch(/\] 17\/17 · 5 failed before · 3\.0\/s$/);
    // Each bar full.
    for (const name of ['extract', 'embed', 'insert'])
      expect(stageLine(lines, name)[0]).toContain(`[${'█'.repeat(24)}]`);
    expect(lines).toHaveLength(4);
  });

  it('shows rate, elapsed and an ETA from the last stage’s pace while running', async () => {
    const tty = new FakeTty();
    const c = clock();
    const progress = createProgress('bars', tty, { now: c.now });
    c.set(2000);
    // 5 of 10 documents past 'insert' in 2 s: 5 more take 2 s at that pace.
    progress.update(
      snap(10, [
        [7, 1, 2],
        [5, 0, 1, 1],
        [4, 0, 0, 0],
      ]),
    );
    const lines = await screen(tty.out);
    expect(lines[0]).toBe(
      'doc-index  2.0 s elapsed · ETA 2.0 s · 10 to index · 0 skipped · 1 failed',
    );
    expect(stageLine(lines, 'extract')[0]).toMatch(/\] {2}7\/10 · 1 failed · 3\.5\/s · running 2$/);
    expect(stageLine(lines, 'embed')[0]).toMatch(
      /\] {2}6\/10 · 1 failed before · 2\.5\/s · running 1 · queued 1$/,
    );
    expect(stageLine(lines, 'insert')[0]).toMatch(/\] {2}5\/10 · 1 failed before · 2\.0\/s/);
    progress.stop();
  });

  it('leaves one copy of the display after Ctrl-C and its notice', async () => {
    const tty = new FakeTty();
    const c = clock();
    const progress = createProgress('bars', tty, { now: c.now });
    progress.update(
      snap(17, [
        [1, 0, 2],
        [0, 0, 0, 1],
        [0, 0],
      ]),
    );
    c.set(200);
    progress.update(
      snap(17, [
        [3, 1, 2],
        [1, 0, 1, 1],
        [1, 0],
      ]),
    );
    // The terminal echoes ^C where the cursor is, then the CLI's handler writes its notice.
    tty.write('^C');
    progress.log('SIGINT: not starting new documents; finishing the ones in flight');
    c.set(400);
    progress.update(
      snap(
        17,
        [
          [5, 1, 0],
          [4, 0, 0],
          [4, 0],
        ],
        { stopping: true },
      ),
    );
    progress.stop();
    const lines = await screen(tty.out);
    expect(lines).toEqual([
      'SIGINT: not starting new documents; finishing the ones in flight',
      expect.stringMatching(/^doc-index {2}stopped after 0\.4 s · 17 to index/),
      expect.stringMatching(/^ extract \[.*\] {2}5\/17 · 1 failed/),
      expect.stringMatching(/^ embed {3}\[.*\] {2}5\/17 · 1 failed before/),
      expect.stringMatching(/^ insert {2}\[.*\] {2}5\/17 · 1 failed before/),
    ]);
    expect(tty.out).not.toContain('\u001B[?25l'); // the cursor is never hidden
  });

  it('writing the notice around the display (as before) would leave a stale copy', async () => {
    // The contrast that shows the test above can fail: a plain write between two redraws.
    const tty = new FakeTty();
    const progress = createProgress('bars', tty, { now: () => 0 });
    progress.update(
      snap(17, [
        [1, 0, 2],
        [0, 0],
        [0, 0],
      ]),
    );
    tty.write('^C\nSIGINT: not starting new documents\n');
    progress.update(
      snap(17, [
        [2, 0, 2],
        [0, 0],
        [0, 0],
      ]),
    );
    progress.stop();
    const lines = await screen(tty.out);
    expect(lines.filter((l) => l.startsWith('doc-index')).length).toBe(2);
  });
});

describe('failedWords', () => {
  it("says canceled documents apart from failed ones (a stage's failed counts both)", () => {
    expect(failedWords({ failed: 0 })).toBe('');
    expect(failedWords({ failed: 2 })).toBe('2 failed');
    expect(failedWords({ failed: 2, canceled: 2 })).toBe('2 canceled');
    expect(failedWords({ failed: 3, canceled: 1 })).toBe('2 failed, 1 canceled');
  });
});

describe('progress as lines (not a terminal)', () => {
  it('prints the final line on stop, even inside the throttle interval', () => {
    const out = new FakeTty(false);
    const c = clock();
    const progress = createProgress('auto', out, { now: c.now, lineEvery: 2000 });
    c.set(100);
    progress.update(
      snap(17, [
        [2, 1, 2],
        [1, 0, 1],
        [1, 0],
      ]),
    );
    c.set(900); // within 2 s of the previous line: not printed
    progress.update(
      snap(17, [
        [17, 5],
        [12, 0],
        [12, 0],
      ]),
    );
    progress.stop();
    const lines = out.out.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe(
      '[doc-index done in 0.9 s] extract 17/17 (5 failed) 18.9/s · embed 17/17 13.3/s · insert 17/17 13.3/s · skipped 0 · failed 5',
    );
  });

  it('prints at most one line per interval while running', () => {
    const out = new FakeTty(false);
    const c = clock();
    const progress = createProgress('lines', out, { now: c.now, lineEvery: 2000 });
    for (let t = 0; t <= 5000; t += 200) {
      c.set(t);
      progress.update(
        snap(10, [
          [t / 1000, 0, 1],
          [0, 0],
          [0, 0],
        ]),
      );
    }
    expect(
      out.out
        .trimEnd()
        .split('\n')
        .map((l) => l.slice(0, 24)),
    ).toEqual(['[doc-index 0.0 s elapsed', '[doc-index 2.0 s elapsed', '[doc-index 4.0 s elapsed']);
  });

  it('writes notices on a line of their own; none mode writes only them', () => {
    const out = new FakeTty(false);
    const progress = createProgress('none', out);
    progress.update(
      snap(1, [
        [0, 0],
        [0, 0],
        [0, 0],
      ]),
    );
    progress.log('SIGTERM: stopping');
    progress.stop();
    expect(out.out).toBe('SIGTERM: stopping\n');
  });
});
