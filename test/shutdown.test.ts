import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { Pool, shutdownOn } from '../src/index.js';
import { deferred } from './helpers.js';

const fixture = fileURLToPath(new URL('./fixtures/shutdown-child.ts', import.meta.url));

interface Event {
  event: string;
  n?: number;
  completed?: number;
  canceled?: number;
}

/** Starts the child service and lets the test wait for specific events, in order. */
function startChild(env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', fixture], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const events: Event[] = [];
  const waiters: { test: (e: Event) => boolean; resolve: () => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const e = JSON.parse(line) as Event;
    events.push(e);
    for (const w of waiters.filter((w) => w.test(e))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  const waitFor = (test: (e: Event) => boolean) =>
    events.some(test)
      ? Promise.resolve()
      : new Promise<void>((resolve) => waiters.push({ test, resolve }));
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal, at: Date.now() }));
  return { child, events, waitFor, exited, stderr: () => stderr };
}

const count = (events: Event[], name: string) => events.filter((e) => e.event === name).length;

describe('shutdownOn (child process)', () => {
  it('SIGTERM during work drains every accepted job and exits 0', async () => {
    const { child, events, waitFor, exited } = startChild({ JOB_MS: '200', JOBS: '6' });
    await waitFor((e) => e.event === 'started');
    child.kill('SIGTERM');
    const { code } = await exited;
    expect(code).toBe(0);
    expect(count(events, 'canceled')).toBe(0);
    expect(count(events, 'done')).toBe(count(events, 'started'));
    expect(events.find((e) => e.event === 'drained')).toMatchObject({ canceled: 0 });
  });

  it('a drain that rejects exits 1 and writes its error to stderr', async () => {
    const { child, waitFor, exited, stderr } = startChild({
      JOB_MS: '50',
      JOBS: '2',
      DRAIN_REJECT: 'disk full while flushing',
    });
    await waitFor((e) => e.event === 'started');
    child.kill('SIGTERM');
    const { code } = await exited;
    expect(code).toBe(1);
    expect(stderr()).toMatch(
      /shutdownOn: the drain after SIGTERM failed:.*disk full while flushing/s,
    );
  });

  it('a repeat of the signal within the debounce window counts as one', async () => {
    // The window is wide and the repeat is sent once the first signal was handled, so neither a
    // slow machine (a late repeat) nor the kernel merging two pending signals decides the outcome.
    // Jobs of 1 s keep the drain (two rounds of two) open long after the repeat arrives.
    const { child, events, waitFor, exited } = startChild({
      JOB_MS: '1000',
      JOBS: '4',
      DEBOUNCE_MS: '60000',
    });
    await waitFor((e) => e.event === 'started');
    child.kill('SIGTERM');
    await waitFor((e) => e.event === 'signal');
    child.kill('SIGTERM');
    const { code } = await exited;
    expect(code).toBe(0);
    expect(count(events, 'signal')).toBe(1);
    expect(count(events, 'canceled')).toBe(0);
    expect(count(events, 'done')).toBe(count(events, 'started'));
  });

  it('a second SIGTERM 500 ms later aborts what is left and exits non-zero promptly', async () => {
    // Jobs of 60 s and a shutdown timeout of 10 min: only the second signal can end it within
    // the test, so "promptly" can be a bound a loaded machine cannot stretch past.
    const { child, events, waitFor, exited } = startChild({
      JOB_MS: '60000',
      JOBS: '4',
      TIMEOUT_MS: '600000',
    });
    await waitFor((e) => e.event === 'started');
    child.kill('SIGTERM');
    await waitFor((e) => e.event === 'signal');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const sentAt = Date.now();
    child.kill('SIGTERM');
    const { code, at } = await exited;
    expect(code).toBe(143);
    expect(at - sentAt).toBeLessThan(10_000);
    expect(count(events, 'canceled')).toBe(count(events, 'started'));
    expect(count(events, 'done')).toBe(0);
  });

  it('two shutdownOn on one signal: the process exits once both drains finished, with the worse exit code', async () => {
    for (const [canceled, expected] of [
      ['0', 0],
      ['2', 1],
    ] as const) {
      const { child, events, waitFor, exited } = startChild({
        JOB_MS: '100',
        JOBS: '2',
        SECOND_DRAIN_MS: '600',
        SECOND_CANCELED: canceled,
      });
      await waitFor((e) => e.event === 'started');
      child.kill('SIGTERM');
      const { code } = await exited;
      // The first drain finishes first; it must not exit the process under the second.
      expect(events.map((e) => e.event).filter((e) => e.endsWith('drained'))).toEqual([
        'drained',
        'second drained',
      ]);
      expect(code).toBe(expected);
    }
  });

  it('the timeout alone aborts what is left and exits non-zero', async () => {
    const { child, events, waitFor, exited } = startChild({
      JOB_MS: '60000',
      JOBS: '4',
      TIMEOUT_MS: '300',
    });
    await waitFor((e) => e.event === 'started');
    const sentAt = Date.now();
    child.kill('SIGTERM');
    const { code, at } = await exited;
    expect(code).toBe(1);
    // The timeout (0.3 s) and forceGrace (0.2 s), not the 60 s jobs, ended it; a wide bound, as
    // the child's timers run late on a loaded machine.
    expect(at - sentAt).toBeLessThan(20_000);
    expect(count(events, 'canceled')).toBeGreaterThan(0);
  });
});

