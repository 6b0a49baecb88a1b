import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs node with `args`; resolves with its exit code and stdout (kills it after 20 s). */
function runNode(
  args: string[],
  cwd: string,
): Promise<{ code: number | null; signal: string | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      err += chunk;
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, out, err });
    });
  });
}

describe('ThreadPool lifecycle', () => {
  const script = fileURLToPath(new URL('../fixtures/threads/exit-check.ts', import.meta.url));

  it('drain lets jobs finish, terminates every thread, and the process exits by itself', async () => {
    const { code, signal, out, err } = await runNode(['--import', 'tsx', script, 'drain'], root);
    expect(err).toBe('');
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    const report = JSON.parse(out);
    expect(report.values).toEqual([2, 4, 6]);
    expect(report.threads).toBe(0);
    expect(report.handles).not.toContain('Worker');
    expect(report.handles).not.toContain('MessagePort');
  });

  it('idle threads do not keep the process alive even without drain', async () => {
    const { code, signal, out } = await runNode(['--import', 'tsx', script, 'idle'], root);
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(JSON.parse(out).values).toEqual([2, 4, 6]);
  });

  describe('built .js', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-built-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('runs on plain node with no TypeScript loader anywhere in reach', async () => {
      // Bundle the package entry, and the thread entry next to it (where the pool looks for it),
      // into a directory outside the repository: neither tsx nor node_modules can be found there.
      await build({
        entryPoints: {
          index: join(root, 'src/index.ts'),
          'worker-entry': join(root, 'src/threads/worker-entry.ts'),
        },
        outdir: join(dir, 'dist'),
        bundle: true,
        format: 'esm',
        platform: 'node',
        logLevel: 'silent',
      });
      writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
      cpSync(join(root, 'test/fixtures/threads/double.js'), join(dir, 'double.js'));
      writeFileSync(
        join(dir, 'main.js'),
        `import { ThreadPool } from './dist/index.js';
const pool = new ThreadPool(new URL('./double.js', import.meta.url), { threads: 1 });
console.log(await pool.run(21));
await pool.drain();`,
      );
      expect(relative(root, dir).startsWith('..')).toBe(true);
      const { code, out, err } = await runNode(['main.js'], dir);
      expect(err).toBe('');
      expect(code).toBe(0);
      expect(out.trim()).toBe('42');
    });

    it('a .ts module without tsx: runs where Node strips types, else a clear TypeError', async () => {
      cpSync(join(root, 'test/fixtures/threads/double.ts'), join(dir, 'double.ts'));
      writeFileSync(
        join(dir, 'main-ts.js'),
        `import { ThreadPool } from './dist/index.js';
try {
  const pool = new ThreadPool(new URL('./double.ts', import.meta.url), { threads: 1 });
  console.log(await pool.run(21));
  await pool.drain();
} catch (error) {
  console.log(error.name + ': ' + error.message);
}`,
      );
      const { code, out } = await runNode(['--no-warnings', 'main-ts.js'], dir);
      expect(code).toBe(0);
      const stripsTypes = (process.features as { typescript?: unknown }).typescript;
      if (stripsTypes) expect(out.trim()).toBe('42');
      else expect(out.trim()).toMatch(/^TypeError: .*install tsx/);
    });
  });
});
