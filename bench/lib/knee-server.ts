// A downstream with a capacity knee, for bench/adaptive.ts: an HTTP server on 127.0.0.1 whose
// latency is timer-based (so the CPU is not what saturates it) and depends on the requests it
// has admitted, n: `base` ms while n <= C, base x n/C above (queueing), and a 503 above 2C (shed
// at the door: not admitted, answered after `rejectMs`). `GET /capacity?c=16` moves the knee;
// `GET /stats` reports what it served and its own CPU time.
//
// Run in its own process (forked by the suite), so client and server never share an event loop:
//   node --import tsx bench/lib/knee-server.ts <C> <baseMs> <rejectMs>
// It sends { port } over IPC once listening, and exits when the IPC channel closes.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const [c0 = '64', base0 = '100', reject0 = '200'] = process.argv.slice(2);
let capacity = Number(c0);
const baseMs = Number(base0);
const rejectMs = Number(reject0);
let admitted = 0;
let served = 0;
let rejected = 0;
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/capacity') {
    capacity = Number(url.searchParams.get('c'));
    loopDelay.reset();
    res.end(String(capacity));
    return;
  }
  if (url.pathname === '/stats') {
    const cpu = process.cpuUsage();
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        served,
        rejected,
        admitted,
        cpuMs: (cpu.user + cpu.system) / 1000,
        loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      }),
    );
    return;
  }
  if (admitted + 1 > 2 * capacity) {
    rejected++;
    setTimeout(() => {
      res.statusCode = 503;
      res.end('busy');
    }, rejectMs);
    return;
  }
  admitted++;
  const latency = baseMs * Math.max(1, admitted / capacity);
  setTimeout(() => {
    admitted--;
    served++;
    res.end('ok');
  }, latency);
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
process.on('disconnect', () => process.exit(0));
