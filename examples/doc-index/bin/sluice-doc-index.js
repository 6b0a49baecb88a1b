#!/usr/bin/env node
// The package's bin. npm links a workspace's bins at install time, before dist/ is built, and
// skips a bin whose file does not exist yet: this launcher is committed so that the link is
// always made, and it says how to build when dist/ is missing instead of failing on an import.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (existsSync(cli)) {
  await import(cli.href);
} else {
  process.stderr.write(
    'sluice-doc-index: not built yet: run `npm run build -w sluice-doc-index` first\n',
  );
  process.exitCode = 2;
}
