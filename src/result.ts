/**
 * The outcome of one job, as a value: errors are kept, never thrown past the pool.
 *
 * - `ok: true` — `value` is what the worker returned.
 * - `ok: false` — `error` is always an `Error` (a thrown non-Error is wrapped in
 *   `JobFailedError` with the original as `cause`); `TimeoutError`, `AbortError` and
 *   `WorkerCrashedError` mark timeouts, cancellations and crashes. In a pipeline, `stage` names
 *   the stage that failed.
 *
 * `index` is the job's position in submission (or source) order, from 0.
 *
 * With the `retry` option: `attempts` is how many runs the job had (attempts canceled before
 * they started do not count), and `errors` the error of each failed run, oldest first — on a
 * failure `error` is the last of them (after a cancel that ended a backoff wait, that cancel is
 * appended, so `errors` is then one longer than `attempts`).
 *
 * @example
 * ```ts
 * for await (const r of runPool(urls, fetchOne, { concurrency: 8 })) {
 *   if (r.ok) save(r.value); else console.error(r.job, r.error.message);
 * }
 * ```
 */
export type Result<J, R> =
  | {
      /** The worker returned (or resolved): `value` holds what it gave. */
      ok: true;
      /** The job as it was submitted (or pulled from the source). */
      job: J;
      /** The job's position in submission (or source) order, from 0. */
      index: number;
      /** What the worker returned. */
      value: R;
      /** With `retry`: how many runs the job had (the last one succeeded). */
      attempts?: number;
      /** With `retry`: each earlier failed run's error, oldest first (empty when the first run succeeded). */
      errors?: Error[];
    }
  | {
      /** The job failed, timed out, was canceled or its thread crashed: see `error`. */
      ok: false;
      /** The job as it was submitted (or pulled from the source). */
      job: J;
      /** The job's position in submission (or source) order, from 0. */
      index: number;
      /**
       * Always an `Error`: what the worker threw (a non-Error wrapped in `JobFailedError`,
       * `ERR_JOB_FAILED`, with it as `cause`), or `TimeoutError` (`ERR_JOB_TIMEOUT`),
       * `AbortError` (`ABORT_ERR`), `WorkerCrashedError` (`ERR_WORKER_CRASHED`).
       */
      error: Error;
      /** In a pipeline: the name of the stage that failed (see {@link PipelineResult}). */
      stage?: string;
      /** With `retry`: how many runs started (a job canceled before its first run has 0). */
      attempts?: number;
      /**
       * With `retry`: every error the job met, oldest first — each failed run's, then the cancel
       * that ended a wait to retry, if one did — so `errors.at(-1)` is always `error` (and
       * `errors.length` is `attempts`, or `attempts + 1` after such a cancel).
       */
      errors?: Error[];
    };

/**
 * A pipeline's result: a {@link Result} whose failures always name the stage that failed
 * (`stage`, the name given to `stage()`), so `r.stage` needs no check after `!r.ok`.
 *
 * @example
 * ```ts
 * for await (const r of results) if (!r.ok) log.error({ stage: r.stage, err: r.error });
 * ```
 */
export type PipelineResult<J, T> =
  | Extract<Result<J, T>, { ok: true }>
  | (Extract<Result<J, T>, { ok: false }> & { stage: string });

/** Builds the Result for a settled job. Internal. */
export function makeResult<J, R>(
  job: J,
  index: number,
  error: Error | undefined,
  value: R | undefined,
): Result<J, R> {
  return error === undefined
    ? { ok: true, job, index, value: value as R }
    : { ok: false, job, index, error };
}
