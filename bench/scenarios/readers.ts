// Reader pool size (ours only): read throughput per READERS value (0 = reads inline on the main thread).
import { ms, num, ratio } from '../lib/format.js';
import type { Mode, Row, Scenario } from '../lib/scenario.js';
import { trial } from '../lib/scenario.js';
import { find, loadgenCell, saturationNote, table } from '../lib/tables.js';
import { getProduct, hotRead, listPage, type Workload } from '../lib/workloads.js';

export interface ReadersSettings {
  values: number[];
  /** Recorded in the run's JSON by name. */
  workloads: Workload[];
  durationS: number;
}

const SETTINGS: Record<Mode, ReadersSettings> = {
  full: { values: [0, 1, 2, 4], workloads: [hotRead, getProduct, listPage], durationS: 5 },
  quick: { values: [0, 2, 4], workloads: [getProduct], durationS: 2 },
  smoke: { values: [0, 1], workloads: [getProduct], durationS: 1 },
};

export const readersScenario: Scenario = {
  id: 'readers',
  title: 'Reader pool size (ours)',
  settings: { key: 'readers', byMode: SETTINGS },
  async run(ctx) {
    const rd = SETTINGS[ctx.settings.mode];
    const rows: Row[] = [];
    for (const w of rd.workloads)
      for (const readers of rd.values) {
        const connections = w === hotRead ? 20 : ctx.settings.connections;
        const result = await trial(ctx, `readers ${w.name} READERS=${readers}`, {
          server: 'ours',
          env: { READERS: String(readers) },
          warmup: ctx.settings.warmupS > 0 ? { connections, durationS: Math.min(1, ctx.settings.warmupS), requests: w.requests } : undefined,
          load: { connections, durationS: rd.durationS, requests: w.requests },
        });
        rows.push({ params: { workload: w.name, readers, server: 'ours' }, result });
      }
    return {
      id: this.id,
      title: this.title,
      what: `READERS in {${rd.values.join(', ')}} (0 = reads inline on the main thread) on ${rd.workloads.map((w) => `${w.name} (${w.describe})`).join('; ')}, ${rd.durationS} s each`,
      rows,
      summary: {},
    };
  },
  section(s, charts) {
    const head = ['workload', 'READERS', 'req/s', 'vs READERS=0', 'p50 ms', 'p99 ms', 'max ms', 'non-2xx', 'errors', 'CPU server', 'CPU loadgen'];
    const rows = s.rows.map(({ params: p, result: r }) => {
      const inline = find(s, { workload: p.workload!, readers: 0 });
      return [
        String(p.workload),
        String(p.readers),
        num(r.rps),
        ratio(r.rps, inline?.rps),
        ms(r.latencyMs.p50),
        ms(r.latencyMs.p99),
        ms(r.latencyMs.max),
        num(r.non2xx),
        num(r.errors),
        num(r.serverCores, 2),
        loadgenCell(r),
      ];
    });
    return [table(head, rows) + saturationNote(s), '', ...(charts.readers ? [`![readers](results/${charts.readers})`, ''] : [])];
  },
};
