// What a bench scenario is (bench/scenarios/<id>.ts, listed in bench/scenarios/index.ts), the settings every
// scenario shares, and the helpers they measure with: one trial, or the same load against ours and the baseline.
import { num } from './format.js';
import type { LoadResult, LoadSpec } from './load.js';
import type { ServerKind } from './server.js';
import { runTrial, type TrialResult, type TrialSpec } from './trial.js';
import type { Workload } from './workloads.js';

/** Three sizes: full (~10-15 min), quick (~2 min) and smoke (the harness test). */
export type Mode = 'full' | 'quick' | 'smoke';

export interface CommonSettings {
  mode: Mode;
  durationS: number;
  warmupS: number;
  /** Connections for the throughput scenarios (the bare single-thread probe the targets come from was measured with wrk -c64). */
  connections: number;
}

export const COMMON_SETTINGS: Record<Mode, CommonSettings> = {
  full: { mode: 'full', durationS: 10, warmupS: 2, connections: 64 },
  quick: { mode: 'quick', durationS: 3, warmupS: 0.5, connections: 64 },
  smoke: { mode: 'smoke', durationS: 2, warmupS: 0, connections: 16 },
};

export const SERVERS: readonly ServerKind[] = ['ours', 'baseline'];

/** One measured trial and the parameters that tell it apart within its scenario. */
export interface Row {
  params: Record<string, string | number>;
  result: TrialResult;
}

export interface ScenarioResult {
  id: string;
  title: string;
  what: string;
  rows: Row[];
  /** Scenario-level conclusions (e.g. the highest fixed rate held). */
  summary: Record<string, unknown>;
}

export interface Ctx {
  seedPath: string;
  settings: CommonSettings;
  progress(line: string): void;
}

/** A row of the RESULTS.md headline table. */
export interface Headline {
  label: string;
  ours?: number;
  baseline?: number;
  /** ratio: a dimensionless ratio, shown with two decimals and an x; usd: dollars, two decimals. */
  unit: 'req/s' | 'ms' | 'count' | 'ratio' | 'usd';
  note?: string;
}

/** A row of the RESULTS.md targets table; `met` null: the steps tried did not reach the target. */
export interface Target {
  label: string;
  measured: string;
  met: boolean | null;
}

export interface Scenario {
  id: string;
  title: string;
  /** This scenario's own settings per mode, recorded in the run's JSON under `key`. */
  settings?: { key: string; byMode: Record<Mode, unknown> };
  run(ctx: Ctx): Promise<ScenarioResult>;
  /** Its rows of the headline table (called only when it ran). */
  headlines?(s: ScenarioResult): Headline[];
  /** Its RESULTS.md section after the description: the comparison table when absent. */
  section?(s: ScenarioResult, charts: Record<string, string>): string[];
}

/** One progress line per trial. */
export function describeTrial(r: LoadResult & Partial<TrialResult>): string {
  const busy = r.busyRetries ? r.busyRetries.after - r.busyRetries.before : 0;
  return (
    `${num(r.rps).padStart(7)} req/s  p50 ${num(r.latencyMs.p50, 2)} p99 ${num(r.latencyMs.p99, 2)} max ${num(r.latencyMs.max, 1)} ms` +
    `  non2xx ${r.non2xx}  err ${r.errors}  busy +${busy}` +
    (r.targetRate ? `  (${num((100 * r.rps) / r.targetRate)}% of target)` : '') +
    (r.serverCores !== undefined ? `  cpu srv ${num(r.serverCores, 2)} gen ${num(r.generatorCores, 2)}` : '') +
    (r.startupMs !== undefined ? `  start ${num(r.startupMs / 1000, 1)} s stop ${num((r.shutdownMs ?? NaN) / 1000, 1)} s` : '')
  );
}

export async function trial(ctx: Ctx, label: string, spec: TrialSpec): Promise<TrialResult> {
  const t0 = performance.now();
  const r = await runTrial(ctx.seedPath, spec);
  ctx.progress(`${label.padEnd(40)} ${describeTrial(r)}  (${num((performance.now() - t0) / 1000, 1)} s)`);
  return r;
}

/** The warm-up before a measured load, if the mode has one. */
export const warm = (ctx: Ctx, requests: Workload, connections: number): LoadSpec | undefined =>
  ctx.settings.warmupS > 0 ? { connections, durationS: ctx.settings.warmupS, requests: requests.requests } : undefined;

/** The same workload against ours and the baseline (a factory gives each trial its own workload state). */
export async function compare(
  ctx: Ctx,
  id: string,
  workloadOrFactory: Workload | (() => Workload),
  connections: number,
  params: Record<string, string | number> = {},
  env: Record<string, string> = {},
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const server of SERVERS) {
    const workload = typeof workloadOrFactory === 'function' ? workloadOrFactory() : workloadOrFactory;
    const result = await trial(ctx, `${id} ${Object.values(params).join(' ')} ${server}`.replace(/\s+/g, ' '), {
      server,
      env,
      warmup: warm(ctx, workload, connections),
      load: { connections, durationS: ctx.settings.durationS, requests: workload.requests },
    });
    rows.push({ params: { ...params, server }, result });
  }
  return rows;
}
