// Counter hammer: increments of one counter as fast as possible, an exact number per connection; the final
// value must equal the total (no lost or doubled write), against ours and the baseline.
import { num } from '../lib/format.js';
import type { Headline, Mode, Row, Scenario, ScenarioResult, Target } from '../lib/scenario.js';
import { SERVERS, trial } from '../lib/scenario.js';
import { HOT_COUNTER } from '../lib/seed.js';
import { find } from '../lib/tables.js';
import { increment } from '../lib/workloads.js';
import { probeCeiling, wrkTrial } from './wrk.js';

export type HammerSettings = { connections: number; perConnection: number }[];

const SETTINGS: Record<Mode, HammerSettings> = {
  full: [
    { connections: 20, perConnection: 50 },
    { connections: 100, perConnection: 1000 },
  ],
  quick: [
    { connections: 20, perConnection: 50 },
    { connections: 100, perConnection: 100 },
  ],
  smoke: [{ connections: 5, perConnection: 20 }],
};

/** The target: increments per second in the largest phase, with the final value exact. */
const TARGET_RPS = 45_000;

async function counterValue(base: string, name: string): Promise<number> {
  const r = await fetch(`${base}/counters/${name}`);
  return r.status === 200 ? ((await r.json()) as { value: number }).value : NaN;
}

export const hammerScenario: Scenario = {
  id: 'hammer',
  title: 'Counter hammer',
  settings: { key: 'hammer', byMode: SETTINGS },
  async run(ctx) {
    const rows: Row[] = [];
    for (const { connections, perConnection } of SETTINGS[ctx.settings.mode]) {
      const amount = connections * perConnection;
      for (const server of SERVERS) {
        const warmCounter = increment('warmup');
        const result = await trial(ctx, `hammer ${connections}x${perConnection} ${server}`, {
          server,
          warmup: ctx.settings.warmupS > 0 ? { connections, durationS: ctx.settings.warmupS, requests: warmCounter.requests } : undefined,
          load: { connections, amount, requests: increment(HOT_COUNTER).requests },
          async check(s, load) {
            const finalValue = await counterValue(s.url, HOT_COUNTER);
            return { expected: amount, finalValue, exact: finalValue === amount && load.ok2xx === amount };
          },
        });
        if (result.checks.exact !== true) ctx.progress(`  !! ${server}: counter ${String(result.checks.finalValue)}, expected ${amount}`);
        rows.push({ params: { phase: `${connections} x ${perConnection}`, server }, result });
      }
    }
    return {
      id: this.id,
      title: this.title,
      what: `POST /counters/${HOT_COUNTER}/increment {"by":1} as fast as possible, an exact number per connection; the final value must equal the total`,
      rows,
      summary: {},
    };
  },
  headlines(s) {
    const out: Headline[] = [];
    for (const phase of new Set(s.rows.map((r) => String(r.params.phase)))) {
      const o = find(s, { phase, server: 'ours' });
      const b = find(s, { phase, server: 'baseline' });
      out.push({
        label: `Counter hammer ${phase}: increments/s`,
        ours: o?.rps,
        baseline: b?.rps,
        unit: 'req/s',
        note: `exact: ours ${o?.checks.exact ? 'yes' : 'NO'}, baseline ${b?.checks.exact ? 'yes' : 'NO'}`,
      });
    }
    return out;
  },
};

export function hammerTargets(all: ScenarioResult[]): Target[] {
  const hammer = all.find((s) => s.id === 'hammer');
  const ho = hammer?.rows.filter((r) => r.params.server === 'ours').at(-1)?.result;
  if (!ho) return [];
  const wrk = wrkTrial(all, 'increment FULL', 'ours');
  return [
    {
      label: `Counter hammer >= ${TARGET_RPS / 1000}k increments/s, exact`,
      measured:
        `${num(ho.rps)} increments/s, ${ho.checks.exact ? 'exact' : 'NOT exact'} (${String(hammer!.rows.at(-1)!.params.phase)})` +
        (wrk ? `; wrk -c64: ${num(wrk.rps)} increments/s` : '') +
        probeCeiling(all, 'increment FULL'),
      met: ho.rps >= TARGET_RPS && ho.checks.exact === true,
    },
  ];
}
