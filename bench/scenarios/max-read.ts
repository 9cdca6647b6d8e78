// Maximum read throughput: products by random id, as fast as the servers answer.
import { num, ratio } from '../lib/format.js';
import type { Scenario, ScenarioResult, Target } from '../lib/scenario.js';
import { compare } from '../lib/scenario.js';
import { headlinePair } from '../lib/tables.js';
import { getProduct } from '../lib/workloads.js';
import { byGenerator, probeCeiling } from './wrk.js';

/** The target for reads: absolute, and not slower than the baseline. */
const TARGET_RPS = 40_000;

export const maxReadScenario: Scenario = {
  id: 'max-read',
  title: 'Maximum throughput, read-only',
  async run(ctx) {
    return {
      id: this.id,
      title: this.title,
      what: `${getProduct.describe}, ${ctx.settings.connections} connections, ${ctx.settings.durationS} s (ours with its default READERS for this machine)`,
      rows: await compare(ctx, this.id, getProduct, ctx.settings.connections),
      summary: {},
    };
  },
  headlines: (s) => headlinePair('Reads GET /products/{id}', s, {}),
};

export function maxReadTargets(all: ScenarioResult[]): Target[] {
  const reads = byGenerator(all, 'max-read', {}, 'read by id');
  if (!reads.length) return [];
  return [
    {
      label: `Reads (GET /products/{id}) >= ${TARGET_RPS / 1000}k req/s and not slower than baseline`,
      measured: reads.map(({ gen, o, b }) => `${gen}: ${num(o.rps)} req/s, ${ratio(o.rps, b?.rps)} baseline`).join('; ') + probeCeiling(all, 'read by id'),
      met: reads.some(({ o, b }) => o.rps >= TARGET_RPS && b !== undefined && o.rps >= b.rps),
    },
  ];
}
