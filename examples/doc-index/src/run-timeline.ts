/**
 * The run's timeline for `index --report`: each stage's running, queued and utilization, and the
 * source's pulls, sampled on a timer — the data behind the HTML report's plots.
 *
 * Memory is bounded whatever the run's length: once `maxSamples` are held, neighbouring samples
 * are merged in pairs (means of times and levels; the later cumulative count) and the sampling interval doubles, so a
 * long run keeps an even resolution over its whole span in at most `maxSamples` points.
 *
 * @module
 */

/** What the timeline reads off each stage at each tick (a `StageStats` fits). */
export interface StageSample {
  name: string;
  concurrency: number;
  running: number;
  queued: number;
  done: number;
}

/** The recorded series: column-major, one value per sample in each array. */
export interface TimelineData {
  /** ms between samples at the end of the run (doubles each time the series are halved). */
  intervalMs: number;
  /** ms since the run started, per sample. */
  t: number[];
  /** Cumulative documents pulled from the source. */
  pulls: number[];
  stages: Array<{
    name: string;
    concurrency: number[];
    /** Jobs running in the stage (the mean over merged samples). */
    running: number[];
    /** Jobs waiting for the stage: the previous stage's output buffer. */
    queued: number[];
    /** running ÷ concurrency at the sample (0..1): how busy the stage's slots were. */
    utilization: number[];
    /** Cumulative documents the stage settled. */
    done: number[];
  }>;
}

/** Options of {@link RunTimeline}. */
export interface RunTimelineOptions {
  /** ms between samples at the start. Default 100. */
  intervalMs?: number;
  /** Most samples held; an even number >= 4. Default 2000. */
  maxSamples?: number;
  /** Clock in ms (monotonic). Default `performance.now`. */
  now?: () => number;
}

/**
 * @example
 * ```ts
 * const timeline = new RunTimeline();
 * const run = pipeline(timeline.countPulls(source)).stage(...);
 * timeline.start(() => run.stats());
 * for await (const r of run) {}
 * timeline.stop();
 * writeHtmlReport('run.html', { timeline: timeline.data(), summary });
 * ```
 */
export class RunTimeline {
  readonly #now: () => number;
  readonly #max: number;
  #interval: number;
  #started = 0;
  #pulls = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #read: (() => readonly StageSample[]) | undefined;
  // Ticks since the last kept sample: after a halving, one sample is kept every `#stride` ticks.
  #stride = 1;
  #skipped = 0;
  readonly #data: TimelineData;

  /** @throws RangeError naming the option when `intervalMs` or `maxSamples` is out of range. */
  constructor(opts: RunTimelineOptions = {}) {
    const interval = opts.intervalMs ?? 100;
    const max = opts.maxSamples ?? 2000;
    if (!(Number.isFinite(interval) && interval > 0))
      throw new RangeError(`intervalMs: expected a positive number of ms, got ${interval}`);
    if (!(Number.isInteger(max) && max >= 4 && max % 2 === 0))
      throw new RangeError(`maxSamples: expected an even integer >= 4, got ${max}`);
    this.#interval = interval;
    this.#max = max;
    this.#now = opts.now ?? (() => performance.now());
    this.#data = { intervalMs: interval, t: [], pulls: [], stages: [] };
  }

  /**
   * Wraps the pipeline's source to count its pulls. `next` and `return` go straight to the
   * source's own (no generator in between), so a drain's `return()` still reaches it at once.
   */
  countPulls<T>(source: AsyncIterable<T>): AsyncIterable<T> {
    const counted = (step: IteratorResult<T>) => {
      if (!step.done) this.#pulls++;
      return step;
    };
    return {
      [Symbol.asyncIterator]: () => {
        const it = source[Symbol.asyncIterator]();
        const wrapped: AsyncIterator<T> = { next: () => Promise.resolve(it.next()).then(counted) };
        if (typeof it.return === 'function') wrapped.return = (value) => it.return!(value);
        return wrapped;
      },
    };
  }

  /** Starts sampling `read()` (the pipeline's `stats()`) every `intervalMs`. */
  start(read: () => readonly StageSample[]): void {
    this.#read = read;
    this.#started = this.#now();
    this.#timer = setInterval(() => this.tick(), this.#interval);
    // A report is no reason to keep the process alive.
    this.#timer.unref?.();
  }

  /** One timer tick: takes a sample unless a halving made the stride longer. Public for tests. */
  tick(): void {
    if (++this.#skipped < this.#stride) return;
    this.#skipped = 0;
    this.#sample();
  }

  /** Takes a last sample (the run's end state) and stops the timer. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#sample();
    this.#read = undefined;
  }

  /** The series recorded so far (the live arrays: copy before changing them). */
  data(): TimelineData {
    return this.#data;
  }

  #sample(): void {
    const stats = this.#read?.() ?? [];
    // Before the pipeline is iterated it has no live stages: nothing to plot yet.
    if (!stats.length) return;
    const d = this.#data;
    if (!d.stages.length) {
      for (const s of stats)
        d.stages.push({
          name: s.name,
          concurrency: [],
          running: [],
          queued: [],
          utilization: [],
          done: [],
        });
    }
    // Rounded (0.1 ms, 0.001 of a level): the report carries every number as text.
    d.t.push(round(this.#now() - this.#started, 10));
    d.pulls.push(this.#pulls);
    stats.forEach((s, i) => {
      const series = d.stages[i];
      if (!series) return;
      series.concurrency.push(s.concurrency);
      series.running.push(s.running);
      series.queued.push(s.queued);
      series.utilization.push(
        s.concurrency > 0 ? round(Math.min(1, s.running / s.concurrency), 1000) : 0,
      );
      series.done.push(s.done);
    });
    if (d.t.length >= this.#max) this.#halve();
  }

  /** Merges samples in pairs: half the points, twice the interval. */
  #halve(): void {
    const d = this.#data;
    const mean = (a: number[]) => pairs(a, (x, y) => round((x + y) / 2, 1000));
    const later = (a: number[]) => pairs(a, (_x, y) => y);
    d.t = mean(d.t);
    d.pulls = later(d.pulls);
    for (const s of d.stages) {
      s.concurrency = later(s.concurrency);
      s.running = mean(s.running);
      s.queued = mean(s.queued);
      s.utilization = mean(s.utilization);
      s.done = later(s.done);
    }
    this.#stride *= 2;
    this.#interval *= 2;
    d.intervalMs = this.#interval;
  }
}

const round = (x: number, per: number) => Math.round(x * per) / per;

/** `[f(a0, a1), f(a2, a3), …]`; an odd last element is kept as is. */
function pairs(a: readonly number[], f: (x: number, y: number) => number): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < a.length; i += 2) out.push(f(a[i] as number, a[i + 1] as number));
  if (a.length % 2) out.push(a.at(-1) as number);
  return out;
}
