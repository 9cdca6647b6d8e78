// The wrk cross-check: the read, write and increment cases again under wrk (-t1 -c64), against ours, the
// baseline and the bare single-thread probe (bench/probe/main.ts) whose figures the targets were set from.
// Also the helpers the throughput targets use to judge each case with either generator.
import { num, percent } from '../lib/format.js';
import type { Mode, Scenario, ScenarioResult } from '../lib/scenario.js';
import { SERVERS, trial } from '../lib/scenario.js';
import { HOT_COUNTER } from '../lib/seed.js';
import { compareTable, find, headlinePair } from '../lib/tables.js';
import type { TrialResult } from '../lib/trial.js';
import { runWrk } from '../lib/wrk.js';

export interface WrkSettings {
  durationS: number;
  writeSync: ('NORMAL' | 'FULL')[];
}

const SETTINGS: Record<Mode, WrkSettings> = {
  full: { durationS: 10, writeSync: ['FULL', 'NORMAL'] },
  quick: { durationS: 2, writeSync: ['FULL'] },
  smoke: { durationS: 1, writeSync: ['NORMAL'] },
};

export const WRK_METHOD =
  '- **Probe** (`bench/probe/main.ts`, wrk cross-check only): the bare single-thread uWS + better-sqlite3 server the targets were measured with, rebuilt: no validation, metrics, logs or threads; writes group-committed per event-loop turn on the main thread. It is this machine\'s ceiling in this session; "ours/probe" says how much of it this server keeps.';

export const wrkScenario: Scenario = {
  id: 'wrk',
  title: 'wrk cross-check',
  settings: { key: 'wrk', byMode: SETTINGS },
  async run(ctx) {
    const d = SETTINGS[ctx.settings.mode].durationS;
    const cases: { name: string; script: string; path: string; env: Record<string, string> }[] = [
      { name: 'hot-read', script: 'report.lua', path: `/counters/${HOT_COUNTER}`, env: {} },
      // The path is the script's: a random seeded id per request.
      { name: 'read by id', script: 'get-product.lua', path: '/products/1', env: {} },
      ...SETTINGS[ctx.settings.mode].writeSync.map((sync) => ({ name: `write ${sync}`, script: 'post-product.lua', path: '/products', env: { SQLITE_SYNCHRONOUS: sync } })),
      { name: 'increment FULL', script: 'post-increment.lua', path: `/counters/${HOT_COUNTER}/increment`, env: { SQLITE_SYNCHRONOUS: 'FULL' } },
    ];
    const rows: ScenarioResult['rows'] = [];
    // The bare probe runs the same cases: this machine's ceiling in this session.
    for (const c of cases)
      for (const server of [...SERVERS, 'probe'] as const) {
        const result = await trial(ctx, `wrk ${c.name} ${server}`, {
          server,
          env: c.env,
          load: { connections: 64, requests: () => [] },
          custom: async (s) => {
            if (ctx.settings.warmupS > 0) await runWrk(s.url, { connections: 64, durationS: Math.max(1, Math.round(ctx.settings.warmupS)), script: c.script, path: c.path });
            return runWrk(s.url, { connections: 64, durationS: d, script: c.script, path: c.path });
          },
        });
        rows.push({ params: { case: c.name, server }, result });
      }
    return {
      id: this.id,
      title: this.title,
      what:
        `wrk -t1 -c64 -d${d}s: GET /counters/${HOT_COUNTER}, GET /products/{random id} (bench/wrk/get-product.lua), POST /products (bench/wrk/post-product.lua) ` +
        `per SQLITE_SYNCHRONOUS and POST /counters/${HOT_COUNTER}/increment (FULL), against ours, the baseline and the bare probe (bench/probe/main.ts: one thread, ` +
        'no validation, metrics or logs, writes group-committed per event-loop turn), the ceiling the targets were set from, measured in this session',
      rows,
      summary: {},
    };
  },
  headlines: (s) => [...new Set(s.rows.map((r) => String(r.params.case)))].flatMap((c) => headlinePair(`wrk: ${c}`, s, { case: c })),
  section: (s, charts) => [compareTable(s), '', ...(charts.wrk ? [`![wrk: ours, baseline, probe](results/${charts.wrk})`, ''] : [])],
};

/** A wrk cross-check trial, if that case ran. */
export const wrkTrial = (all: ScenarioResult[], wrkCase: string, server: string): TrialResult | undefined =>
  find(all.find((s) => s.id === 'wrk'), { case: wrkCase, server });

/**
 * A throughput target is judged with each generator (the probe figures behind it came from wrk) and met if either
 * meets it: ours and the baseline under autocannon (scenario `id`) and under wrk (`wrkCase`), where they ran.
 */
export function byGenerator(all: ScenarioResult[], id: string, params: Record<string, string | number>, wrkCase: string) {
  const s = all.find((x) => x.id === id);
  return [
    { gen: 'autocannon', o: find(s, { ...params, server: 'ours' }), b: find(s, { ...params, server: 'baseline' }) },
    { gen: 'wrk', o: wrkTrial(all, wrkCase, 'ours'), b: wrkTrial(all, wrkCase, 'baseline') },
  ].filter((x) => x.o !== undefined) as { gen: string; o: TrialResult; b: TrialResult | undefined }[];
}

/** The bare probe's figure for a wrk case, and how much of it ours kept: the ceiling a target was taken from. */
export function probeCeiling(all: ScenarioResult[], wrkCase: string): string {
  const p = wrkTrial(all, wrkCase, 'probe');
  const o = wrkTrial(all, wrkCase, 'ours');
  return p ? `; bare probe (wrk): ${num(p.rps)} req/s, ours ${percent(o?.rps, p.rps)} of it` : '';
}
