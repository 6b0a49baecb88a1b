/** Formats a markdown table (pipe table), right-aligning every column but the first. */
export function markdownTable(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, col) =>
    Math.max(3, ...cells.map((row) => (row[col] ?? '').length)),
  );
  const line = (row: string[]) =>
    `| ${row.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join(' | ')} |`;
  const rule = `| ${widths.map((w, col) => (col === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(cells[0]!), rule, ...cells.slice(1).map(line)].join('\n');
}

/** Bytes as MiB with one decimal: `123.4 MiB`. */
export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** A ratio with two significant decimals: `1.23x`. */
export function ratio(value: number, base: number): string {
  return `${(value / base).toFixed(2)}x`;
}

/** Nanoseconds with no decimals above 100 and one below: `1234`, `87.5`. */
export function ns(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

/** Milliseconds as seconds with two decimals: `1.23 s`. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** Integer with thousands separators: `1,000,000`. */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}
