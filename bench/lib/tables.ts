// Markdown tables for RESULTS.md: the generic one, and the comparison table most scenarios use
// (each case once per server, with ratios to the baseline and, for the wrk cross-check, to the probe).
import { ms, num, percent, ratio } from './format.js';
import type { Headline, Row, ScenarioResult } from './scenario.js';
import type { TrialResult } from './trial.js';

export function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  // Right-align the columns whose cells are all figures.
  const figure = /^(-|[-\d.,]+\*?(x| ms|%)?|[\d,]+ → [\d,]+)?$/;
  const numeric = head.map((_, i) => rows.some((r) => /^\d/.test(r[i] ?? '')) && rows.every((r) => figure.test(r[i] ?? '')));
  return [line(head), line(numeric.map((n) => (n ? '---:' : '---'))), ...rows.map(line)].join('\n');
}

/** The first trial of a scenario whose params include all of `match`. */
export function find(s: ScenarioResult | undefined, match: Record<string, string | number>): TrialResult | undefined {
  return s?.rows.find((r) => Object.entries(match).every(([k, v]) => r.params[k] === v))?.result;
}

/** Rows grouped by their params other than `server`, in first-seen order. */
function groups(s: ScenarioResult): { key: string; rows: Row[] }[] {
  const out: { key: string; rows: Row[] }[] = [];
  for (const row of s.rows) {
    const key = Object.entries(row.params)
      .filter(([k]) => k !== 'server')
      .map(([k, v]) => (k === 'rate' ? `${num(Number(v))} req/s` : k === 'phase' || k === 'case' ? String(v) : `${k} ${String(v)}`))
      .join(', ');
    let g = out.find((x) => x.key === key);
    if (!g) out.push((g = { key, rows: [] }));
    g.rows.push(row);
  }
  return out;
}

function checksCell(r: TrialResult): string {
  const c = r.checks;
  const parts: string[] = [];
  if ('exact' in c) parts.push(`${c.exact ? 'exact' : '**NOT EXACT**'}: ${num(Number(c.finalValue))} / ${num(Number(c.expected))}`);
  if ('held' in c) parts.push(c.held ? 'held' : 'not held');
  return parts.join('; ');
}

/** A load generator using about a whole core is likely measuring its own ceiling. */
const SATURATED = 0.9;

/** The load generator's cores, starred when it was saturated (see saturationNote). */
export const loadgenCell = (r: TrialResult): string => num(r.generatorCores, 2) + (r.generatorCores >= SATURATED ? '*' : '');

export function saturationNote(s: ScenarioResult): string {
  return s.rows.some((r) => r.result.generatorCores >= SATURATED)
    ? '\n\n\\* The load generator used about a whole core: that figure may be its own ceiling rather than the server\'s.'
    : '';
}

export function compareTable(s: ScenarioResult): string {
  const hasChecks = s.rows.some((r) => Object.keys(r.result.checks).length > 0);
  const paced = s.rows.some((r) => r.result.serviceLatencyMs !== undefined);
  const probed = s.rows.some((r) => r.params.server === 'probe');
  const head = ['case', 'server', 'req/s', 'ours/baseline', ...(probed ? ['ours/probe'] : []), 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', '2xx', 'non-2xx', 'errors', 'BUSY retries', 'BUSY failures', 'CPU server', 'server us/req', 'CPU loadgen'];
  if (paced) head.splice(8, 0, 'p50 ms from send', 'p99 ms from send');
  if (hasChecks) head.push('check');
  const rows: string[][] = [];
  for (const g of groups(s)) {
    const base = g.rows.find((r) => r.params.server === 'baseline')?.result;
    const probe = g.rows.find((r) => r.params.server === 'probe')?.result;
    for (const row of g.rows) {
      const r = row.result;
      const cells = [
        g.key || '-',
        String(row.params.server),
        num(r.rps),
        row.params.server === 'ours' ? ratio(r.rps, base?.rps) : '',
        ...(probed ? [row.params.server === 'ours' ? percent(r.rps, probe?.rps) : ''] : []),
        ms(r.latencyMs.p50),
        ms(r.latencyMs.p90),
        ms(r.latencyMs.p99),
        ms(r.latencyMs.max),
        ...(paced ? [ms(r.serviceLatencyMs?.p50 ?? NaN), ms(r.serviceLatencyMs?.p99 ?? NaN)] : []),
        num(r.ok2xx),
        num(r.non2xx),
        num(r.errors),
        `${num(r.busyRetries.before)} → ${num(r.busyRetries.after)}`,
        row.params.server === 'baseline' ? num(r.busyErrors.after - r.busyErrors.before) : '-',
        num(r.serverCores, 2),
        num((1e6 * r.serverCores) / r.rps, 1),
        loadgenCell(r),
      ];
      if (hasChecks) cells.push(checksCell(r));
      rows.push(cells);
    }
  }
  return table(head, rows) + saturationNote(s);
}

/** A headline row comparing ours and the baseline on the trials matching `match` (none if neither ran). */
export function headlinePair(
  label: string,
  s: ScenarioResult,
  match: Record<string, string | number>,
  unit: Headline['unit'] = 'req/s',
  pick = (r: TrialResult) => r.rps,
): Headline[] {
  const o = find(s, { ...match, server: 'ours' });
  const b = find(s, { ...match, server: 'baseline' });
  return o || b ? [{ label, ours: o && pick(o), baseline: b && pick(b), unit }] : [];
}