/** A child with several shutdownOn (shutdown-group-child.ts), driven line by line. */
function startGroup(shutdowns: object[], env: Record<string, string> = {}) {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(new URL('./fixtures/shutdown-group-child.ts', import.meta.url)),
    ],
    {
      env: { ...process.env, ...env, SHUTDOWNS: JSON.stringify(shutdowns) },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  child.stderr!.resume();
  const events: { event: string; name?: string; code?: number }[] = [];
  const waiters: (() => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    events.push(JSON.parse(line));
    for (const w of waiters.splice(0)) w();
  });
  const seen = (event: string, name?: string) =>
    events.some((e) => e.event === event && e.name === name);
  const waitFor = async (event: string, name?: string) => {
    while (!seen(event, name)) await new Promise<void>((r) => waiters.push(r));
  };
  const exited = once(child, 'exit').then(([code]) => code as number);
  const say = (line: string) => child.stdin!.write(`${line}\n`);
  /**
   * Waits until the clock has moved to the next millisecond: a repeat sent after this is at
   * least 1 ms after the first signal even on a fast machine, so a `debounce: 0` registration
   * (it ignores a repeat within the same millisecond: `now - first > 0`) takes it as a repeat.
   */
  const nextMs = async () => {
    const now = Date.now();
    while (Date.now() <= now) await new Promise((r) => setTimeout(r, 1));
  };
  /** Once the child is ready: SIGTERM, then every registration's drain has started. */
  const term = async () => {
    await waitFor('ready');
    child.kill('SIGTERM');
    await Promise.all(shutdowns.map((r) => waitFor('started', (r as { name: string }).name)));
  };
  return { child, events, seen, waitFor, exited, say, term, nextMs };
}

describe('shutdownOn: several in one process end together', () => {
  it('an exit: false drain still running is not cut off when an exit: true one finishes first', async () => {
    const g = startGroup([
      { name: 'a', signals: ['SIGTERM'] },
      { name: 'b', signals: ['SIGTERM'], exit: false },
    ]);
    await g.term();
    g.say('a ok');
    await g.waitFor('ok', 'a');
    g.say('b ok'); // the process must still be there to take it
    expect(await g.exited).toBe(0);
    expect(g.seen('ok', 'b')).toBe(true);
  });

  it('the exit code is the worst of all drains, also when the worse one finished first', async () => {
    for (const [first, then, code] of [
      ['b fail', 'a ok', 1],
      ['a canceled', 'b ok', 1],
      ['a ok', 'b ok', 0],
    ] as const) {
      const g = startGroup([
        { name: 'a', signals: ['SIGTERM'] },
        { name: 'b', signals: ['SIGTERM'], exit: false },
      ]);
      await g.term();
      g.say(first);
      await g.waitFor(first.split(' ')[1]!, first.split(' ')[0]);
      g.say(then);
      expect(await g.exited).toBe(code);
    }
  });

  it('a repeated signal forces every running drain, also those not listening to it', async () => {
    const g = startGroup([
      { name: 'a', signals: ['SIGTERM', 'SIGINT'], forceGrace: 100, debounce: 0 },
      // b's own deadline is far off: only a's forced stop can end it soon.
      { name: 'b', signals: ['SIGTERM'], forceGrace: 100, timeout: 600_000 },
    ]);
    await g.term();
    await g.nextMs();
    g.child.kill('SIGINT');
    await g.waitFor('aborted', 'b');
    expect(await g.exited).toBe(130);
    expect(g.seen('aborted', 'a') && g.seen('aborted', 'b')).toBe(true);
  });

  it('a repeat of a signal only a finished registration listened to still forces the others (not the default action)', async () => {
    const g = startGroup([
      { name: 'a', signals: ['SIGTERM', 'SIGINT'], debounce: 0 },
      { name: 'b', signals: ['SIGTERM'], forceGrace: 100, timeout: 600_000 },
    ]);
    await g.term();
    g.say('a ok');
    await g.waitFor('ok', 'a');
    await g.nextMs();
    g.child.kill('SIGINT'); // a is done: without its handler, SIGINT would kill the process
    expect(await g.exited).toBe(130);
    expect(g.seen('aborted', 'b')).toBe(true);
  });

  it('an exit code the app set before the signal is never lowered', async () => {
    const g = startGroup([{ name: 'a', signals: ['SIGTERM'] }], { EXIT_CODE: '3' });
    await g.term();
    g.say('a ok');
    expect(await g.exited).toBe(3);
  });

  it("one drain's timeout forces the others, and its exit code holds though they finish cleanly", async () => {
    const g = startGroup([
      { name: 'a', signals: ['SIGTERM'], timeout: 100, forceGrace: 60_000, ignoreAbort: true },
      { name: 'b', signals: ['SIGTERM'] },
    ]);
    await g.waitFor('ready');
    g.child.kill('SIGTERM');
    await Promise.all([g.waitFor('aborted', 'a'), g.waitFor('aborted', 'b')]);
    // a goes on in its grace (unref'd: it cannot hold the process); once stdin ends the loop
    // empties, and the exit code is the one a's timeout promised, not b's.
    g.child.stdin!.end();
    expect(await g.exited).toBe(1);
  });
});

