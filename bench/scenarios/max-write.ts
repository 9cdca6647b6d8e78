// Maximum write throughput: product creates as fast as the servers take them, per SQLITE_SYNCHRONOUS.
import { num, ratio } from '../lib/format.js';
import type { Mode, Row, Scenario, ScenarioResult, Target } from '../lib/scenario.js';
import { compare } from '../lib/scenario.js';
import { headlinePair } from '../lib/tables.js';
import { createProduct } from '../lib/workloads.js';
import { byGenerator, probeCeiling } from './wrk.js';

type Sync = 'NORMAL' | 'FULL';

const SETTINGS: Record<Mode, Sync[]> = {
  full: ['FULL', 'NORMAL'],
  quick: ['FULL'],
  smoke: ['FULL'],
};

/** The target for durable (FULL) writes: absolute, and against the baseline. */
const TARGET = { rps: 35_000, vsBaseline: 10 };

export const maxWriteScenario: Scenario = {
  id: 'max-write',
  title: 'Maximum throughput, write-only',
  settings: { key: 'maxWriteSync', byMode: SETTINGS },
  async run(ctx) {
    const rows: Row[] = [];
    for (const sync of SETTINGS[ctx.settings.mode]) {
      rows.push(...(await compare(ctx, this.id, createProduct, ctx.settings.connections, { sync }, { SQLITE_SYNCHRONOUS: sync })));
    }
    return {
      id: this.id,
      title: this.title,
      what: `${createProduct.describe}, ${ctx.settings.connections} connections, ${ctx.settings.durationS} s, per SQLITE_SYNCHRONOUS (FULL = durable)`,
      rows,
      summary: {},
    };
  },
  headlines: (s) => [
    ...headlinePair('Durable writes POST /products (FULL)', s, { sync: 'FULL' }),
    ...headlinePair('Writes POST /products (NORMAL)', s, { sync: 'NORMAL' }),
  ],
};

export function maxWriteTargets(all: ScenarioResult[]): Target[] {
  const writes = byGenerator(all, 'max-write', { sync: 'FULL' }, 'write FULL');
  if (!writes.length) return [];
  return [
    {
      label: `Durable writes (FULL, POST /products) >= ${TARGET.rps / 1000}k req/s and >= ${TARGET.vsBaseline}x baseline`,
      measured: writes.map(({ gen, o, b }) => `${gen}: ${num(o.rps)} req/s, ${ratio(o.rps, b?.rps)} baseline`).join('; ') + probeCeiling(all, 'write FULL'),
      met: writes.some(({ o, b }) => o.rps >= TARGET.rps && b !== undefined && o.rps >= TARGET.vsBaseline * b.rps),
    },
  ];
}
