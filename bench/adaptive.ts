// Adaptive concurrency against a real HTTP downstream whose capacity knee moves mid-run.
// The server (bench/lib/knee-server.ts, its own process on 127.0.0.1) answers in `base` ms up to
// C requests in flight, base x n/C above, 503 above 2C; C goes from c1 to c2 after phase 1.
// Each contender (fixed runPool sizes, and adaptive()) runs alone in a fresh client process
// against a fresh server, for phase1 + phase2 ms. Reports throughput (successes/s), p99 latency
// of successes and 503s per phase, and writes the limit + throughput series as CSV.
//   npx tsx bench/adaptive.ts [--only=4,16,64,256,1024,adaptive] [--c1=64] [--c2=16]
//     [--base=100] [--reject=200] [--phase1=15000] [--phase2=30000] [--settle=5000]
//     [--csv=bench/results/adaptive.csv] [--algorithm=gradient|aimd]
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  type Cases,
  ensureBuilt,
  isMain,
  loadSluice,
  markdownTable,
  printHeader,
  repoRoot,
  runIsolated,
} from './lib/index.js';

interface ClientParams {
  port: number;
  /** A fixed size, or 'adaptive'. */
  size: number | 'adaptive';
  algorithm: 'gradient' | 'aimd';
  phases: { c: number; ms: number }[];
  /** ms at the start of each phase left out of the "settled" figures. */
  settleMs: number;
  /** Width of a series bucket, ms. */
  bucketMs: number;
  /** The server's latency below the knee, ms. */
  baseMs: number;
}

/** One phase's figures. */
interface PhaseFigures {
  ok: number;
  rejected: number;
  /** Successes per second. */
  throughput: number;
  p50: number;
  p99: number;
  /** The same after the first `settleMs` of the phase. */
  settled: { throughput: number; p99: number };
}

interface ClientValue {
  phases: PhaseFigures[];
  /** Per bucket: end time (s), successes/s, 503s/s, limit (the size when fixed). */
  series: { t: number; okPerS: number; rejectedPerS: number; limit: number }[];
  limitMoves: number;
  /** Every limit move (adaptive only): ms since the start, new limit, reason. */
  moves: { t: number; limit: number; reason: string }[];
  /** Per phase: successes slower than 1.25x / 1.5x the base latency. */
  slow: { over125: number; over150: number }[];
  clientCpuMs: number;
  clientLoopDelayP99Ms: number;
  server: { cpuMs: number; loopDelayP99Ms: number };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** One GET on a kept-alive socket: resolves on 200, rejects with `status` otherwise. */
function get(agent: Agent, port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        if (res.statusCode === 200) resolve(body);
        else reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode }));
      });
    });
    req.on('error', reject);
    req.end();
  });
}