describe('shutdownOn: arguments', () => {
  it('rejects bad arguments at install time, naming them', () => {
    expect(() => shutdownOn([], async () => {})).toThrow(/"signals"/);
    expect(() => shutdownOn(['SIGTERM'], 'x' as unknown as () => void)).toThrow(/"drain"/);
    expect(() => shutdownOn(['SIGTERM'], async () => {}, { timeout: -1 })).toThrow(/"timeout".*-1/);
    expect(() => shutdownOn(['SIGTERM'], async () => {}, { exit: 'no' as never })).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_OPTION' }),
    );
  });

  it('an options argument that is not an object is refused as ERR_INVALID_ARGUMENT; null means the defaults', () => {
    const before = process.listenerCount('SIGUSR2');
    for (const opts of [5, 'x', [], true]) {
      expect(() => shutdownOn(['SIGUSR2'], async () => {}, opts as never)).toThrow(
        expect.objectContaining({
          name: 'TypeError',
          code: 'ERR_INVALID_ARGUMENT',
          message: expect.stringMatching(/^Invalid argument "opts"/),
        }),
      );
    }
    expect(process.listenerCount('SIGUSR2')).toBe(before);
    const uninstall = shutdownOn(['SIGUSR2'], async () => {}, null as never);
    expect(process.listenerCount('SIGUSR2')).toBe(before + 1);
    uninstall();
  });

  it('refuses signals no drain can start from (SIGKILL, SIGSTOP; SIGBUS, SIGFPE, SIGSEGV, SIGILL, unsafe for JavaScript listeners) and installs nothing', () => {
    const before = process.listenerCount('SIGINT');
    const refused = ['SIGKILL', 'SIGSTOP', 'SIGBUS', 'SIGFPE', 'SIGSEGV', 'SIGILL'] as const;
    for (const untrappable of refused) {
      expect(process.listenerCount(untrappable)).toBe(0);
      expect(() => shutdownOn(['SIGINT', untrappable], async () => {})).toThrow(
        expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARGUMENT' }),
      );
    }
    expect(process.listenerCount('SIGINT')).toBe(before);
    for (const untrappable of refused) expect(process.listenerCount(untrappable)).toBe(0);
  });

  it('installs all handlers or none: a failing install removes the ones already added', () => {
    const before = process.listenerCount('SIGUSR2');
    const on = process.on.bind(process);
    const spy = vi.spyOn(process, 'on').mockImplementation(((event: string, fn: () => void) => {
      if (event === 'SIGHUP') throw new Error('uv_signal_start EINVAL');
      return on(event, fn);
    }) as typeof process.on);
    try {
      expect(() => shutdownOn(['SIGUSR2', 'SIGHUP'], async () => {})).toThrow(/EINVAL/);
    } finally {
      spy.mockRestore();
    }
    expect(process.listenerCount('SIGUSR2')).toBe(before);
  });

  it('a signal listed twice is one handler: one delivery is the first signal, never a forced repeat', async () => {
    const before = process.listenerCount('SIGUSR2');
    const saved = process.exitCode;
    const started = deferred<AbortSignal>();
    const release = deferred<void>();
    const uninstall = shutdownOn(
      ['SIGUSR2', 'SIGUSR2'],
      async (_signal, { abortSignal }) => {
        started.resolve(abortSignal);
        await release.promise;
      },
      { exit: false, debounce: 0 },
    );
    // The clock moves between two listeners of one delivery (a loaded machine): each reading 1 ms on.
    let ms = 1_000_000;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => ms++);
    try {
      process.emit('SIGUSR2', 'SIGUSR2');
      const abortSignal = await started.promise;
      expect(abortSignal.aborted).toBe(false);
      expect(process.listenerCount('SIGUSR2')).toBe(before + 1);
    } finally {
      clock.mockRestore();
      release.resolve();
      uninstall();
      process.exitCode = saved;
    }
  });

  it("the uninstaller removes the handlers it installed, though the caller's array changed since", () => {
    const before = process.listenerCount('SIGUSR2');
    const signals: NodeJS.Signals[] = ['SIGUSR2'];
    const uninstall = shutdownOn(signals, async () => {}, { exit: false });
    signals.length = 0;
    uninstall();
    expect(process.listenerCount('SIGUSR2')).toBe(before);
  });

  it('returns an uninstaller that removes its handlers', () => {
    const before = process.listenerCount('SIGUSR2');
    const uninstall = shutdownOn(['SIGUSR2'], async () => {}, { exit: false });
    expect(process.listenerCount('SIGUSR2')).toBe(before + 1);
    uninstall();
    expect(process.listenerCount('SIGUSR2')).toBe(before);
  });
});

