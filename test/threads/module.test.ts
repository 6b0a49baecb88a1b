import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it, vi } from 'vitest';
import { AbortError, PoolClosedError, WorkerStartupError } from '../../src/errors.js';
import { adaptive } from '../../src/gates/adaptive.js';
import { ThreadPool } from '../../src/threads/pool.js';
import { fixture } from './helpers.js';

describe('ThreadPool module loading', () => {
  it('runs a .ts module given as a URL', async () => {
    await using pool = new ThreadPool<number, number>(fixture('double.ts'), { threads: 1 });
    expect(await pool.run(21)).toBe(42);
  });

  it('runs a module given as an absolute path and as a file: URL string', async () => {
    // fileURLToPath, not .pathname: a URL's pathname is percent-encoded ("my%20work" for a
    // checkout under "my work"), not the file's path.
    const path = fileURLToPath(fixture('double.js'));
    await using byPath = new ThreadPool<number, number>(path, { threads: 1 });
    await using byHref = new ThreadPool<number, number>(pathToFileURL(path).href, { threads: 1 });
    expect(await byPath.run(2)).toBe(4);
    expect(await byHref.run(3)).toBe(6);
  });

  it('throws a TypeError at construction when the module file does not exist', () => {
    expect(() => new ThreadPool(fixture('missing.ts'))).toThrow(TypeError);
    expect(() => new ThreadPool(fixture('missing.ts'))).toThrow(/module not found: .*missing\.ts/);
    expect(() => new ThreadPool(fixture('missing.ts'))).toThrow(
      expect.objectContaining({ code: 'ERR_MODULE_NOT_FOUND' }),
    );
  });

  it('rejects bad options at construction, naming the option and value', () => {
    const url = fixture('double.ts');
    expect(() => new ThreadPool(url, { threads: 0 })).toThrow(/"threads".*got 0/);
    expect(() => new ThreadPool(url, { queueSize: -1 })).toThrow(RangeError);
    expect(() => new ThreadPool(url, { timeout: 0 })).toThrow(/"timeout"/);
    expect(() => new ThreadPool(url, { abortGrace: Number.NaN })).toThrow(/"abortGrace"/);
    expect(() => new ThreadPool(42 as unknown as string)).toThrow(/"module"/);
  });

  it('refuses resourceLimits that would end the whole process as Node starts a thread', () => {
    const url = fixture('double.ts');
    // A stack of ~0.22 MB or less: Node's bootstrap overflows, exit code 6 (was taken).
    for (const stackSizeMb of [0.01, 0.2, 0.49]) {
      expect(() => new ThreadPool(url, { threads: 1, resourceLimits: { stackSizeMb } })).toThrow(
        expect.objectContaining({
          name: 'RangeError',
          code: 'ERR_INVALID_OPTION',
          message: expect.stringMatching(/"resourceLimits\.stackSizeMb".*>= 0\.5.*got 0\.\d+$/),
        }),
      );
    }
    // A code range V8 cannot reserve: "Fatal process OOM" (was taken).
    expect(
      () => new ThreadPool(url, { threads: 1, resourceLimits: { codeRangeSizeMb: 1e9 } }),
    ).toThrow(/"resourceLimits\.codeRangeSizeMb".*<= 4096.*got 1000000000$/);
  });

  it('a gate option the Pool refuses at construction terminates the threads already started', () => {
    const terminate = vi.spyOn(Worker.prototype, 'terminate');
    try {
      expect(
        () => new ThreadPool(fixture('double.ts'), { threads: 2, retry: { attempts: 0 } }),
      ).toThrow(/retry\.attempts/);
      // Each thread was left running for the life of the process (a V8 isolate apiece).
      expect(terminate).toHaveBeenCalledTimes(2);
    } finally {
      terminate.mockRestore();
    }
  });

  it('refuses more than 1024 threads at construction and in resize, before starting any', async () => {
    const url = fixture('double.ts');
    const tooMany =
      /Invalid option "threads": expected a positive integer <= 1024 \(threads to start\), got 99999999999/;
    expect(() => new ThreadPool(url, { threads: 99_999_999_999 })).toThrow(tooMany);
    expect(() => new ThreadPool(url, { threads: 1025 })).toThrow(RangeError);
    expect(() => new ThreadPool(url, { threads: 2 ** 53 })).toThrow(
      /<= 1024 .*got 9007199254740992/,
    );
    await using pool = new ThreadPool(url, { threads: 1 });
    expect(() => pool.resize(1025)).toThrow(/"threads".*<= 1024.*got 1025/);
    expect(pool.threads).toBe(1);
  });

  it('takes the largest queueSize counts allow (Number.MAX_SAFE_INTEGER) and runs jobs', async () => {
    const url = fixture('double.ts');
    await using pool = new ThreadPool<number, number>(url, {
      threads: 1,
      queueSize: Number.MAX_SAFE_INTEGER,
    });
    expect(await pool.run(21)).toBe(42);
  });

  it('refuses an adaptive limit, saying a ThreadPool is sized to the cores', () => {
    const url = fixture('double.ts');
    const limit = adaptive({ min: 1, max: 4 });
    expect(() => new ThreadPool(url, { threads: limit as never })).toThrow(
      /Invalid option "threads": expected a positive integer `threads`: a ThreadPool is sized to the cores/,
    );
    expect(() => new ThreadPool(url, { concurrency: limit } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION', name: 'TypeError' }),
    );
  });

  it('ThreadPool.create waits for the module: a usable one resolves, an unusable one rejects', async () => {
    await using pool = await ThreadPool.create<number, number>(fixture('double.ts'), {
      threads: 1,
    });
    expect(await pool.run(4)).toBe(8);
    const error = await ThreadPool.create(fixture('no-default.ts'), { threads: 1 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(WorkerStartupError);
    expect((error as Error).message).toMatch(/no function default export/);
  });

  describe('a pool stopped before any thread loaded its module', () => {
    const never = () => fixture('never-loads.ts');

    it('ThreadPool.create rejects with AbortError when its signal aborts during the load', async () => {
      const controller = new AbortController();
      const created = ThreadPool.create<number, number>(never(), {
        threads: 1,
        signal: controller.signal,
      });
      controller.abort('startup budget spent');
      const error = await created.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AbortError);
      expect((error as AbortError).cause).toBe('startup budget spent');
    });

    it('ready rejects with the AbortError of abort(), and the queued jobs are canceled', async () => {
      const pool = new ThreadPool<number, number>(never(), { threads: 1 });
      const job = pool.run(1).catch((e: unknown) => e);
      const report = await pool.abort('stop');
      expect(report.canceled).toBe(1);
      const error = await pool.ready.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AbortError);
      expect((error as AbortError).cause).toBe('stop');
      expect(await job).toBeInstanceOf(AbortError);
    });

    it('ready rejects with PoolClosedError after drain() and after close()', async () => {
      const drained = new ThreadPool<number, number>(never(), { threads: 1 });
      await drained.drain();
      await expect(drained.ready).rejects.toBeInstanceOf(PoolClosedError);

      const closed = new ThreadPool<number, number>(never(), { threads: 1 });
      closed.close();
      await expect(closed.ready).rejects.toBeInstanceOf(PoolClosedError);
    });

    it('a drain deadline that cancels the waiting jobs rejects ready with PoolClosedError', async () => {
      const pool = new ThreadPool<number, number>(never(), { threads: 1 });
      const job = pool.run(1).catch((e: unknown) => e);
      const report = await pool.drain({ timeout: 0 });
      expect(report.canceled).toBe(1);
      expect(await job).toBeInstanceOf(AbortError);
      await expect(pool.ready).rejects.toBeInstanceOf(PoolClosedError);
    });
  });

  it('fails a module without a function default export with one clear WorkerStartupError', async () => {
    const pool = new ThreadPool<number, number>(fixture('no-default.ts'), { threads: 2 });
    const first = pool.run(1);
    const second = pool.run(2);
    const error = await pool.ready.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkerStartupError);
    expect((error as WorkerStartupError).code).toBe('ERR_WORKER_STARTUP');
    expect((error as Error).message).toMatch(/no function default export/);
    expect((error as Error).cause).toHaveProperty('code', 'ERR_INVALID_MODULE');
    // Every job gets that same error, once; later submits too.
    await expect(first).rejects.toBe(error);
    await expect(second).rejects.toBe(error);
    await expect(pool.run(3)).rejects.toBe(error);
    await pool.drain();
  });
});
