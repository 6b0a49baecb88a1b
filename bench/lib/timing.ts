import { readFileSync } from 'node:fs';

/** Runs `fn` once and returns its result with the elapsed wall time in nanoseconds. */
export async function timed<T>(fn: () => Promise<T> | T): Promise<{ value: T; elapsedNs: number }> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { value, elapsedNs: Number(process.hrtime.bigint() - start) };
}

/**
 * CPU time the main thread has used, in nanoseconds, from Linux's per-thread scheduler
 * statistics (`/proc/self/task/<pid>/schedstat`, first field); `undefined` where that file does
 * not exist. `process.cpuUsage()` counts every thread: in a fresh process that includes V8
 * compiling the burst's hot functions on background threads, which competes for the cores but
 * is not the burst's own work. The kernel brings a running thread's figure up to date at its
 * scheduler ticks and switches, so a reading can lag by a tick (1–4 ms): take medians, and do
 * not read it for bursts of a few ms.
 */
export function mainThreadCpuNs(): number | undefined {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return undefined;
  }
}
