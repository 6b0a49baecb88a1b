/**
 * Per-stage progress on stderr: a live block on a TTY (redrawn in place by log-update), a plain
 * line every few seconds otherwise (CI logs, pipes), nothing when disabled.
 *
 * What it shows per stage: documents that got past it (done here, or failed in an earlier stage
 * and so passed over) out of the total, failures, its rate, what runs and waits; and for the run,
 * elapsed time and an ETA from the last stage's pace. A document that fails in 'extract' skips
 * 'embed' and 'insert', so counting only each stage's own `done` would leave the later bars short
 * of the total at the end of a run with failures: they count passed-over documents too.
 *
 * Why log-update rather than cli-progress (used before): log-update erases exactly the lines it
 * drew last (wrapped to the terminal's width) and lets us clear the block, write a line of our own
 * (the signal notice) and redraw below it — cli-progress's multibar redraws from a cursor position
 * that any other write to the terminal shifts, which left a stale copy of the bars after Ctrl-C.
 * The cursor is never hidden, so an exit that skips `stop()` cannot leave it hidden either.
 *
 * @module
 */
import { createLogUpdate } from 'log-update';

/** One stage in a {@link ProgressSnapshot} (a `StageStats` fits). */
export interface StageProgress {
  name: string;
  /** Documents this stage settled, any outcome. */
  done: number;
  /** Of `done`, those that failed here (canceled ones included). */
  failed: number;
  /** Of `failed`, those canceled (a second Ctrl-C). */
  canceled?: number;
  running: number;
  /** Documents waiting for this stage (the previous stage's output buffer). */
  queued: number;
}

/**
 * "2 failed", "1 failed, 1 canceled", "2 canceled" or '' — a stage's `failed` counts canceled
 * documents too, which the run's summary reports apart.
 */
export function failedWords(st: { failed: number; canceled?: number }): string {
  const canceled = st.canceled ?? 0;
  const failed = st.failed - canceled;
  return [failed ? `${failed} failed` : '', canceled ? `${canceled} canceled` : '']
    .filter(Boolean)
    .join(', ');
}

/** A snapshot of the run, taken on each tick. */
export interface ProgressSnapshot {
  /** Documents to process (found minus skipped so far). */
  total: number;
  skipped: number;
  failed: number;
  stages: StageProgress[];
  /** True once the run was told to stop taking documents (the first Ctrl-C). */
  stopping?: boolean;
}

/** Receives snapshots while the run goes on. */
export interface ProgressReporter {
  update(snapshot: ProgressSnapshot): void;
  /** Writes `line` (a notice) above the display without leaving a stale copy of it. */
  log(line: string): void;
  /** Shows the last snapshot as final and leaves it on screen. */
  stop(): void;
}

/** 'auto' picks 'bars' on a TTY and 'lines' otherwise. */
export type ProgressMode = 'auto' | 'bars' | 'lines' | 'none';

/** Where the display writes: a TTY on stderr normally, a fake one in tests. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
  rows?: number;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Clock in ms (monotonic). Default `performance.now`. */
  now?: () => number;
  /** 'lines' mode: least ms between two lines. Default 2000. */
  lineEvery?: number;
}

/**
 * @example
 * ```ts
 * const progress = createProgress('auto');
 * progress.update(snapshot); // on a timer
 * progress.log('SIGINT: finishing the documents in flight');
 * progress.stop();
 * ```
 */
export function createProgress(
  mode: ProgressMode,
  stream: ProgressStream = process.stderr,
  opts: ProgressOptions = {},
): ProgressReporter {
  const resolved = mode === 'auto' ? (stream.isTTY ? 'bars' : 'lines') : mode;
  const now = opts.now ?? (() => performance.now());
  if (resolved === 'bars') return new Block(stream, now);
  if (resolved === 'lines') return new Lines(stream, now, opts.lineEvery ?? 2000);
  return { update() {}, log: (line) => plainLog(stream, line), stop() {} };
}

// On a terminal, Ctrl-C echoes "^C" where the cursor is: start the notice on a line of its own.
function plainLog(stream: ProgressStream, line: string): void {
  stream.write(`${stream.isTTY ? '\n' : ''}${line}\n`);
}

const BAR_WIDTH = 24;

/** Documents that got past stage `i`: settled there, or failed before it and passed over. */
function reached(stages: readonly StageProgress[], i: number): number {
  let failedBefore = 0;
  for (let k = 0; k < i; k++) failedBefore += stages[k]?.failed ?? 0;
  return (stages[i]?.done ?? 0) + failedBefore;
}

