// How figures are written in progress lines and in RESULTS.md (en-US digit grouping; '-' for no figure).

/** `d` decimals exactly; '-' for undefined, NaN or infinite. */
export const num = (n: number | undefined, d = 0): string =>
  n === undefined || !Number.isFinite(n) ? '-' : n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/** Milliseconds with fewer decimals the larger they are. */
export const ms = (n: number): string => (n >= 100 ? num(n, 0) : n >= 10 ? num(n, 1) : num(n, 2));

const comparable = (a: number | undefined, b: number | undefined): [number, number] | null =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? null : [a, b];

/** "3.25x" (whole numbers from 10x up). */
export function ratio(a: number | undefined, b: number | undefined): string {
  const ab = comparable(a, b);
  if (!ab) return '-';
  const r = ab[0] / ab[1];
  return `${num(r, r >= 10 ? 0 : 2)}x`;
}

export function percent(a: number | undefined, b: number | undefined): string {
  const ab = comparable(a, b);
  return ab ? `${num((100 * ab[0]) / ab[1])}%` : '-';
}
