#!/usr/bin/env bash
# The published declarations (every subpath), type-checked as a user's strict project sees them
# (`skipLibCheck: false`), against the oldest @types/node we support and the newest: a type
# that @types/node renamed or reshaped (TransferListItem, TracingChannel's parameters) fails here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$root/dist/index.js" ] || { echo "no dist/: run npm run build first" >&2; exit 1; }
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
// Every subpath's declarations, with its broker client's own types.
import type * as amqp from 'sluice/amqp';
import type * as nats from 'sluice/nats';
import type * as otel from 'sluice/otel';
import type * as postgres from 'sluice/postgres';
import type * as prometheus from 'sluice/prometheus';
import type * as redis from 'sluice/redis';
export type Subpaths = [typeof amqp, typeof nats, typeof otel, typeof postgres, typeof prometheus, typeof redis];
TS
# The same versions as the repository's own install (the optional peers' types included).
at() { echo "$1@$(node -p "require('$root/node_modules/$1/package.json').version")"; }
peers=()
for name in typescript redis pg @types/pg amqplib @types/amqplib @nats-io/jetstream \
  @nats-io/transport-node @opentelemetry/api prom-client; do
  peers+=("$(at "$name")")
done
for types in 20 latest; do
  npm install --silent --no-audit --no-fund ./sluice-*.tgz "@types/node@$types" "${peers[@]}" >/dev/null
  echo "declarations against @types/node $(node -p "require('./node_modules/@types/node/package.json').version")"
  npx tsc -p .
done
