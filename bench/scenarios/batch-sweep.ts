// Group-commit tuning sweep (ours only): write throughput over WRITE_BATCH_MAX x WRITE_BATCH_WAIT_MS x
// SQLITE_SYNCHRONOUS, with WRITE_BATCH_MAX=1 (no group commit) as the control.
import { ms, num, ratio } from '../lib/format.js';
import type { Mode, Row, Scenario } from '../lib/scenario.js';
import { trial } from '../lib/scenario.js';
import { find, table } from '../lib/tables.js';
import { createProduct } from '../lib/workloads.js';

export interface SweepSettings {
  batchMax: number[];
  waitMs: number[];
  sync: ('NORMAL' | 'FULL')[];
  durationS: number;
}

const SETTINGS: Record<Mode, SweepSettings> = {
  full: { batchMax: [1, 16, 64, 256, 1024], waitMs: [0, 1, 5], sync: ['NORMAL', 'FULL'], durationS: 5 },
  quick: { batchMax: [1, 64, 1024], waitMs: [0], sync: ['NORMAL', 'FULL'], durationS: 2 },
  smoke: { batchMax: [1, 64], waitMs: [0], sync: ['NORMAL'], durationS: 1 },
};

export const batchSweepScenario: Scenario = {
  id: 'batch-sweep',
  title: 'Group-commit tuning sweep (ours)',
  settings: { key: 'sweep', byMode: SETTINGS },
  async run(ctx) {
    const sw = SETTINGS[ctx.settings.mode];
    const rows: Row[] = [];
    for (const sync of sw.sync)
      for (const batchMax of sw.batchMax)
        for (const waitMs of sw.waitMs) {
          const env = { SQLITE_SYNCHRONOUS: sync, WRITE_BATCH_MAX: String(batchMax), WRITE_BATCH_WAIT_MS: String(waitMs) };
          const result = await trial(ctx, `batch-sweep ${sync} max=${batchMax} wait=${waitMs}ms`, {
            server: 'ours',
            env,
            warmup: ctx.settings.warmupS > 0 ? { connections: ctx.settings.connections, durationS: Math.min(1, ctx.settings.warmupS), requests: createProduct.requests } : undefined,
            load: { connections: ctx.settings.connections, durationS: sw.durationS, requests: createProduct.requests },
          });
          rows.push({ params: { sync, batchMax, waitMs, server: 'ours' }, result });
        }
    return {
      id: this.id,
      title: this.title,
      what:
        `${createProduct.describe}, ${ctx.settings.connections} connections, ${sw.durationS} s per cell: WRITE_BATCH_MAX x WRITE_BATCH_WAIT_MS x SQLITE_SYNCHRONOUS ` +
        '(WRITE_BATCH_MAX=1 is the no-group-commit control)',
      rows,
      summary: {},
    };
  },
  section(s, charts) {
    const head = ['SQLITE_SYNCHRONOUS', 'WRITE_BATCH_MAX', 'WRITE_BATCH_WAIT_MS', 'req/s', 'vs max=1', 'p50 ms', 'p99 ms', 'max ms', 'mean batch', 'non-2xx', 'errors', 'CPU server'];
    const rows = s.rows.map(({ params: p, result: r }) => {
      const control = find(s, { sync: p.sync!, batchMax: 1, waitMs: p.waitMs! });
      return [
        String(p.sync),
        num(Number(p.batchMax)),
        String(p.waitMs),
        num(r.rps),
        ratio(r.rps, control?.rps),
        ms(r.latencyMs.p50),
        ms(r.latencyMs.p99),
        ms(r.latencyMs.max),
        num(r.meanBatch ?? NaN, 1),
        num(r.non2xx),
        num(r.errors),
        num(r.serverCores, 2),
      ];
    });
    return [
      table(head, rows),
      '',
      ...(charts['batch-sweep'] ? [`![sweep throughput](results/${charts['batch-sweep']})`, ''] : []),
      ...(charts['batch-sweep-p99'] ? [`![sweep p99](results/${charts['batch-sweep-p99']})`, ''] : []),
    ];
  },
};
