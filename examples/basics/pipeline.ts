// pipeline: per-stage pools with bounded buffers; a slow stage pushes back on the source.
import { pipeline } from 'sluice';

export async function main() {
  const docs = Array.from({ length: 40 }, (_, i) => `doc-${i}`);
  const results = pipeline(docs)
    .stage(
      'parse',
      async (name: string) => {
        if (name === 'doc-13') throw new Error('corrupt document');
        return { name, words: name.length * 100 };
      },
      { concurrency: 2 },
    )
    .stage(
      'embed',
      async (doc: { name: string; words: number }) => {
        await new Promise((resolve) => setTimeout(resolve, 5)); // the slow, network-bound stage
        return { ...doc, vector: [doc.words / 1000] };
      },
      { concurrency: 4, buffer: 4 },
    )
    .stage('store', async (doc: { name: string; vector: number[] }) => doc.name, {
      concurrency: 1,
    });
  const failures: string[] = [];
  let stored = 0;
  for await (const r of results) {
    if (r.ok) stored++;
    else failures.push(`${r.job} failed in ${r.stage}: ${r.error.message}`);
  }
  const stats = results.stats();
  const bottleneck = stats.reduce((a, b) => (b.utilization > a.utilization ? b : a)).name;
  return { stored, failures, bottleneck };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await main());
