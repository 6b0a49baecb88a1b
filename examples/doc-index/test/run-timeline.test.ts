import { afterEach, describe, expect, it, vi } from 'vitest';
import { RunTimeline, type StageSample } from '../src/run-timeline.js';

afterEach(() => {
  vi.useRealTimers();
});

function fakeStats() {
  const stages: StageSample[] = [
    { name: 'extract', concurrency: 2, running: 0, queued: 0, done: 0 },
    { name: 'embed', concurrency: 4, running: 0, queued: 0, done: 0 },
  ];
  return { stages, read: () => stages.map((s) => ({ ...s })) };
}

async function* numbers(n: number) {
  for (let i = 0; i < n; i++) yield i;
}

describe('RunTimeline', () => {
  it('samples every stage on its timer: running, queued, utilization, done and the pulls', async () => {
    vi.useFakeTimers();
    let now = 0;
    const timeline = new RunTimeline({ intervalMs: 100, now: () => now });
    const stats = fakeStats();
    const it = timeline.countPulls(numbers(5))[Symbol.asyncIterator]();
    timeline.start(stats.read);
    await it.next();
    await it.next();
    Object.assign(stats.stages[0] as StageSample, { running: 2, done: 1 });
    Object.assign(stats.stages[1] as StageSample, { running: 1, queued: 3 });
    now = 100;
    vi.advanceTimersByTime(100);
    await it.next();
    Object.assign(stats.stages[0] as StageSample, { running: 1, done: 3 });
    now = 150;
    timeline.stop();
    vi.advanceTimersByTime(1000); // stopped: no more samples
    const d = timeline.data();
    expect(d.t).toEqual([100, 150]);
    expect(d.pulls).toEqual([2, 3]);
    expect(d.stages.map((s) => s.name)).toEqual(['extract', 'embed']);
    expect(d.stages[0]).toMatchObject({ running: [2, 1], utilization: [1, 0.5], done: [1, 3] });
    expect(d.stages[1]).toMatchObject({
      running: [1, 1],
      queued: [3, 3],
      utilization: [0.25, 0.25],
    });
  });

  it('keeps at most maxSamples however long the run, halving resolution evenly', () => {
    vi.useFakeTimers();
    let now = 0;
    const timeline = new RunTimeline({ intervalMs: 10, maxSamples: 8, now: () => now });
    const stats = fakeStats();
    timeline.start(stats.read);
    for (let tick = 1; tick <= 1000; tick++) {
      now = tick * 10;
      (stats.stages[0] as StageSample).done = tick;
      vi.advanceTimersByTime(10);
      expect(timeline.data().t.length).toBeLessThanOrEqual(8);
    }
    timeline.stop();
    const d = timeline.data();
    expect(d.t.length).toBeLessThanOrEqual(8);
    // Evenly spread over the whole run, and the last sample is the run's end.
    expect(d.intervalMs).toBeGreaterThanOrEqual(1_280);
    expect(d.t[0]).toBeLessThanOrEqual(d.intervalMs);
    expect(d.t.at(-1)).toBeGreaterThan(10_000 - d.intervalMs);
    expect(d.stages[0]?.done.at(-1)).toBe(1000);
    // Cumulative series stay non-decreasing through the merges.
    const done = d.stages[0]?.done ?? [];
    expect(done.every((v, i) => i === 0 || v >= (done[i - 1] as number))).toBe(true);
  });

  it('merges pairs into their mean for levels and the later value for counts', () => {
    let now = 0;
    const timeline = new RunTimeline({ maxSamples: 4, now: () => now });
    const stats = fakeStats();
    timeline.start(stats.read);
    const stage = stats.stages[0] as StageSample;
    for (const [running, done] of [
      [2, 1],
      [0, 2],
      [1, 3],
      [1, 4],
    ] as const) {
      now += 100;
      Object.assign(stage, { running, done });
      timeline.tick();
    }
    timeline.stop();
    const d = timeline.data().stages[0];
    expect(d?.running.slice(0, 2)).toEqual([1, 1]);
    expect(d?.done.slice(0, 2)).toEqual([2, 4]);
  });

  it('passes return() through to the source at once (a drain reaches it)', async () => {
    const timeline = new RunTimeline();
    let returned = false;
    const source: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: () => new Promise<IteratorResult<number>>(() => {}), // a pull that never answers
        return: async () => {
          returned = true;
          return { done: true, value: undefined };
        },
      }),
    };
    const it = timeline.countPulls(source)[Symbol.asyncIterator]();
    void it.next();
    await it.return?.();
    expect(returned).toBe(true);
    // A source without return() gets a wrapper without one (the engine checks for it).
    const plain = timeline.countPulls({
      [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }),
    });
    expect(plain[Symbol.asyncIterator]().return).toBeUndefined();
  });

  it('refuses bad options, naming them', () => {
    expect(() => new RunTimeline({ intervalMs: 0 })).toThrow(/intervalMs.*0/);
    expect(() => new RunTimeline({ maxSamples: 5 })).toThrow(/maxSamples.*5/);
  });
});
