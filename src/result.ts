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
 * failure `error` is the last of them (or the cancel that ended a backoff wait).
 *
 * @example
 * ```ts
 * for await (const r of runPool(urls, fetchOne, { concurrency: 8 })) {
 *   if (r.ok) save(r.value); else console.error(r.job, r.error.message);
 * }
 * ```
 */
export type Result<J, R> =
  | { ok: true; job: J; index: number; value: R; attempts?: number; errors?: Error[] }
  | {
      ok: false;
      job: J;
      index: number;
      error: Error;
      stage?: string;
      attempts?: number;
      errors?: Error[];
    };

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