describe('shutdownOn: the exit code says whether the drain dropped work', () => {
  /**
   * Installs shutdownOn on SIGUSR2 without exiting, delivers the signal in-process and returns
   * the exit code it set once the drain settled (process.exitCode is restored after).
   */
  async function exitCodeAfter(
    drain: () => Promise<unknown>,
    opts: { canceledExitCode?: number } = {},
  ): Promise<number | string | undefined> {
    const saved = process.exitCode;
    const settled = deferred<void>();
    const uninstall = shutdownOn(
      ['SIGUSR2'],
      async () => {
        try {
          return await drain();
        } finally {
          setImmediate(settled.resolve);
        }
      },
      { ...opts, exit: false },
    );
    try {
      process.emit('SIGUSR2', 'SIGUSR2');
      await settled.promise;
      return process.exitCode;
    } finally {
      uninstall();
      process.exitCode = saved;
    }
  }

  /** A pool running one job that ends only when canceled. */
  function stuckPool() {
    const pool = new Pool<number, number>(
      (_n, { signal }) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      { concurrency: 1 },
    );
    void pool.submit(1);
    return pool;
  }

  it('pool.drain({ timeout }) that canceled jobs at its deadline exits 1, not 0', async () => {
    const pool = stuckPool();
    expect(await exitCodeAfter(() => pool.drain({ timeout: 20 }))).toBe(1);
  });

  it('the code for canceled work is configurable; an array of reports counts too', async () => {
    const pool = stuckPool();
    const clean = new Pool(async (n: number) => n, { concurrency: 1 });
    expect(
      await exitCodeAfter(() => Promise.all([clean.drain(), pool.drain({ timeout: 20 })]), {
        canceledExitCode: 75,
      }),
    ).toBe(75);
  });

  it('one rule for every report: a consumer report with unsettled messages exits like one with canceled jobs; clean reports exit 0', async () => {
    const consumerReport = (canceled: number, unsettled: number) => ({
      completed: 3,
      released: 0,
      canceled,
      unsettled,
      stats: {},
    });
    expect(await exitCodeAfter(async () => consumerReport(0, 2))).toBe(1);
    expect(await exitCodeAfter(async () => consumerReport(1, 0))).toBe(1);
    expect(
      await exitCodeAfter(async () => [{ canceled: 0 }, consumerReport(0, 1)], {
        canceledExitCode: 75,
      }),
    ).toBe(75);
    expect(await exitCodeAfter(async () => [{ canceled: 0 }, consumerReport(0, 0)])).toBe(0);
  });

  it('a drain in which everything finished exits 0', async () => {
    const pool = new Pool(async (n: number) => n, { concurrency: 1 });
    void pool.submit(1);
    expect(await exitCodeAfter(() => pool.drain({ timeout: 5_000 }))).toBe(0);
  });

  it('refuses a canceledExitCode that is not an exit code', () => {
    expect(() => shutdownOn(['SIGUSR2'], async () => {}, { canceledExitCode: 256 })).toThrow(
      expect.objectContaining({ name: 'RangeError', code: 'ERR_INVALID_OPTION' }),
    );
  });
});