export const cases = {
  async client(params: ClientParams): Promise<ClientValue> {
    const { adaptive, runPool, SLUICE_POOL_LIMIT } = await loadSluice();
    const diagnostics = await import('node:diagnostics_channel');
    const { port, phases, settleMs, bucketMs } = params;
    const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
    const control = new Agent({ keepAlive: false });
    await get(control, port, `/capacity?c=${phases[0]!.c}`);

    const limit =
      params.size === 'adaptive'
        ? adaptive({ min: 1, max: 1024, algorithm: params.algorithm })
        : undefined;
    let limitMoves = 0;
    const moves: ClientValue['moves'] = [];
    let t0 = Number.NaN;
    const onLimit = (m: unknown) => {
      limitMoves++;
      const { at, limit: to, reason } = m as { at: number; limit: number; reason: string };
      moves.push({ t: Math.round(at - t0), limit: to, reason });
    };
    diagnostics.subscribe(SLUICE_POOL_LIMIT, onLimit);

    const total = phases.reduce((sum, p) => sum + p.ms, 0);
    const buckets = Math.ceil(total / bucketMs);
    const okAt = new Array<number>(buckets).fill(0);
    const rejectedAt = new Array<number>(buckets).fill(0);
    const limitAt = new Array<number>(buckets).fill(0);
    // Latencies of successes, by the phase they completed in.
    const latencies: { at: number; ms: number }[][] = phases.map(() => []);
    const phaseStarts = phases.map((_, i) => phases.slice(0, i).reduce((s, p) => s + p.ms, 0));
    const phaseOf = (t: number) => {
      let i = 0;
      while (i + 1 < phases.length && t >= phaseStarts[i + 1]!) i++;
      return i;
    };

    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    const cpu0 = process.cpuUsage();
    t0 = performance.now();
    const elapsed = () => performance.now() - t0;
    const sampler = setInterval(() => {
      const b = Math.min(buckets - 1, Math.floor(elapsed() / bucketMs));
      limitAt[b] = limit?.limit ?? (params.size as number);
    }, bucketMs / 4);
    const switches = phases.slice(1).map((p, i) =>
      setTimeout(
        () => {
          void get(control, port, `/capacity?c=${p.c}`);
        },
        phaseStarts[i + 1],
      ),
    );

    function* jobs(): Generator<number> {
      for (let i = 0; elapsed() < total; i++) yield i;
    }
    const record = (start: number, ok: boolean) => {
      const end = performance.now() - t0;
      if (end >= total) return;
      const b = Math.floor(end / bucketMs);
      if (!ok) rejectedAt[b]!++;
      else {
        okAt[b]!++;
        latencies[phaseOf(end)]!.push({ at: end, ms: end + t0 - start });
      }
    };
    const worker = async (): Promise<void> => {
      const start = performance.now();
      let ok = false;
      try {
        await get(agent, port, '/');
        ok = true;
      } finally {
        record(start, ok);
      }
    };
    for await (const _ of runPool(jobs(), worker, {
      concurrency: limit ?? (params.size as number),
      name: `client-${params.size}`,
    })) {
      /* results are counted by the worker */
    }
    clearInterval(sampler);
    for (const s of switches) clearTimeout(s);
    diagnostics.unsubscribe(SLUICE_POOL_LIMIT, onLimit);
    const cpu = process.cpuUsage(cpu0);
    const server = JSON.parse(await get(control, port, '/stats')) as ClientValue['server'];
    agent.destroy();

    const figures = phases.map((phase, i): PhaseFigures => {
      const all = latencies[i]!;
      const from = phaseStarts[i]!;
      const settled = all.filter((l) => l.at >= from + settleMs).map((l) => l.ms);
      const ms = all.map((l) => l.ms).sort((a, b) => a - b);
      settled.sort((a, b) => a - b);
      const bucketsOf = (a: number, z: number) =>
        rejectedAt.slice(Math.floor(a / bucketMs), Math.ceil(z / bucketMs));
      return {
        ok: ms.length,
        rejected: bucketsOf(from, from + phase.ms).reduce((s, n) => s + n, 0),
        throughput: ms.length / (phase.ms / 1000),
        p50: percentile(ms, 50),
        p99: percentile(ms, 99),
        settled: {
          throughput: settled.length / ((phase.ms - settleMs) / 1000),
          p99: percentile(settled, 99),
        },
      };
    });
    // A fixed-size bucket may have been sampled before the first tick: fill from its neighbour.
    for (let b = 1; b < buckets; b++) if (limitAt[b] === 0) limitAt[b] = limitAt[b - 1]!;
    return {
      phases: figures,
      series: okAt.map((ok, b) => ({
        t: ((b + 1) * bucketMs) / 1000,
        okPerS: ok / (bucketMs / 1000),
        rejectedPerS: rejectedAt[b]! / (bucketMs / 1000),
        limit: limitAt[b]!,
      })),
      limitMoves,
      moves,
      slow: latencies.map((all) => ({
        over125: all.filter((l) => l.ms > 1.25 * params.baseMs).length,
        over150: all.filter((l) => l.ms > 1.5 * params.baseMs).length,
      })),
      clientCpuMs: (cpu.user + cpu.system) / 1000,
      clientLoopDelayP99Ms: loop.percentile(99) / 1e6,
      server: { cpuMs: server.cpuMs, loopDelayP99Ms: server.loopDelayP99Ms },
    };
  },
} satisfies Cases;

