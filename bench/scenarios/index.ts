// The suite: its scenarios in the order they run and appear in RESULTS.md, the targets table in the order it is
// quoted, and the runner. Each scenario runs against this server ("ours") and the baseline with the same data
// and load settings (the tuning sweeps run on ours only; the CPU scenario against the bare probe).
import { COMMON_SETTINGS, type CommonSettings, type Ctx, type Mode, type Scenario, type ScenarioResult, type Target } from '../lib/scenario.js';
import { batchSweepScenario } from './batch-sweep.js';
import { cpuScenario, cpuTargets } from './cpu.js';
import { crudMixScenario } from './crud-mix.js';
import { followersScenario } from './followers.js';
import { FIXED_RATE_METHOD, fixedRateScenario, fixedRateTargets } from './fixed-rate.js';
import { hammerScenario, hammerTargets } from './hammer.js';
import { hotReadScenario } from './hot-read.js';
import { maxReadScenario, maxReadTargets } from './max-read.js';
import { maxWriteScenario, maxWriteTargets } from './max-write.js';
import { readersScenario } from './readers.js';
import { WRK_METHOD, wrkScenario } from './wrk.js';

export const SCENARIOS: readonly Scenario[] = [
  hotReadScenario,
  hammerScenario,
  crudMixScenario,
  fixedRateScenario,
  maxWriteScenario,
  maxReadScenario,
  batchSweepScenario,
  readersScenario,
  wrkScenario,
  cpuScenario,
  followersScenario,
];

/** The suite's targets, each judged over the whole run (a throughput target also reads the wrk cross-check). */
export const TARGETS: readonly ((all: ScenarioResult[]) => Target[])[] = [maxWriteTargets, maxReadTargets, hammerTargets, fixedRateTargets, cpuTargets];

/** Scenario-specific method notes, after the general ones in RESULTS.md. */
export const METHOD_NOTES: readonly string[] = [WRK_METHOD, FIXED_RATE_METHOD];

/** Every setting of a mode: the shared ones, then each scenario's own under its key (as recorded in the run). */
export function settingsFor(mode: Mode): CommonSettings & Record<string, unknown> {
  const own = SCENARIOS.flatMap((s) => (s.settings ? [[s.settings.key, s.settings.byMode[mode]] as const] : []));
  return { ...COMMON_SETTINGS[mode], ...Object.fromEntries(own) };
}

/** Which scenarios a mode runs by default. */
export function defaultScenarioIds(mode: Mode, haveWrk: boolean): string[] {
  if (mode === 'smoke') return ['hot-read', 'hammer'];
  return SCENARIOS.map((s) => s.id).filter((id) => id !== 'wrk' || haveWrk);
}

export async function runSuite(ctx: Ctx, ids: readonly string[]): Promise<ScenarioResult[]> {
  const out: ScenarioResult[] = [];
  for (const id of ids) {
    const s = SCENARIOS.find((x) => x.id === id);
    if (!s) throw new Error(`unknown scenario "${id}" (known: ${SCENARIOS.map((x) => x.id).join(', ')})`);
    ctx.progress(`== ${s.title} (${s.id})`);
    out.push(await s.run(ctx));
  }
  return out;
}
