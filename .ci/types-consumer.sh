#!/usr/bin/env bash
# The published declarations, type-checked as a user's strict project sees them
# (`skipLibCheck: false`), against the oldest @types/node we support and the newest: a type
# that @types/node renamed or reshaped (TransferListItem, TracingChannel's parameters) fails here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && npm pack --silent --ignore-scripts --pack-destination "$work" >/dev/null)
cd "$work"
echo '{ "private": true, "type": "module" }' > package.json
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "target": "es2022", "module": "nodenext", "moduleResolution": "nodenext",
  "strict": true, "noEmit": true, "skipLibCheck": false, "types": ["node"] }, "include": ["*.ts"] }
JSON
cat > user.ts <<'TS'
import { Pool, pipeline, runPool, shutdownOn, ThreadPool } from 'sluice';
const pool = new Pool(async (n: number) => n * 2, { concurrency: 2 });
const doubled: number = await pool.run(1);
const threads = new ThreadPool<ArrayBuffer, number>(new URL('./w.js', import.meta.url));
await threads.run(new ArrayBuffer(8), { transfer: [new ArrayBuffer(8)] });
for await (const r of runPool([1, 2], async (n) => n, { concurrency: 2 })) if (r.ok) void r.value;
void pipeline([1]).stage('s', async (n: number) => n, { concurrency: 1 });
shutdownOn(['SIGTERM'], () => pool.drain());
void doubled;
TS
typescript=$(node -p "require('$root/node_modules/typescript/package.json').version")
for types in 20 latest; do
  npm install --silent --no-audit --no-fund ./sluice-*.tgz "@types/node@$types" "typescript@$typescript" >/dev/null
  echo "declarations against @types/node $(node -p "require('./node_modules/@types/node/package.json').version")"
  npx tsc -p .
done
