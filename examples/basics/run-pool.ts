// runPool: N workers over a lazy source; every result (and every error) comes back as a value.
import { runPool } from 'sluice';

async function checkPort(port: number, { signal }: { signal: AbortSignal }): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, 5));
  if (signal.aborted) throw signal.reason;
  if (port % 7 === 0) throw new Error(`port ${port} refused`);
  return `port ${port} ok`;
}

function* ports() {
  for (let port = 8000; port < 8030; port++) yield port;
}

export async function main(): Promise<{ ok: number; failed: number }> {
  let ok = 0;
  let failed = 0;
  for await (const r of runPool(ports(), checkPort, { concurrency: 4, timeout: 1_000 })) {
    if (r.ok) ok++;
    else failed++;
  }
  return { ok, failed };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await main());
