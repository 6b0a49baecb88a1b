/**
 * The worker shared by the gate fuzz models (Pool and runPool): runs each attempt of a job as its
 * behaviour says, checks every start against the limits, the attempt count and the priority
 * order, and checks each result's attempts and errors against the runs it saw.
 */
import { type GateConfig, type JobBehaviour, type Key, StartLog } from './gate-model.js';
import { type Deferred, deferred, type Violations } from './harness.js';

/** One attempt of a job, as the model saw it start. */
export interface Attempt {
  signal: AbortSignal;
  live: boolean;
  control: Deferred<number> | undefined;
}

/** What the gate models know of one job (indexed by its id). */
export interface GateRec {
  id: number;
  key: Key;
  priority: number;
  behaviour: JobBehaviour;
  /** Acceptance order (from the accepted hook); -1 until accepted. */
  seq: number;
  attempts: Attempt[];
  /** The settled hook fired. */
  settled: boolean;
}

/**
 * The worker of the gate models: runs each attempt as its job's behaviour says and checks, at
 * every start, the attempt count, the pool and per-key limits and the priority order, and logs
 * the start time for the rate windows.
 */
export class GateWorker {
  readonly recs: GateRec[] = [];
  readonly starts = new StartLog();
  seq = 0;
  /** True when a queued job may have left the queue unseen by the model (canceled). */
  gone: (rec: GateRec) => boolean = () => false;

  constructor(
    readonly v: Violations,
    readonly log: string[],
    readonly config: GateConfig,
    public limit: number,
  ) {}

  add(id: number, key: Key, priority: number, behaviour: JobBehaviour): GateRec {
    const rec: GateRec = { id, key, priority, behaviour, seq: -1, attempts: [], settled: false };
    this.recs[id] = rec;
    return rec;
  }

  /** For the accepted hook. */
  accepted(id: number): void {
    const rec = this.recs[id];
    if (rec) rec.seq = this.seq++;
  }

  isLive(a: Attempt): boolean {
    return a.live && !a.signal.aborted;
  }

  run(id: number, signal: AbortSignal): number | Promise<number> {
    const rec = this.recs[id] as GateRec;
    const n = rec.attempts.length + 1;
    const now = performance.now();
    this.log.push(`  @${now.toFixed(3)} worker(${id}) attempt ${n}`);
    const v = this.v;
    const max = this.config.retry?.attempts ?? 1;
    v.check(n <= max, () => `job ${id}: attempt ${n} of at most ${max}`);
    v.check(!rec.settled, () => `job ${id}: started after it settled`);
    v.check(
      !rec.attempts.some((a) => this.isLive(a)),
      () => `job ${id}: attempt ${n} started while an earlier one runs`,
    );
    const live = this.recs.filter((r) => r?.attempts.some((a) => this.isLive(a))).length;
    v.check(live < this.limit, () => `job ${id} started with ${live} running, limit ${this.limit}`);
    const perKey = this.config.key?.concurrency;
    if (perKey !== undefined) {
      const same = this.recs.filter(
        (r) => r?.key === rec.key && r.attempts.some((a) => this.isLive(a)),
      ).length;
      v.check(same < perKey, () => `job ${id} (key ${rec.key}) started with ${same} of its key`);
    }
    this.checkPriority(rec, n);
    this.starts.record(now, this.config.key ? rec.key : undefined);
    const attempt: Attempt = { signal, live: false, control: undefined };
    rec.attempts.push(attempt);
    const b = rec.behaviour;
    if (n <= b.fails || b.last === 'sync-throw') {
      const error = new Error(`job ${id} attempt ${n} failed`);
      if (b.failHow === 'sync' || b.last === 'sync-throw') throw error;
      attempt.live = true;
      const p = Promise.reject(error);
      // Registered before the pool's handler: the slot counts as free when the pool sees it.
      p.catch(() => {
        attempt.live = false;
      });
      return p;
    }
    if (b.last === 'sync-ok') return id * 10;
    attempt.live = true;
    attempt.control = deferred<number>();
    if (b.last === 'until-signal') {
      const stop = () => {
        if (attempt.control?.settled) return;
        attempt.live = false;
        attempt.control?.reject(signal.reason);
      };
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
    }
    return attempt.control.promise;
  }

  /** No queued job of a higher priority (or of the same, accepted earlier) is passed over. */
  checkPriority(rec: GateRec, attempt: number): void {
    // Queued: accepted, not yet started, not settled. With key, priority orders within a key.
    const rivals = this.recs.filter(
      (r) =>
        r !== undefined &&
        r !== rec &&
        r.seq >= 0 &&
        r.attempts.length === 0 &&
        !r.settled &&
        !this.gone(r) &&
        (!this.config.key || r.key === rec.key),
    );
    for (const r of rivals) {
      const higher = r.priority > rec.priority;
      const earlier = r.priority === rec.priority && r.seq < rec.seq && attempt === 1;
      this.v.check(
        !higher && !earlier,
        () =>
          `job ${rec.id} (priority ${rec.priority}, seq ${rec.seq}) started before queued job ${r.id} (priority ${r.priority}, seq ${r.seq})`,
      );
    }
  }

  /** Attempts the model settles (deferred, or until-signal not yet ended). */
  open(): Attempt[] {
    return this.recs.flatMap(
      (r) => r?.attempts.filter((a) => a.control && !a.control.settled) ?? [],
    );
  }

  settle(pick: number, ok: boolean): void {
    const open = this.open();
    const a = open[pick % Math.max(1, open.length)];
    if (!a?.control) return;
    a.live = false;
    if (ok) a.control.resolve(1);
    else a.control.reject(new Error('settled as failed'));
  }

  releaseAll(): void {
    for (const a of this.open()) {
      a.live = false;
      a.control?.resolve(1);
    }
  }

  /** A result's attempts and errors agree with the runs the model saw. */
  checkResult(
    id: number,
    r: { ok: boolean; error?: Error; attempts?: number; errors?: Error[] },
  ): void {
    const v = this.v;
    const runs = this.recs[id]?.attempts.length ?? 0;
    if (this.config.retry === undefined) {
      v.check(r.attempts === undefined, () => `job ${id}: attempts without retry`);
      return;
    }
    v.check(r.attempts === runs, () => `job ${id}: result attempts ${r.attempts}, ran ${runs}`);
    const errors = r.errors ?? [];
    // Each failed run's error, then the cancel that ended a wait for a run that never came.
    const unrun = !r.ok && errors.length === runs + 1;
    const expected = r.ok ? runs - 1 : unrun ? runs + 1 : runs;
    v.check(
      errors.length === expected && (r.ok || errors.at(-1) === r.error),
      () => `job ${id}: ${errors.length} errors for ${runs} runs (${r.ok ? 'ok' : r.error?.name})`,
    );
    if (unrun)
      v.check(
        r.error?.name === 'AbortError',
        () => `job ${id}: an error without a run that is not a cancel: ${r.error?.name}`,
      );
  }
}