function seconds(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.round(s - m * 60)).padStart(2, '0')} s`;
}

const rate = (n: number, ms: number) => (ms > 0 ? `${((n * 1000) / ms).toFixed(1)}/s` : '-/s');

/** Time left at the pace the last stage has kept so far; undefined until it finished one. */
function eta(s: ProgressSnapshot, elapsedMs: number): number | undefined {
  const last = reached(s.stages, s.stages.length - 1);
  if (last <= 0 || elapsedMs <= 0) return undefined;
  return ((s.total - last) * elapsedMs) / last;
}

/** The run's state in a few words: ETA while running, how it ended once final. */
function runState(s: ProgressSnapshot, elapsedMs: number, final: boolean): string {
  const left = eta(s, elapsedMs);
  if (final)
    return s.stopping ? `stopped after ${seconds(elapsedMs)}` : `done in ${seconds(elapsedMs)}`;
  if (s.stopping) return `${seconds(elapsedMs)} · stopping: finishing the documents in flight`;
  return `${seconds(elapsedMs)} elapsed · ETA ${left === undefined ? '-' : seconds(left)}`;
}

function bar(value: number, total: number): string {
  const filled =
    total > 0 ? Math.min(BAR_WIDTH, Math.round((value / total) * BAR_WIDTH)) : BAR_WIDTH;
  return `${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}`;
}

/** The TTY block: a header line, then one line per stage. */
function frame(s: ProgressSnapshot, elapsedMs: number, final: boolean): string {
  const width = String(s.total).length;
  const nameWidth = Math.max(...s.stages.map((st) => st.name.length), 5);
  const lines = [
    `doc-index  ${runState(s, elapsedMs, final)} · ${s.total} to index · ${s.skipped} skipped · ${s.failed} failed`,
  ];
  s.stages.forEach((st, i) => {
    const past = reached(s.stages, i);
    const passedOver = past - st.done;
    const parts = [
      `${String(past).padStart(width)}/${s.total}`,
      failedWords(st),
      passedOver ? `${passedOver} failed before` : '',
      rate(st.done, elapsedMs),
      final ? '' : `running ${st.running}`,
      !final && i > 0 ? `queued ${st.queued}` : '',
    ].filter(Boolean);
    lines.push(` ${st.name.padEnd(nameWidth)} [${bar(past, s.total)}] ${parts.join(' · ')}`);
  });
  return lines.join('\n');
}

class Block implements ProgressReporter {
  readonly #render: ReturnType<typeof createLogUpdate>;
  readonly #now: () => number;
  readonly #started: number;
  #last: ProgressSnapshot | undefined;
  #stopped = false;
  readonly #stream: ProgressStream;

  constructor(stream: ProgressStream, now: () => number) {
    this.#stream = stream;
    // log-update reads columns/rows and writes: any object with write() serves. A pty whose size
    // was never set reports 0 × 0, which would make it drop every line: read that as 80 × 24.
    const sized = {
      // On a TTY log-update wraps each redraw in synchronized-output marks: no flicker.
      isTTY: stream.isTTY,
      write: (text: string) => stream.write(text),
      get columns() {
        return stream.columns || 80;
      },
      get rows() {
        return stream.rows || 24;
      },
    };
    this.#render = createLogUpdate(sized as unknown as NodeJS.WriteStream, { showCursor: true });
    this.#now = now;
    this.#started = now();
  }

  update(s: ProgressSnapshot): void {
    if (this.#stopped) return;
    this.#last = s;
    this.#render(frame(s, this.#now() - this.#started, false));
  }

  log(line: string): void {
    // Erase the block (and whatever the terminal echoed under it, such as ^C), write the line
    // where the block was, and draw the block again below it.
    this.#render.clear();
    this.#stream.write(`${line}\n`);
    if (this.#last && !this.#stopped) this.update(this.#last);
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#last) this.#render(frame(this.#last, this.#now() - this.#started, true));
    this.#render.done();
  }
}

class Lines implements ProgressReporter {
  readonly #stream: ProgressStream;
  readonly #now: () => number;
  readonly #started: number;
  // Ticks come faster than a log wants lines: print at most one every `#every` ms.
  readonly #every: number;
  #lastAt = Number.NEGATIVE_INFINITY;
  #last: ProgressSnapshot | undefined;
  #stopped = false;

  constructor(stream: ProgressStream, now: () => number, every: number) {
    this.#stream = stream;
    this.#now = now;
    this.#started = now();
    this.#every = every;
  }

  update(s: ProgressSnapshot): void {
    if (this.#stopped) return;
    this.#last = s;
    const now = this.#now();
    if (now - this.#lastAt < this.#every) return;
    this.#lastAt = now;
    this.#print(s, now - this.#started, false);
  }

  log(line: string): void {
    plainLog(this.#stream, line);
  }

  // The final line is printed whatever the throttle says: it is the one that must be right.
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#last) this.#print(this.#last, this.#now() - this.#started, true);
  }

  #print(s: ProgressSnapshot, elapsedMs: number, final: boolean): void {
    const stages = s.stages
      .map((st, i) => {
        const failed = st.failed ? ` (${failedWords(st)})` : '';
        const busy = final ? '' : `, ${st.running} running`;
        return `${st.name} ${reached(s.stages, i)}/${s.total}${failed} ${rate(st.done, elapsedMs)}${busy}`;
      })
      .join(' · ');
    this.#stream.write(
      `[doc-index ${runState(s, elapsedMs, final)}] ${stages} · skipped ${s.skipped} · failed ${s.failed}\n`,
    );
  }
}
