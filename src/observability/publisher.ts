/**
 * Turns the core's lifecycle hooks into `diagnostics_channel` messages (see channels.ts), so the
 * scheduling core stays the single emitter of every job's events. Internal.
 *
 * With no subscriber, a job costs one call (`accepted` reads `hasSubscribers` and returns false,
 * so the pool skips the job's later hooks): no message built, no time read, nothing stored. So
 * events cover the jobs accepted while someone listens.
 */
import { AsyncResource } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import type { AroundWorker, CoreHooks } from '../scheduler/hooks.js';
import { outcomeOf } from '../stats.js';
import {
  acceptedChannel,
  type JobAcceptedMessage,
  type JobRetriedMessage,
  type JobSettledMessage,
  type JobTraceContext,
  jobTrace,
  type PoolKind,
  retriedChannel,
  settledChannel,
} from './channels.js';

/** What the publisher keeps about a job while someone listens: times and its open attempt. */
interface Tracked {
  acceptedAt: number;
  attempts: number;
  startedAt: number;
  trace: JobTraceContext | undefined;
  /**
   * The async context the job was accepted in (taken while `sluice:job` has subscribers): its
   * attempts run in it, so a store bound to the channel sees the submitter's context as the
   * parent — not that of whichever job's settlement happened to start this one.
   */
  scope: AsyncResource | undefined;
}

/** The option key under which internal callers give a pool its kind (default `'pool'`). */
export const KIND: unique symbol = Symbol('sluice.kind');

/**
 * The worker call of one traced attempt: `start` through `runStores` (so stores bound to it, e.g.
 * an OpenTelemetry context, are active while the worker runs and in everything it awaits), in
 * the job's acceptance context when one was taken, then `end` once the synchronous part returned
 * or threw.
 */
function tracedCall(ctx: JobTraceContext, scope: AsyncResource | undefined): AroundWorker {
  return (fn, ...args) => {
    try {
      return scope === undefined
        ? jobTrace.start.runStores(ctx, fn, undefined, ...args)
        : scope.runInAsyncScope(() => jobTrace.start.runStores(ctx, fn, undefined, ...args));
    } finally {
      jobTrace.end.publish(ctx);
    }
  };
}

/** True when any sluice job channel has a subscriber. */
function listening(): boolean {
  return (
    acceptedChannel.hasSubscribers ||
    retriedChannel.hasSubscribers ||
    settledChannel.hasSubscribers ||
    jobTrace.hasSubscribers
  );
}

/**
 * Hooks that publish a pool's job lifecycle, then call `inner` (the pool's own hooks, already
 * guarded); `jobOf` maps the core's job to the one messages carry (a stage's value). Subscriber errors never reach here: diagnostics_channel reports them on
 * `process.nextTick` (an uncaught exception), after the publishing call has returned.
 */
export function publishingHooks<J>(
  name: string,
  kind: PoolKind,
  inner: CoreHooks<J> | undefined,
  jobOf?: (job: J) => unknown,
): CoreHooks<J> {
  const tracked = new Map<number, Tracked>();
  const view = jobOf ?? ((job: J): unknown => job);
  const closeAttempt = (t: Tracked, error: Error | undefined, now: number): void => {
    const ctx = t.trace;
    if (ctx === undefined) return;
    t.trace = undefined;
    ctx.durationMs = now - t.startedAt;
    if (error !== undefined) {
      ctx.error = error;
      jobTrace.error.publish(ctx);
    }
    jobTrace.asyncStart.publish(ctx);
    jobTrace.asyncEnd.publish(ctx);
  };
  return {
    accepted(job, index) {
      // Not listening: the pool skips this job's later hooks (unless its own hooks want them).
      const wanted = inner?.accepted(job, index) === true;
      if (!listening()) return wanted;
      tracked.set(index, {
        acceptedAt: performance.now(),
        attempts: 0,
        startedAt: 0,
        trace: undefined,
        scope: jobTrace.hasSubscribers ? new AsyncResource('sluice:job') : undefined,
      });
      if (acceptedChannel.hasSubscribers) {
        acceptedChannel.publish({ name, kind, index, job: view(job) } satisfies JobAcceptedMessage);
      }
      return true;
    },
    started(job, index, attempt) {
      const t = tracked.size === 0 ? undefined : tracked.get(index);
      let around: AroundWorker | undefined;
      if (t !== undefined) {
        t.attempts = attempt;
        t.startedAt = performance.now();
        if (jobTrace.hasSubscribers) {
          const ctx: JobTraceContext<unknown> = {
            name,
            kind,
            index,
            job: view(job),
            attempt,
            waitMs: t.startedAt - t.acceptedAt,
          };
          t.trace = ctx;
          around = tracedCall(ctx, t.scope);
        }
      }
      inner?.started?.(job, index, attempt);
      return around;
    },
    retried(job, index, attempt, error, delayMs) {
      const t = tracked.size === 0 ? undefined : tracked.get(index);
      if (t !== undefined) closeAttempt(t, error, performance.now());
      if (retriedChannel.hasSubscribers) {
        retriedChannel.publish({
          name,
          kind,
          index,
          job: view(job),
          attempt,
          error,
          delayMs,
        } satisfies JobRetriedMessage);
      }
      inner?.retried?.(job, index, attempt, error, delayMs);
    },
    settled(job, index, error) {
      const t = tracked.size === 0 ? undefined : tracked.get(index);
      if (t !== undefined) {
        tracked.delete(index);
        const now = performance.now();
        if (t.trace !== undefined) closeAttempt(t, error, now);
        if (settledChannel.hasSubscribers) {
          const message: JobSettledMessage = {
            name,
            kind,
            index,
            job: view(job),
            outcome: outcomeOf(error),
            error,
            attempts: t.attempts,
            totalMs: now - t.acceptedAt,
          };
          settledChannel.publish(message);
        }
      } else if (settledChannel.hasSubscribers) {
        settledChannel.publish({
          name,
          kind,
          index,
          job: view(job),
          outcome: outcomeOf(error),
          error,
          attempts: undefined,
          totalMs: undefined,
        } satisfies JobSettledMessage);
      }
      inner?.settled?.(job, index, error);
    },
  };
}
