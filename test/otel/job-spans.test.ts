/**
 * sluice/otel's job spans for every kind (Pool, ThreadPool, runPool, pipeline stages), active
 * while the worker runs; and its metrics, close() and options.
 */
import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { DataPoint } from '@opentelemetry/sdk-metrics';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Pool, pipeline, runPool, ThreadPool, TimeoutError } from '../../src/index.js';
import { instrumentSluice, type SluiceInstrumentation } from '../../src/otel/index.js';
import { parentOf, setUpSdk } from '../fixtures/otel/sdk.js';

const sdk = setUpSdk();
const tracer = trace.getTracer('test');
let otel: SluiceInstrumentation | undefined;
beforeEach(() => {
  sdk.exporter.reset();
  otel = instrumentSluice();
});
afterEach(() => otel?.close());

/** A promise and its resolve function. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Runs `fn` in a new active span named `name`, ending it after. */
function inSpan<T>(name: string, fn: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, async (span: Span) => {
    try {
      return await fn();
    } finally {
      span.end();
    }
  });
}

const jobSpans = (pool: string) =>
  sdk.spans().filter((s) => s.attributes['sluice.pool.name'] === pool);

describe('job spans', () => {
  it('a span started inside a Pool worker is a child of its job span, itself a child of the submitter', async () => {
    const pool = new Pool(
      async (n: number) => {
        await tracer.startActiveSpan('inner', async (span: Span) => {
          await new Promise((r) => setImmediate(r));
          span.end();
        });
        return n * 2;
      },
      { concurrency: 2, name: 'doubler' },
    );
    await inSpan('request', () => pool.run(21));
    await pool.drain();
    const [job] = jobSpans('doubler');
    const inner = sdk.span('inner');
    const request = sdk.span('request');
    expect(job?.name).toBe('sluice.job doubler');
    expect(job?.kind).toBe(SpanKind.INTERNAL);
    expect(job?.attributes).toMatchObject({
      'sluice.pool.name': 'doubler',
      'sluice.pool.kind': 'pool',
      'sluice.job.index': 0,
      'sluice.job.attempt': 1,
      'sluice.job.outcome': 'succeeded',
    });
    expect(parentOf(inner)).toBe(job?.spanContext().spanId);
    expect(parentOf(job!)).toBe(request.spanContext().spanId);
    expect(inner.spanContext().traceId).toBe(request.spanContext().traceId);
  });

  it('a queued job is the child of its own submitter, not of the job that freed its slot', async () => {
    const gate = deferred();
    const pool = new Pool(
      async (name: string) => {
        if (name === 'a') await gate.promise;
        return name;
      },
      { concurrency: 1, name: 'one-slot' },
    );
    const a = inSpan('submit-a', () => pool.run('a'));
    const b = inSpan('submit-b', () => pool.run('b')); // queued behind a
    gate.resolve();
    await Promise.all([a, b]);
    await pool.drain();
    const spans = jobSpans('one-slot');
    const byIndex = (i: number) => spans.find((s) => s.attributes['sluice.job.index'] === i);
    expect(parentOf(byIndex(0)!)).toBe(sdk.span('submit-a').spanContext().spanId);
    expect(parentOf(byIndex(1)!)).toBe(sdk.span('submit-b').spanContext().spanId);
  });

  it('failed and timed-out jobs carry their outcome, the exception and status ERROR; each retry is a span', async () => {
    let calls = 0;
    const pool = new Pool(
      async (kind: string, { signal }) => {
        if (kind === 'slow') {
          await new Promise((_, reject) =>
            signal.addEventListener('abort', () => reject(signal.reason)),
          );
        }
        calls++;
        if (kind === 'flaky' && calls === 1) throw new Error('first try fails');
        if (kind === 'bad') throw Object.assign(new Error('bad job'), { code: 'E_BAD' });
        return kind;
      },
      { concurrency: 3, timeout: 50, retry: { attempts: 2, backoff: () => 0 }, name: 'mixed' },
    );
    const flaky = await pool.submit('flaky');
    await flaky.result;
    const results = await Promise.all([pool.submit('bad'), pool.submit('slow')]);
    await Promise.all(results.map((t) => t.result));
    await pool.drain();
    const spans = jobSpans('mixed');
    const of = (index: number) =>
      spans
        .filter((s) => s.attributes['sluice.job.index'] === index)
        .map((s) => [
          s.attributes['sluice.job.attempt'],
          s.attributes['sluice.job.outcome'],
          s.status.code,
        ]);
    expect(of(0)).toEqual([
      [1, 'failed', SpanStatusCode.ERROR],
      [2, 'succeeded', SpanStatusCode.UNSET],
    ]);
    expect(of(1)).toEqual([
      [1, 'failed', SpanStatusCode.ERROR],
      [2, 'failed', SpanStatusCode.ERROR],
    ]);
    expect(of(2).map((a) => a[1])).toEqual(['timed_out', 'timed_out']);
    const bad = spans.find((s) => s.attributes['sluice.job.index'] === 1);
    expect(bad?.attributes['error.type']).toBe('E_BAD');
    expect(bad?.status.message).toBe('bad job');
    expect(bad?.events[0]?.attributes?.['exception.message']).toBe('bad job');
    const slow = spans.find((s) => s.attributes['sluice.job.index'] === 2);
    expect(slow?.events[0]?.attributes?.['exception.type']).toBe(new TimeoutError(50).code);
  });

  it('runPool and pipeline stages: a span per job under the iterating context, stage spans named after the stage', async () => {
    await inSpan('batch', async () => {
      for await (const r of runPool([1, 2, 3], async (n) => n, {
        concurrency: 2,
        name: 'squares',
      })) {
        expect(r.ok).toBe(true);
      }
      const p = pipeline([1, 2])
        .stage(
          'parse',
          async (n: number) => {
            await tracer.startActiveSpan('parse-inner', async (s: Span) => s.end());
            return n + 1;
          },
          { concurrency: 1 },
        )
        .stage('store', async (n: number) => n, { concurrency: 1 });
      for await (const r of p) expect(r.ok).toBe(true);
    });
    const batch = sdk.span('batch').spanContext().spanId;
    const squares = jobSpans('squares');
    expect(squares.map((s) => s.attributes['sluice.pool.kind'])).toEqual([
      'run-pool',
      'run-pool',
      'run-pool',
    ]);
    expect(squares.every((s) => parentOf(s) === batch)).toBe(true);
    const parse = jobSpans('parse');
    expect(parse.map((s) => [s.name, s.attributes['sluice.pool.kind']])).toEqual([
      ['sluice.job parse', 'stage'],
      ['sluice.job parse', 'stage'],
    ]);
    expect(jobSpans('store')).toHaveLength(2);
    const parseIds = parse.map((s) => s.spanContext().spanId);
    const inner = sdk.spans().filter((s) => s.name === 'parse-inner');
    expect(inner.map((s) => parseIds.includes(parentOf(s) ?? ''))).toEqual([true, true]);
  });

  it('ThreadPool: a span per job, kind thread-pool, child of the submitter', async () => {
    const threads = new ThreadPool<number, number>(
      new URL('../fixtures/threads/double.ts', import.meta.url),
      { threads: 1, name: 'doublers' },
    );
    try {
      expect(await inSpan('submit', () => threads.run(4))).toBe(8);
    } finally {
      await threads.drain();
    }
    const [job] = jobSpans('doublers');
    expect(job?.attributes).toMatchObject({
      'sluice.pool.kind': 'thread-pool',
      'sluice.job.outcome': 'succeeded',
    });
    expect(parentOf(job!)).toBe(sdk.span('submit').spanContext().spanId);
  });

  it('without a span around submit, a job span is a root and the worker sees it as active', async () => {
    const seen: (string | undefined)[] = [];
    const pool = new Pool(
      () => {
        seen.push(trace.getSpan(context.active())?.spanContext().spanId);
      },
      { concurrency: 1, name: 'bare' },
    );
    await pool.run(undefined);
    await pool.drain();
    const [job] = jobSpans('bare');
    expect(job && parentOf(job)).toBeUndefined();
    expect(seen).toEqual([job?.spanContext().spanId]);
  });

  it('after close() no more spans are made and workers run without a job span', async () => {
    otel?.close();
    otel?.close(); // idempotent
    const seen: unknown[] = [];
    const pool = new Pool(() => seen.push(trace.getSpan(context.active())), {
      concurrency: 1,
      name: 'after-close',
    });
    await pool.run(undefined);
    await pool.drain();
    expect(jobSpans('after-close')).toEqual([]);
    expect(seen).toEqual([undefined]);
  });
});

