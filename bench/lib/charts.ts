// SVG charts from the results: Vega-Lite specs compiled to Vega and rendered headless (no browser, no canvas).
import fs from 'node:fs';
import path from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ScenarioResult } from './scenario.js';

const COLORS = { domain: ['ours', 'baseline'], range: ['#1f77b4', '#ff7f0e'] };
const BASE = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', background: 'white', config: { font: 'sans-serif' } } as const;

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

type Datum = Record<string, string | number>;

function summaryChart(scenarios: ScenarioResult[]): TopLevelSpec | null {
  const data: Datum[] = [];
  const add = (id: string, label: string, match: (p: Row['params']) => boolean) => {
    const s = scenarios.find((x) => x.id === id);
    for (const row of s?.rows ?? []) if (match(row.params)) data.push({ case: label, server: String(row.params.server), rps: Math.round(row.result.rps) });
  };
  type Row = ScenarioResult['rows'][number];
  add('hot-read', 'hot read GET /counters/c1', () => true);
  const hammers = scenarios.find((x) => x.id === 'hammer')?.rows ?? [];
  const bigPhase = hammers.at(-1)?.params.phase;
  add('hammer', `increments/s (${String(bigPhase)})`, (p) => p.phase === bigPhase);
  add('crud-mix', 'CRUD mix', () => true);
  add('max-write', 'POST /products, FULL', (p) => p.sync === 'FULL');
  add('max-write', 'POST /products, NORMAL', (p) => p.sync === 'NORMAL');
  add('max-read', 'GET /products/{id}', () => true);
  return data.length === 0 ? null : throughputBars('Throughput, ours vs baseline (autocannon, same machine)', data, COLORS, 16);
}

/** The wrk cross-check: ours, the baseline and the bare probe (this machine's ceiling in the same session). */
function wrkChart(s: ScenarioResult | undefined): TopLevelSpec | null {
  if (!s || s.rows.length === 0) return null;
  const colors = { domain: ['ours', 'baseline', 'probe'], range: [...COLORS.range, '#7f7f7f'] };
  const data = s.rows.map((r) => ({ case: String(r.params.case), server: String(r.params.server), rps: Math.round(r.result.rps) }));
  return throughputBars('wrk -c64: ours, baseline and the bare probe (same machine, same session)', data, colors, 14);
}

/** Horizontal bars of req/s: one group per case, one bar per server, each labelled with its figure. */
function throughputBars(title: string, data: Datum[], colors: { domain: string[]; range: string[] }, step: number): TopLevelSpec {
  return {
    ...BASE,
    title,
    data: { values: data },
    width: 520,
    height: { step },
    encoding: {
      y: { field: 'case', type: 'nominal', title: null, sort: null, axis: { labelLimit: 320 } },
      yOffset: { field: 'server', sort: colors.domain },
      x: { field: 'rps', type: 'quantitative', title: 'requests per second' },
      color: { field: 'server', scale: colors, title: null },
    },
    layer: [{ mark: 'bar' }, { mark: { type: 'text', align: 'left', dx: 3, fontSize: 10 }, encoding: { text: { field: 'rps', format: ',' } } }],
  } as TopLevelSpec;
}

function fixedRateChart(s: ScenarioResult | undefined): TopLevelSpec | null {
  if (!s || s.rows.length === 0) return null;
  const data = s.rows.map((r) => ({
    rate: Number(r.params.rate),
    server: String(r.params.server),
    p99: Math.max(0.01, r.result.latencyMs.p99),
    held: r.result.checks.held ? 'held' : 'not held',
  }));
  return {
    ...BASE,
    title: 'Fixed-rate CRUD mix: p99 latency per target rate',
    width: 480,
    height: 280,
    layer: [
      {
        data: { values: data },
        mark: { type: 'line', point: { filled: true, size: 60 } },
        encoding: {
          x: { field: 'rate', type: 'quantitative', title: 'target rate (req/s)', axis: { format: '~s' }, scale: { zero: true } },
          y: { field: 'p99', type: 'quantitative', scale: { type: 'log' }, title: 'p99 latency (ms, log)' },
          color: { field: 'server', scale: COLORS, title: null },
          shape: { field: 'held', title: null },
        },
      },
      { data: { values: [{ y: 50 }] }, mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' }, encoding: { y: { field: 'y', type: 'quantitative' } } },
    ],
  } as TopLevelSpec;
}

function sweepChart(s: ScenarioResult | undefined, metric: 'rps' | 'p99'): TopLevelSpec | null {
  if (!s || s.rows.length === 0) return null;
  const data = s.rows.map((r) => ({
    sync: String(r.params.sync),
    batchMax: Number(r.params.batchMax),
    wait: `${String(r.params.waitMs)} ms`,
    value: metric === 'rps' ? Math.round(r.result.rps) : r.result.latencyMs.p99,
  }));
  return {
    ...BASE,
    title: metric === 'rps' ? 'POST /products throughput by WRITE_BATCH_MAX and WRITE_BATCH_WAIT_MS' : 'POST /products p99 latency (ms)',
    data: { values: data },
    facet: { column: { field: 'sync', title: 'SQLITE_SYNCHRONOUS', sort: ['NORMAL', 'FULL'] } },
    spec: {
      width: 240,
      height: 220,
      mark: 'bar',
      encoding: {
        x: { field: 'batchMax', type: 'ordinal', title: 'WRITE_BATCH_MAX', axis: { labelAngle: 0 } },
        xOffset: { field: 'wait' },
        y: { field: 'value', type: 'quantitative', title: metric === 'rps' ? 'requests per second' : 'p99 (ms)' },
        color: { field: 'wait', title: 'WRITE_BATCH_WAIT_MS' },
      },
    },
  } as TopLevelSpec;
}

function readersChart(s: ScenarioResult | undefined): TopLevelSpec | null {
  if (!s || s.rows.length === 0) return null;
  const data = s.rows.map((r) => ({ workload: String(r.params.workload), readers: String(r.params.readers), rps: Math.round(r.result.rps) }));
  return {
    ...BASE,
    title: 'Reads per second by READERS (0 = inline on the main thread)',
    data: { values: data },
    width: 360,
    height: 220,
    mark: 'bar',
    encoding: {
      x: { field: 'workload', type: 'nominal', title: null, axis: { labelAngle: 0 } },
      xOffset: { field: 'readers', sort: null },
      y: { field: 'rps', type: 'quantitative', title: 'requests per second' },
      color: { field: 'readers', title: 'READERS', sort: null },
    },
  } as TopLevelSpec;
}

/** Writes the charts as `<prefix>-<name>.svg` in `dir`; returns name -> file name. */
export async function writeCharts(scenarios: ScenarioResult[], dir: string, prefix: string): Promise<Record<string, string>> {
  const byId = (id: string) => scenarios.find((s) => s.id === id);
  const specs: [string, TopLevelSpec | null][] = [
    ['summary', summaryChart(scenarios)],
    ['fixed-rate', fixedRateChart(byId('fixed-rate'))],
    ['batch-sweep', sweepChart(byId('batch-sweep'), 'rps')],
    ['batch-sweep-p99', sweepChart(byId('batch-sweep'), 'p99')],
    ['readers', readersChart(byId('readers'))],
    ['wrk', wrkChart(byId('wrk'))],
  ];
  const out: Record<string, string> = {};
  for (const [name, spec] of specs) {
    if (!spec) continue;
    const file = `${prefix}-${name}.svg`;
    fs.writeFileSync(path.join(dir, file), await renderSvg(spec));
    out[name] = file;
  }
  return out;
}
