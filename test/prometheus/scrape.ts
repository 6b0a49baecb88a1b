/// <reference path="./parse-prometheus-text-format.d.ts" />
/**
 * Reads an exposition with parse-prometheus-text-format. That parser merges every label set of a
 * histogram family into one sample (its known limitation), so {@link histogram} hands it one
 * pool's lines of that family at a time; the parsing itself is the library's.
 */
import parse, { type MetricFamily } from 'parse-prometheus-text-format';

export interface Scrape {
  families: Map<string, MetricFamily>;
  /** A counter's or gauge's value for exactly these labels (undefined: no such sample). */
  value(name: string, labels: Record<string, string>): number | undefined;
  /** A histogram's count and buckets for one pool. */
  histogram(
    name: string,
    pool: string,
  ): { count: number; buckets: Record<string, number> } | undefined;
}

export function scrape(text: string): Scrape {
  const families = new Map(parse(text).map((f) => [f.name, f]));
  return {
    families,
    value(name, labels) {
      const sample = families.get(name)?.metrics.find((m) => sameLabels(m.labels ?? {}, labels));
      return sample?.value === undefined ? undefined : Number(sample.value);
    },
    histogram(name, pool) {
      const lines = text.split('\n');
      const own = lines.filter(
        (line) =>
          line === `# TYPE ${name} histogram` ||
          ([`${name}_bucket{`, `${name}_sum{`, `${name}_count{`].some((p) => line.startsWith(p)) &&
            line.includes(`pool="${pool}"`)),
      );
      if (own.length < 2) return undefined;
      const [family] = parse(`${own.join('\n')}\n`);
      const sample = family?.metrics[0];
      if (sample?.buckets === undefined) return undefined;
      const buckets = Object.fromEntries(
        Object.entries(sample.buckets).map(([le, n]) => [le, Number(n)]),
      );
      // Its labelled _count/_sum are dropped with the labels: the +Inf bucket is the count.
      return { count: buckets['+Inf'] ?? 0, buckets };
    },
  };
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
