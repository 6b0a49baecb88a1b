/**
 * Type tests, checked by `npm run typecheck` (`tsc -p test/types/tsconfig.json`), never run:
 * `ThreadPool.fromModule<typeof import(…)>` reads the job and result types from the module.
 */
import { expectTypeOf } from 'vitest';
import { type Task, ThreadPool } from '../../src/index.js';

const hashUrl = new URL('./fixtures/hash.js', import.meta.url);

export async function inferredFromAnAsyncDefaultExport(): Promise<void> {
  const pool = await ThreadPool.fromModule<typeof import('./fixtures/hash.js')>(hashUrl);
  expectTypeOf(pool).toEqualTypeOf<ThreadPool<Uint8Array, string>>();
  expectTypeOf(pool.run).parameter(0).toEqualTypeOf<Uint8Array>();
  expectTypeOf(pool.run(new Uint8Array(4))).resolves.toEqualTypeOf<string>();
  expectTypeOf(pool.submit(new Uint8Array(4))).resolves.toEqualTypeOf<Task<Uint8Array, string>>();
  // @ts-expect-error: the module takes a Uint8Array
  await pool.run('not bytes');
}

export async function inferredFromASyncDefaultExportWithoutContext(): Promise<void> {
  const pool = await ThreadPool.fromModule<typeof import('./fixtures/parse.js')>(
    new URL('./fixtures/parse.js', import.meta.url),
    { threads: 2, queueSize: 8 },
  );
  expectTypeOf(pool).toEqualTypeOf<ThreadPool<{ text: string }, number[]>>();
  expectTypeOf(pool.run({ text: '1,2' })).resolves.toEqualTypeOf<number[]>();
}

export async function aModuleWithoutAFunctionDefaultIsRefused(): Promise<void> {
  // @ts-expect-error: no default export to be the worker function
  await ThreadPool.fromModule<typeof import('./fixtures/no-default.js')>('./no-default.js');
}

export async function explicitTypesStillWork(): Promise<void> {
  const typed = await ThreadPool.create<Uint8Array, string>(hashUrl);
  expectTypeOf(typed).toEqualTypeOf<ThreadPool<Uint8Array, string>>();
  const untyped = new ThreadPool(hashUrl);
  expectTypeOf(untyped).toEqualTypeOf<ThreadPool<unknown, unknown>>();
}