/** Starts the knee server in its own process; resolves with it and its port. */
function startServer(
  c: number,
  base: number,
  reject: number,
): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(
    join(repoRoot, 'bench', 'lib', 'knee-server.ts'),
    [`${c}`, `${base}`, `${reject}`],
    {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  return new Promise((resolve, reject_) => {
    child.once('message', (m: { port: number }) => resolve({ child, port: m.port }));
    child.once('exit', (code) => reject_(new Error(`knee server exited with ${code}`)));
  });
}

function flag(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : hit.slice(name.length + 3);
}

/** An ASCII plot of `values` over time, at most `width` columns (buckets averaged), `rows` high. */
function asciiPlot(label: string, series: number[], rows = 8, width = 60): string {
  const per = Math.ceil(series.length / width);
  const values: number[] = [];
  for (let i = 0; i < series.length; i += per) {
    const chunk = series.slice(i, i + per);
    values.push(chunk.reduce((a, b) => a + b, 0) / chunk.length);
  }
  const top = Math.max(...values, 1);
  const lines: string[] = [];
  for (let r = rows; r >= 1; r--) {
    const level = (top * (r - 0.5)) / rows;
    const axis = r === rows ? String(Math.round(top)).padStart(6) : ' '.repeat(6);
    lines.push(`${axis} |${values.map((v) => (v >= level ? '#' : ' ')).join('')}`);
  }
  lines.push(`${'0'.padStart(6)} +${'-'.repeat(values.length)} ${label}`);
  return lines.join('\n');
}

if (isMain(import.meta.url)) {
  ensureBuilt();
  const c1 = Number(flag('c1', '64'));
  const c2 = Number(flag('c2', '16'));
  const base = Number(flag('base', '100'));
  const reject = Number(flag('reject', '200'));
  const phase1 = Number(flag('phase1', '15000'));
  const phase2 = Number(flag('phase2', '30000'));
  const settleMs = Number(flag('settle', '5000'));
  const algorithm = flag('algorithm', 'gradient') as 'gradient' | 'aimd';
  const csv = flag('csv', join(repoRoot, '.tmp', 'bench', 'adaptive.csv'));
  const only = flag('only', '4,16,64,256,1024,adaptive').split(',');
  mkdirSync(dirname(csv), { recursive: true });
  printHeader('Adaptive concurrency vs fixed sizes (HTTP, moving knee)', []);
  console.log(
    `server: C ${c1} for ${phase1 / 1000} s, then C ${c2} for ${phase2 / 1000} s; latency ${base} ms up to C in flight, ` +
      `x n/C above, 503 above 2C (after ${reject} ms); adaptive({ min: 1, max: 1024, algorithm: '${algorithm}' }); ` +
      `"settled" leaves out each phase's first ${settleMs / 1000} s`,
  );
  const rows: string[][] = [];
  const seriesRows: string[] = ['contender,t_s,ok_per_s,rejected_per_s,limit'];
  const plots: string[] = [];
  for (const name of only) {
    const size = name === 'adaptive' ? 'adaptive' : Number(name);
    const { child, port } = await startServer(c1, base, reject);
    try {
      const run = await runIsolated<ClientValue>(
        fileURLToPath(import.meta.url),
        'client',
        {
          port,
          size,
          algorithm,
          phases: [
            { c: c1, ms: phase1 },
            { c: c2, ms: phase2 },
          ],
          settleMs,
          bucketMs: 500,
          baseMs: base,
        } satisfies ClientParams,
        { timeoutMs: phase1 + phase2 + 60_000 },
      );
      if (!run.value) throw new Error(`${name}: ${run.error ?? 'timed out'}`);
      const v = run.value;
      const label = size === 'adaptive' ? `adaptive (${algorithm})` : `fixed ${size}`;
      for (const [i, p] of v.phases.entries()) {
        rows.push([
          label,
          `${i + 1} (C ${i === 0 ? c1 : c2})`,
          p.throughput.toFixed(0),
          p.p99.toFixed(0),
          p.p50.toFixed(0),
          String(p.rejected),
          p.settled.throughput.toFixed(0),
          p.settled.p99.toFixed(0),
          i === 0 ? `${v.clientCpuMs.toFixed(0)} / ${v.server.cpuMs.toFixed(0)}` : '',
          i === 0
            ? `${v.clientLoopDelayP99Ms.toFixed(1)} / ${v.server.loopDelayP99Ms.toFixed(1)}`
            : '',
        ]);
      }
      for (const s of v.series) {
        seriesRows.push(`${label},${s.t},${s.okPerS},${s.rejectedPerS},${s.limit}`);
      }
      if (size === 'adaptive') {
        plots.push(
          asciiPlot(
            'limit over time (1 column = 1 s at 60 s)',
            v.series.map((s) => s.limit),
          ),
        );
        plots.push(
          asciiPlot(
            'successes/s over time',
            v.series.map((s) => s.okPerS),
          ),
        );
        console.error(`${label}: ${v.limitMoves} limit moves`);
        // The reaction to the knee's move, move by move: the first 3 s of phase 2.
        const around = v.moves.filter((m) => m.t >= phase1 - 200 && m.t < phase1 + 3000);
        console.error(
          `${label}: moves from ${phase1 - 200} ms to ${phase1 + 3000} ms: ${around
            .map((m) => `${m.t}:${m.limit}${m.reason[0]}`)
            .join(' ')}`,
        );
        writeFileSync(
          csv.replace(/\.csv$/, '-moves.csv'),
          `t_ms,limit,reason\n${v.moves.map((m) => `${m.t},${m.limit},${m.reason}`).join('\n')}\n`,
        );
      }
      console.error(
        `${label}: successes > 1.25x / 1.5x base latency per phase: ${v.slow
          .map((x) => `${x.over125} / ${x.over150}`)
          .join(', ')}`,
      );
      console.error(`${label}: done (${rows.length} rows)`);
    } finally {
      child.kill();
    }
  }
  console.log(
    markdownTable(
      [
        'contender',
        'phase',
        'req/s',
        'p99 ms',
        'p50 ms',
        '503s',
        'settled req/s',
        'settled p99 ms',
        'CPU ms client / server',
        'loop delay p99 ms client / server',
      ],
      rows,
    ),
  );
  for (const p of plots) console.log(`\n\`\`\`\n${p}\n\`\`\``);
  writeFileSync(csv, `${seriesRows.join('\n')}\n`);
  console.log(`\nseries: ${csv}`);
}
