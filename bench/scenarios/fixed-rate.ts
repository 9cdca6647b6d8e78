// Fixed rate: the CRUD mix on an open-loop schedule at rising fixed rates until a step is not held, then a
// bisection between the highest rate held and the first not held; ours and the baseline each get their own ladder.
import { ms, num } from '../lib/format.js';
import type { Headline, Mode, Row, Scenario, ScenarioResult, Target } from '../lib/scenario.js';
import { SERVERS, trial } from '../lib/scenario.js';
import { compareTable, headlinePair } from '../lib/tables.js';
import type { TrialResult } from '../lib/trial.js';
import { makeCrudMix } from '../lib/workloads.js';

export interface FixedRateSettings {
  firstRate: number;
  firstS: number;
  /**
   * Warm-up before the first step (the target's), at its rate, when it differs from the suite's: 10 s in a full run,
   * as the CPU scenario, so its p99 is the steady state's and not V8 still compiling the mix's five routes (with the
   * suite's 2 s: p99.9 6.8-10.2 ms against 3.8-4.5 in back-to-back runs; bench/ANALYSIS.md). The later steps (each a
   * fresh server) keep the suite's warm-up: they find the highest rate held, where 2 s at that rate is already tens
   * of thousands of requests.
   */
  firstWarmupS?: number;
  steps: number[];
  stepS: number;
  /** A step is held with p99 (from when each request was due) at most this, zero errors and >= 97% of the rate. */
  p99LimitMs: number;
  /**
   * After the first step not held, that many bisection steps (to 500 req/s) between it and the last held rate
   * (or 0), so "highest held" is not just the last step of a coarse ladder.
   */
  refine: number;
}

const SETTINGS: Record<Mode, FixedRateSettings> = {
  full: { firstRate: 5000, firstS: 30, steps: [10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000], stepS: 10, p99LimitMs: 50, refine: 2, firstWarmupS: 10 },
  quick: { firstRate: 5000, firstS: 3, steps: [10_000], stepS: 3, p99LimitMs: 50, refine: 0 },
  smoke: { firstRate: 500, firstS: 1, steps: [], stepS: 1, p99LimitMs: 50, refine: 0 },
};

/** The targets: at 5,000 req/s, p99 within 5 ms and no failures; and a highest rate held of at least 35k req/s. */
const TARGET = { rate: 5000, p99Ms: 5, highestHeld: 35_000 };

export const FIXED_RATE_METHOD =
  '- **Fixed rate**: autocannon\'s `overallRate` lets each connection send its whole per-second budget in a burst at the start of every second; the harness instead follows an open-loop schedule (request k due at start + k/rate, released by a 1 ms timer, like wrk2) and counts latency from when each request was due, so a stall cannot hide behind requests never sent (coordinated omission); the 1 ms timer adds up to ~1 ms to these latencies. "from send" columns are the plain service latencies. A step is *held* when it has zero errors and non-2xx, p99 (from due) <= 50 ms and the achieved rate is at least 97% of the target.';

