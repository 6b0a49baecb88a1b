/**
 * A hand-written source the model controls: each next() does what its script step says —
 * resolve, wait for the model (`feed`), return a plain `{ value, done }` object, throw
 * synchronously, reject, never settle, or end — and return() is absent, fine, throwing or
 * never settling. Sync sources (an Iterator) are scripted the same way.
 */
import fc from 'fast-check';
import { type Deferred, deferred } from './harness.js';
import { attack } from './known-open.js';

export type Step = 'value' | 'deferred' | 'plain' | 'sync-throw' | 'reject' | 'never' | 'done';
export type ReturnKind = 'absent' | 'ok' | 'throws' | 'never';

export interface SourceSpec {
  sync: boolean;
  steps: Step[];
  returnKind: ReturnKind;
  /** A `throw()` method too (engines must not need it). */
  withThrow: boolean;
}

export function stepArb(sync: boolean): fc.Arbitrary<Step> {
  const steps: Step[] = sync
    ? ['value', 'value', 'value', 'sync-throw']
    : ['value', 'value', 'deferred', 'deferred', 'reject', 'never'];
  if (!sync) steps.push('sync-throw', 'plain');
  return fc.constantFrom(...steps);
}

export const sourceSpec: fc.Arbitrary<SourceSpec> = fc.boolean().chain((sync) =>
  fc.record({
    sync: fc.constant(sync),
    steps: fc.array(stepArb(sync), { maxLength: 12 }),
    returnKind: fc.constantFrom<ReturnKind>('absent', 'ok', 'ok', 'throws', 'never'),
    withThrow: fc.boolean(),
  }),
);

export interface Job {
  id: number;
}

/** The scripted source and what it did. */
export class HostileSource {
  readonly spec: SourceSpec;
  /** Values handed out, by id (== index in source order). */
  readonly produced: Job[] = [];
  /** The first error it threw or rejected with, if any. */
  failure: { error: Error } | undefined;
  ended = false;
  nextCalls = 0;
  returnCalls = 0;
  /** Ids whose next() promise is resolved but not yet seen by the consumer's callbacks. */
  readonly outstanding = new Set<number>();
  /** Pulls waiting for the model. */
  readonly pending: Deferred<IteratorResult<Job>>[] = [];
  /**
   * Values a pending pull brought after the source's own return() had settled (or thrown): the
   * source said it was closed, so sluice may abandon that pull (README, "A pull pending at an
   * abort or a drain"). They may yield (exactly once) or not; nothing else may be lost.
   */
  readonly afterClose = new Set<number>();
  #closed = false;
  /** A next() that never settles was handed out. */
  neverPulled = false;
  #step = 0;
  /** Called on every value handed out (after it is recorded). */
  onValue: (job: Job) => void = () => undefined;
  /** Called at each next() before it does anything. */
  onNext: () => void = () => undefined;
  /** True once the consumer stopped (return/abort); values fed then must still yield. */
  stopped = () => false;

  constructor(spec: SourceSpec) {
    this.spec = spec;
  }

  #value(): IteratorResult<Job> {
    const job = { id: this.produced.length };
    this.produced.push(job);
    // Brought by a next() whose own return() settled first (called from inside it, by onNext):
    // a pull that outlived its return(), as a fed one after the close is.
    if (this.#closed) this.afterClose.add(job.id);
    this.onValue(job);
    return { value: job, done: false };
  }

  #fail(): Error {
    const error = new Error(`source failed at step ${this.#step}`);
    this.failure ??= { error };
    return error;
  }

  next(): IteratorResult<Job> | Promise<IteratorResult<Job>> {
    this.nextCalls++;
    this.onNext();
    const step = this.ended ? 'done' : (this.spec.steps[this.#step++] ?? 'done');
    if (this.spec.sync) {
      if (step === 'sync-throw') throw this.#fail();
      if (step === 'done') {
        this.ended = true;
        return { value: undefined, done: true };
      }
      return this.#value();
    }
    switch (step) {
      case 'value': {
        const step = this.#value();
        this.outstanding.add(step.value.id);
        // Registered before the consumer's own callback, so it runs just before it.
        const p = Promise.resolve(step);
        void p.then(() => this.outstanding.delete(step.value.id));
        return p;
      }
      case 'plain':
        return this.#value();
      case 'sync-throw':
        throw this.#fail();
      case 'reject':
        return Promise.reject(this.#fail());
      case 'never':
        this.neverPulled = true;
        return new Promise(() => undefined);
      case 'deferred': {
        const d = deferred<IteratorResult<Job>>();
        this.pending.push(d);
        d.promise.then(
          (r) => {
            if (!r.done) this.outstanding.delete(r.value.id);
          },
          () => undefined,
        );
        return d.promise;
      }
      case 'done':
        this.ended = true;
        return Promise.resolve({ value: undefined, done: true });
    }
  }

  /**
   * True when the consumer's end is held for ever by design: a pull that never settles, of a
   * source that cannot be told to stop (no return()) or whose return() never settles. sluice
   * waits for such a pull (what it brings must settle), as `for await` would (README, "A pull
   * pending at an abort or a drain"); see BY_DESIGN in known-open.ts.
   */
  endHeldByDesign(): boolean {
    if (attack('source-pull-that-cannot-be-stopped-never-settles')) return false;
    const kind = this.spec.returnKind;
    return !this.spec.sync && this.neverPulled && (kind === 'absent' || kind === 'never');
  }

  /** Settles the oldest waiting pull: a value (or `done` once stopped, if values then are known open), done, or an error. */
  feed(how: 'value' | 'done' | 'reject'): void {
    const d = this.pending.shift();
    if (!d) return;
    if (how === 'value') {
      const step = this.#value();
      if (this.#closed) this.afterClose.add(step.value.id);
      this.outstanding.add(step.value.id);
      d.resolve(step);
    } else if (how === 'done') {
      this.ended = true;
      d.resolve({ value: undefined, done: true });
    } else d.reject(this.#fail());
  }

  /** The iterable handed to runPool / pipeline. */
  iterable(): Iterable<Job> | AsyncIterable<Job> {
    const it: Record<string, unknown> = { next: () => this.next() };
    const kind = this.spec.returnKind;
    if (kind !== 'absent') {
      it.return = () => {
        this.returnCalls++;
        // A return() that answers (or throws) closes the source for its consumer; one that
        // never settles keeps its pending pull owed.
        if (kind !== 'never') this.#closed = true;
        if (kind === 'throws') throw new Error('return() throws');
        if (kind === 'never')
          return this.spec.sync ? { value: undefined, done: true } : new Promise(() => undefined);
        return this.spec.sync
          ? { value: undefined, done: true }
          : Promise.resolve({ value: undefined, done: true });
      };
    }
    if (this.spec.withThrow) {
      it.throw = (e: unknown) => {
        throw e;
      };
    }
    return this.spec.sync
      ? { [Symbol.iterator]: () => it as unknown as Iterator<Job> }
      : { [Symbol.asyncIterator]: () => it as unknown as AsyncIterator<Job> };
  }
}
