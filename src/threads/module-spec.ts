/**
 * Where a thread's code comes from: the user's worker module, sluice's own entry, and — when
 * either is TypeScript — tsx's loader. Internal.
 *
 * Why an eval'd bootstrap: Node 20 cannot run `.ts` and ignores `--import` in a Worker's
 * `execArgv`, so a thread that must load TypeScript (sluice's own entry when run from source, or a
 * `.ts` worker module in development) first registers tsx's ESM hooks (`tsx/esm/api`'s
 * `register()`, which uses `module.register`) and only then imports the entry. Built `.js` on
 * Node 20 or 24 needs none of this and is loaded directly.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { coded, invalidArgument } from '../internal/options.js';

/** How to start one thread. */
export interface ThreadSpec {
  /** The user's module as a `file:` URL (handed to the entry). */
  module: string;
  /** sluice's worker entry, as a `file:` URL. */
  entry: string;
  /** tsx's `esm/api` as a `file:` URL, when TypeScript must be loaded. */
  tsx: string | undefined;
}

const TS_FILE = /\.[cm]?tsx?$/;

/** The bootstrap each thread evaluates (CommonJS: an eval'd Worker script). */
export const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.tsx) {
    const api = await import(workerData.tsx);
    (api.register ?? api.default.register)();
    // A .ts module in a package without "type": "module" is CommonJS: tsx's require hook too.
    const cjsApi = require('node:url').fileURLToPath(new URL('../../cjs/api/index.cjs', workerData.tsx));
    if (require('node:fs').existsSync(cjsApi)) require(cjsApi).register();
  }
  await import(workerData.entry);
})().catch((error) => { process.nextTick(() => { throw error; }); });
`;

/**
 * Resolves the module option to a `file:` URL and checks it exists.
 * @throws TypeError `ERR_INVALID_ARGUMENT` when it is not a path or file: URL,
 *   `ERR_MODULE_NOT_FOUND` when the file is missing.
 */
export function resolveModule(module: unknown): URL {
  let url: URL;
  if (module instanceof URL) url = module;
  else if (typeof module === 'string' && module.startsWith('file:')) url = new URL(module);
  else if (typeof module === 'string' && module.length > 0) {
    url = pathToFileURL(isAbsolute(module) ? module : resolve(module));
  } else {
    invalidArgument('module', module, 'a file path or file: URL');
  }
  if (url.protocol !== 'file:') {
    invalidArgument('module', url.href, 'a file: URL');
  }
  if (!existsSync(fileURLToPath(url))) {
    throw coded(
      new TypeError(`ThreadPool module not found: ${fileURLToPath(url)}`),
      'ERR_MODULE_NOT_FOUND',
    );
  }
  return url;
}

/**
 * Builds the start-up recipe for `module`.
 * @throws TypeError `ERR_UNKNOWN_FILE_EXTENSION` when TypeScript must be loaded and tsx cannot be
 *   found.
 */
export function threadSpec(module: URL): ThreadSpec {
  const entry = new URL(
    import.meta.url.endsWith('.ts') ? './worker-entry.ts' : './worker-entry.js',
    import.meta.url,
  );
  const needsTsx = TS_FILE.test(module.pathname) || TS_FILE.test(entry.pathname);
  return {
    module: module.href,
    entry: entry.href,
    tsx: needsTsx ? findTsx(module, entry) : undefined,
  };
}

function findTsx(module: URL, entry: URL): string | undefined {
  // Prefer the user's own tsx (next to their module), then the one next to sluice.
  for (const base of [fileURLToPath(module), fileURLToPath(import.meta.url)]) {
    try {
      // require() resolves the CommonJS build; its ESM twin sits next to it.
      const cjs = createRequire(base).resolve('tsx/esm/api');
      const esm = cjs.replace(/\.cjs$/, '.mjs');
      return pathToFileURL(existsSync(esm) ? esm : cjs).href;
    } catch {
      // not installed there; try the next place
    }
  }
  // Built sluice on a Node that strips types itself (22.18+, 23.6+) can still try the user's
  // module without tsx; sluice's own sources need tsx (their imports name `.js` files).
  const stripsTypes = (process.features as { typescript?: unknown }).typescript;
  if (stripsTypes && !TS_FILE.test(entry.pathname)) return undefined;
  throw coded(
    new TypeError(
      `ThreadPool module ${module.href} is TypeScript: install tsx (npm i -D tsx) to load it in development, or pass the built .js file`,
    ),
    'ERR_UNKNOWN_FILE_EXTENSION',
  );
}