describe('metrics', () => {
  it('counts jobs by outcome, accepted and retries, and records wait and run seconds per pool', async () => {
    const failedOnce = new Set<number>();
    const pool = new Pool(
      async (n: number) => {
        if (n === 1 && !failedOnce.has(n)) {
          failedOnce.add(n);
          throw new Error('retry me');
        }
        if (n === 2) throw new Error('always');
        return n;
      },
      { concurrency: 1, retry: { attempts: 2, backoff: () => 0 }, name: 'metered' },
    );
    const tasks = [await pool.submit(0), await pool.submit(1), await pool.submit(2)];
    await Promise.all(tasks.map((t) => t.result));
    await pool.drain();
    const collected = await sdk.collect();
    const all = collected.scopeMetrics
      .filter((s) => s.scope.name === 'sluice')
      .flatMap((s) => s.metrics);
    const points = (name: string) =>
      all
        .filter((m) => m.descriptor.name === name)
        .flatMap((m) => m.dataPoints as DataPoint<unknown>[])
        .filter((p) => p.attributes.pool === 'metered');
    expect(
      points('sluice.jobs')
        .map((p) => [p.attributes.outcome, p.value])
        .sort(),
    ).toEqual([
      ['failed', 1],
      ['succeeded', 2],
    ]);
    expect(points('sluice.jobs.accepted').map((p) => p.value)).toEqual([3]);
    expect(points('sluice.job.retries').map((p) => p.value)).toEqual([2]);
    const wait = points('sluice.job.wait')[0]?.value as { count: number } | undefined;
    const run = points('sluice.job.run')[0]?.value as { count: number; sum: number } | undefined;
    expect(wait?.count).toBe(3); // first attempts only
    expect(run?.count).toBe(5); // every attempt
    expect(all.find((m) => m.descriptor.name === 'sluice.job.run')?.descriptor.unit).toBe('s');
  });
});

describe('options', () => {
  it('refuses options of the wrong type, naming the option', () => {
    expect(() => instrumentSluice({ traces: 'yes' as never })).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_OPTION',
        message: expect.stringMatching(/traces/),
      }),
    );
    expect(() => instrumentSluice({ tracerProvider: {} as never })).toThrow(/tracerProvider/);
    expect(() => instrumentSluice({ propagator: { inject() {} } as never })).toThrow(/extract/);
  });

  it('traces: false makes no spans; metrics: false leaves the meter alone', async () => {
    otel?.close();
    otel = instrumentSluice({ traces: false, metrics: false });
    const pool = new Pool((n: number) => n, { concurrency: 1, name: 'quiet' });
    await pool.run(1);
    await pool.drain();
    expect(jobSpans('quiet')).toEqual([]);
  });
});
