import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { scratchDir } from './paths.js';

const lockPath = join(scratchDir, 'machine.lock');

function holder(): number | undefined {
  try {
    return Number(readFileSync(lockPath, 'utf8')) || undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryTake(): boolean {
  try {
    const fd = openSync(lockPath, 'wx');
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const pid = holder();
    // A lock left by a process that died is taken over; a half-written one is retried.
    if (pid !== undefined && !alive(pid)) {
      try {
        unlinkSync(lockPath);
      } catch {}
    }
    return false;
  }
}

/** Gives the lock back if this process still holds it (a stale holder may have been replaced). */
function release(): void {
  try {
    if (holder() === process.pid) unlinkSync(lockPath);
  } catch {}
}

/** Synchronous twin of {@link withMachineLock}, for `ensureBuilt()` (which suites call without await). */
export function withMachineLockSync<T>(fn: () => T): T {
  if (process.env.SLUICE_BENCH_NO_LOCK) return fn();
  mkdirSync(scratchDir, { recursive: true });
  const nap = new Int32Array(new SharedArrayBuffer(4));
  while (!tryTake()) Atomics.wait(nap, 0, 0, 50);
  try {
    return fn();
  } finally {
    release();
  }
}

/**
 * Runs `fn` while holding a machine-wide lock (a pid file in .tmp/bench/), so isolated
 * benchmark children of different suites (run by different people at the same time on this
 * 2-core machine) never run at once and skew each other. Waits as long as it takes; a lock whose
 * holder died is taken over. `SLUICE_BENCH_NO_LOCK=1` skips it.
 */
export async function withMachineLock<T>(fn: () => Promise<T>): Promise<T> {
  if (process.env.SLUICE_BENCH_NO_LOCK) return fn();
  mkdirSync(scratchDir, { recursive: true });
  let told = false;
  while (!tryTake()) {
    if (!told) {
      console.error(
        `bench: waiting for another benchmark (pid ${holder() ?? '?'}) to finish its run`,
      );
      told = true;
    }
    await sleep(50);
  }
  try {
    return await fn();
  } finally {
    release();
  }
}
