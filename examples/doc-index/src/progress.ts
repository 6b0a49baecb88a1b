/**
 * Per-stage progress on stderr: bars (cli-progress) on a TTY, a plain line every few seconds
 * otherwise (CI logs, pipes), nothing when disabled.
 *
 * @module
 */
import cliProgress from 'cli-progress';

/** A snapshot of the run, taken on each tick. */
export interface ProgressSnapshot {
  /** Documents to process (found minus skipped so far). */
  total: number;
  skipped: number;
  failed: number;
  stages: Array<{ name: string; done: number; running: number; utilization: number }>;
}

/** Receives snapshots while the run goes on. */
export interface ProgressReporter {
  update(snapshot: ProgressSnapshot): void;
  stop(): void;
}

/** 'auto' picks 'bars' on a TTY and 'lines' otherwise. */
export type ProgressMode = 'auto' | 'bars' | 'lines' | 'none';

/**
 * @example
 * ```ts
 * const progress = createProgress('auto');
 * progress.update(snapshot); // on a timer
 * progress.stop();
 * ```
 */
export function createProgress(
  mode: ProgressMode,
  stream: NodeJS.WriteStream = process.stderr,
): ProgressReporter {
  const resolved = mode === 'auto' ? (stream.isTTY ? 'bars' : 'lines') : mode;
  if (resolved === 'bars') return new Bars(stream);
  if (resolved === 'lines') return new Lines(stream);
  return { update() {}, stop() {} };
}

class Bars implements ProgressReporter {
  readonly #multi: cliProgress.MultiBar;
  readonly #bars = new Map<string, cliProgress.SingleBar>();

  constructor(stream: NodeJS.WriteStream) {
    this.#multi = new cliProgress.MultiBar(
      {
        stream,
        format: ' {stage} [{bar}] {value}/{total}  running {running}  util {util}',
        hideCursor: true,
        clearOnComplete: false,
        autopadding: true,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  update(s: ProgressSnapshot): void {
    for (const st of s.stages) {
      let bar = this.#bars.get(st.name);
      const payload = {
        stage: st.name.padEnd(7),
        running: st.running,
        util: `${(st.utilization * 100).toFixed(0)}%`,
      };
      if (!bar) {
        bar = this.#multi.create(s.total, st.done, payload);
        this.#bars.set(st.name, bar);
      }
      bar.setTotal(Math.max(1, s.total));
      bar.update(st.done, payload);
    }
  }

  stop(): void {
    this.#multi.stop();
  }
}

class Lines implements ProgressReporter {
  readonly #stream: NodeJS.WriteStream;
  readonly #started = performance.now();
  // Ticks come faster than a log wants lines: print at most one every few seconds.
  readonly #every = 2000;
  #last = 0;

  constructor(stream: NodeJS.WriteStream) {
    this.#stream = stream;
  }

  update(s: ProgressSnapshot): void {
    const now = performance.now();
    if (now - this.#last < this.#every) return;
    this.#last = now;
    const stages = s.stages
      .map((st) => `${st.name} ${st.done}/${s.total} (${st.running} running)`)
      .join(' · ');
    const secs = ((now - this.#started) / 1000).toFixed(0);
    this.#stream.write(
      `[doc-index ${secs}s] ${stages} · skipped ${s.skipped} · failed ${s.failed}\n`,
    );
  }

  stop(): void {}
}
