/*
 * Plain-text tables for the benchmark output: a header, a rule, right-aligned
 * numbers, left-aligned text.
 */

/** Formats rows (first row = header) as an aligned text table. */
export function table(rows: (string | number)[][]): string {
  const cells = rows.map((row) => row.map((cell) => String(cell)));
  const widths: number[] = [];
  for (const row of cells) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const numeric = (i: number) => cells.slice(1).every((row) => row[i] === undefined || /^[-+]?[0-9.,]+( ?[a-z%/]+)?$|^-$/.test(row[i]));
  const right = widths.map((_, i) => numeric(i));
  const line = (row: string[]) => row.map((cell, i) => (right[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join("  ").trimEnd();
  const out = [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  ")];
  for (const row of cells.slice(1)) out.push(line(row));
  return out.map((l) => `  ${l}`).join("\n");
}

/** The median of a non-empty list. */
export function median(values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The p-th percentile (0..100), nearest rank. */
export function percentile(values: number[], p: number): number {
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Megabytes with one decimal. */
export function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
