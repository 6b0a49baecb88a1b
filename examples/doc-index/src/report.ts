/**
 * The run's summary: what was indexed, skipped and failed (with reasons), throughput, and each
 * stage's utilization with the bottleneck named.
 *
 * How the bottleneck is read: a stage's utilization is its busy slot-time over its available
 * slot-time. The stage closest to 1 had work waiting for it all the time — it set the pace, and
 * the stages before it were blocked on their full output buffers (backpressure). Giving that
 * stage more workers (threads, concurrency) is what speeds the run up.
 *
 * @module
 */
import { describeIdentity, type EmbedderIdentity } from './embedder.js';
import { failedWords } from './progress.js';

/** One stage's figures at the end of the run. */
export interface StageSummary {
  name: string;
  concurrency: number;
  /** Jobs that left the stage, whatever the outcome. */
  done: number;
  /** Of `done`, those that failed (canceled ones included). */
  failed: number;
  /** Of `failed`, those canceled. */
  canceled?: number;
  /** 0..1, busy slot-time over available slot-time. */
  utilization: number;
  /** Run time per job, ms. */
  p50: number;
  p99: number;
}

/** One document that could not be indexed. */
export interface Failure {
  path: string;
  /** The stage it failed in ('extract', 'embed', 'insert'). */
  stage: string;
  /** The error's stable code, when it has one (e.g. ERR_EXTRACT, ERR_EMBED_TIMEOUT). */
  code?: string;
  message: string;
}

/** Everything a run reports. Also printed as JSON by `index --json`. */
export interface Summary {
  /** Documents found under the inputs. */
  total: number;
  indexed: number;
  /** Already indexed with the same content hash. */
  skipped: number;
  failed: Failure[];
  /** Documents canceled by a second signal or the drain deadline (not committed; a re-run
   * indexes them). */
  canceled: number;
  /** Set when the drain after the first signal ran past its deadline: that deadline, ms. */
  drainTimedOut?: number;
  /** Documents never started because the run was stopped (a re-run indexes them). */
  notStarted: number;
  /** Why the run stopped early: the `stop` signal's reason (the CLI uses the signal's name). */
  interruptedBy?: string;
  elapsedMs: number;
  /** (indexed + failed) per second of wall time. */
  docsPerSecond: number;
  stages: StageSummary[];
  /** Name of the stage with the highest utilization. */
  bottleneck: string | undefined;
  embedder: EmbedderIdentity;
  db: string;
}

/**
 * The stage with the highest utilization (the first on ties); none when no stage did any work
 * (every document skipped), since an idle stage set no pace.
 */
export function bottleneckOf(stages: readonly StageSummary[]): string | undefined {
  let best: StageSummary | undefined;
  for (const s of stages) {
    if (s.utilization > 0 && (!best || s.utilization > best.utilization)) best = s;
  }
  return best?.name;
}

/**
 * `message` with `path` in front, unless it names the document already. Errors raised by sluice
 * itself (a ThreadPool timeout, a worker crash) do not know which document they were running;
 * the Result's job does, so the summary adds it whatever the error class.
 */
export function namingDocument(path: string, message: string): string {
  return message.includes(path) ? message : `${path}: ${message}`;
}

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
const ms = (x: number) => (x >= 100 ? `${x.toFixed(0)} ms` : `${x.toFixed(1)} ms`);

/** The human-readable summary printed at the end of `index`. */
export function formatSummary(s: Summary): string {
  const lines = [
    s.interruptedBy ? `Interrupted by ${s.interruptedBy}.` : 'Done.',
    `  indexed ${s.indexed} · skipped ${s.skipped} (unchanged) · failed ${s.failed.length}` +
      (s.canceled ? ` · canceled ${s.canceled}` : '') +
      (s.canceled && s.drainTimedOut !== undefined
        ? ` (at the ${s.drainTimedOut} ms drain timeout)`
        : '') +
      (s.notStarted ? ` · not started ${s.notStarted}` : '') +
      ` · of ${plural(s.total, 'document')}`,
    `  ${(s.elapsedMs / 1000).toFixed(1)} s, ${s.docsPerSecond.toFixed(1)} docs/s` +
      ` · embedder ${describeIdentity(s.embedder)} · db ${s.db}`,
  ];
  if (s.stages.length) {
    lines.push('  stages (utilization = busy / available worker time; highest = bottleneck):');
    for (const st of s.stages) {
      const mark = st.name === s.bottleneck ? '  <- bottleneck' : '';
      lines.push(
        `    ${st.name.padEnd(8)} ${String(st.concurrency).padStart(2)} ${st.concurrency === 1 ? 'worker ' : 'workers'}  ` +
          `util ${pct(st.utilization).padStart(4)}  p50 ${ms(st.p50)}  p99 ${ms(st.p99)}` +
          `  done ${st.done}${st.failed ? ` (${failedWords(st)})` : ''}${mark}`,
      );
    }
  }
  if (s.failed.length) {
    lines.push('  failures:');
    for (const f of s.failed)
      lines.push(`    [${f.stage}${f.code ? ` ${f.code}` : ''}] ${f.message}`);
  }
  if (s.interruptedBy && s.canceled + s.notStarted > 0) {
    lines.push('  Run the same command again to index the rest.');
  }
  return lines.join('\n');
}