export const fixedRateScenario: Scenario = {
  id: 'fixed-rate',
  title: 'Fixed rate, CRUD mix',
  settings: { key: 'fixedRate', byMode: SETTINGS },
  async run(ctx) {
    const fr = SETTINGS[ctx.settings.mode];
    const firstWarmupS = fr.firstWarmupS ?? ctx.settings.warmupS;
    const rows: Row[] = [];
    const summary: Record<string, unknown> = {};
    const held = (r: TrialResult) =>
      r.errors === 0 && r.non2xx === 0 && r.latencyMs.p99 <= fr.p99LimitMs && r.rps >= 0.97 * (r.targetRate ?? 0);
    for (const server of SERVERS) {
      const step = async (rate: number, durationS: number, warmupS = ctx.settings.warmupS): Promise<boolean> => {
        // Enough connections that a slow response does not hold the schedule up: 20 ms per connection.
        const connections = Math.min(1000, Math.max(100, Math.ceil(rate / 50)));
        const crudMix = makeCrudMix();
        const result = await trial(ctx, `fixed-rate ${rate}/s ${server}`, {
          server,
          warmup: warmupS > 0 ? { connections, durationS: warmupS, rate, requests: crudMix.requests } : undefined,
          load: { connections, durationS, rate, requests: crudMix.requests },
        });
        const ok = held(result);
        result.checks.held = ok;
        rows.push({ params: { rate, server }, result });
        return ok;
      };
      let best = 0;
      let failedAt: number | null = null;
      const rates = [fr.firstRate, ...fr.steps];
      for (let i = 0; i < rates.length; i++) {
        if (!(await step(rates[i]!, i === 0 ? fr.firstS : fr.stepS, i === 0 ? firstWarmupS : undefined))) {
          failedAt = rates[i]!;
          break;
        }
        best = rates[i]!;
      }
      // Bisect between the highest rate held and the first one not held.
      for (let i = 0; i < fr.refine && failedAt !== null; i++) {
        const mid = Math.round((best + failedAt) / 2 / 500) * 500;
        if (mid <= best || mid >= failedAt) break;
        if (await step(mid, fr.stepS)) best = mid;
        else failedAt = mid;
      }
      summary[`highestHeld_${server}`] = best;
    }
    return {
      id: this.id,
      title: this.title,
      what:
        `CRUD mix on an open-loop schedule at a fixed overall rate (max(100, rate/50) connections, at most 1,000; latency counted from when each request was due); ${fr.firstRate.toLocaleString('en-US')} req/s for ${fr.firstS} s after a warm-up of ${firstWarmupS} s at that rate, ` +
        `then steps of ${fr.stepS} s up ${fr.steps.map((s) => s / 1000 + 'k').join(', ') || '(none)'} until a step is not held` +
        (fr.refine > 0 ? `, then up to ${fr.refine} steps bisecting between the highest rate held and the first not held (to 500 req/s)` : '') +
        ` (held = zero errors and non-2xx, p99 <= ${fr.p99LimitMs} ms, achieved >= 97% of the target)`,
      rows,
      summary,
    };
  },
  headlines(s) {
    const out: Headline[] = [];
    const first = s.rows[0]?.params.rate;
    if (first !== undefined) {
      const p99 = headlinePair(`Fixed ${num(Number(first))} req/s CRUD mix: p99`, s, { rate: first }, 'ms', (r) => r.latencyMs.p99);
      for (const h of p99) h.note = 'latency: lower is better; counted from when each request was due';
      out.push(...p99);
    }
    out.push({
      label: 'Highest fixed rate held (0 errors, p99 <= 50 ms)',
      ours: Number(s.summary.highestHeld_ours ?? NaN),
      baseline: Number(s.summary.highestHeld_baseline ?? NaN),
      unit: 'req/s',
      note: `steps tried up to ${num(Math.max(...s.rows.map((r) => Number(r.params.rate))))} req/s`,
    });
    return out;
  },
  section: (s, charts) => [
    compareTable(s),
    '',
    `Highest rate held: ours ${num(Number(s.summary.highestHeld_ours ?? 0))} req/s, baseline ${num(Number(s.summary.highestHeld_baseline ?? 0))} req/s.`,
    '',
    ...(charts['fixed-rate'] ? [`![fixed rate](results/${charts['fixed-rate']})`, ''] : []),
  ],
};

export function fixedRateTargets(all: ScenarioResult[]): Target[] {
  const fr = all.find((s) => s.id === 'fixed-rate');
  if (!fr) return [];
  const t: Target[] = [];
  const first = fr.rows.find((r) => r.params.server === 'ours' && r.params.rate === TARGET.rate)?.result;
  if (first)
    t.push({
      label: `Fixed ${num(TARGET.rate)} req/s CRUD mix: p99 <= ${TARGET.p99Ms} ms, zero non-2xx`,
      measured: `p99 ${ms(first.latencyMs.p99)} ms, non-2xx ${first.non2xx}, errors ${first.errors}`,
      met: first.latencyMs.p99 <= TARGET.p99Ms && first.non2xx === 0 && first.errors === 0,
    });
  const held = Number(fr.summary.highestHeld_ours ?? 0);
  const tried = Math.max(...fr.rows.filter((r) => r.params.server === 'ours').map((r) => Number(r.params.rate)));
  t.push({
    label: `Highest fixed rate held (0 errors, p99 < 50 ms) >= ${TARGET.highestHeld / 1000}k req/s`,
    measured: `${num(held)} req/s (highest step tried ${num(tried)})`,
    met: held >= TARGET.highestHeld ? true : tried < TARGET.highestHeld && held === tried ? null : false,
  });
  return t;
}
