// The scenarios of issue 4, each run against this server ("ours") and the baseline with the same data and
// load settings (the tuning sweeps run on ours only). Three sizes: full, quick (~2 min) and smoke (the test).
import type { LoadResult, LoadSpec } from './load.js';
import { HOT_COUNTER } from './seed.js';
import type { ServerKind } from './server.js';
import { runTrial, type TrialResult, type TrialSpec } from './trial.js';
import { createProduct, CRUD_MIX_DESCRIPTION, getProduct, hotRead, increment, listPage, makeCrudMix, type Workload } from './workloads.js';
import { runWrk } from './wrk.js';

export type Mode = 'full' | 'quick' | 'smoke';

export interface Settings {
  mode: Mode;
  durationS: number;
  warmupS: number;
  /** Connections for the throughput scenarios (the FACTS probes used wrk -c64). */
  connections: number;
  hammer: { connections: number; perConnection: number }[];
  /**
   * `refine`: after the first step not held, that many bisection steps (to 500 req/s) between it and the last
   * held rate (or 0), so "highest held" is not just the last step of a coarse ladder.
   */
  fixedRate: { firstRate: number; firstS: number; steps: number[]; stepS: number; p99LimitMs: number; refine: number };
  maxWriteSync: ('NORMAL' | 'FULL')[];
  sweep: { batchMax: number[]; waitMs: number[]; sync: ('NORMAL' | 'FULL')[]; durationS: number };
  readers: { values: number[]; workloads: Workload[]; durationS: number };
  wrk: { durationS: number; writeSync: ('NORMAL' | 'FULL')[] };
}

export const SETTINGS: Record<Mode, Settings> = {
  full: {
    mode: 'full',
    durationS: 10,
    warmupS: 2,
    connections: 64,
    hammer: [
      { connections: 20, perConnection: 50 },
      { connections: 100, perConnection: 1000 },
    ],
    fixedRate: { firstRate: 5000, firstS: 30, steps: [10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000], stepS: 10, p99LimitMs: 50, refine: 2 },
    maxWriteSync: ['FULL', 'NORMAL'],
    sweep: { batchMax: [1, 16, 64, 256, 1024], waitMs: [0, 1, 5], sync: ['NORMAL', 'FULL'], durationS: 5 },
    readers: { values: [0, 1, 2, 4], workloads: [hotRead, getProduct, listPage], durationS: 5 },
    wrk: { durationS: 10, writeSync: ['FULL', 'NORMAL'] },
  },
  quick: {
    mode: 'quick',
    durationS: 3,
    warmupS: 0.5,
    connections: 64,
    hammer: [
      { connections: 20, perConnection: 50 },
      { connections: 100, perConnection: 100 },
    ],
    fixedRate: { firstRate: 5000, firstS: 3, steps: [10_000], stepS: 3, p99LimitMs: 50, refine: 0 },
    maxWriteSync: ['FULL'],
    sweep: { batchMax: [1, 64, 1024], waitMs: [0], sync: ['NORMAL', 'FULL'], durationS: 2 },
    readers: { values: [0, 2, 4], workloads: [getProduct], durationS: 2 },
    wrk: { durationS: 2, writeSync: ['FULL'] },
  },
  smoke: {
    mode: 'smoke',
    durationS: 2,
    warmupS: 0,
    connections: 16,
    hammer: [{ connections: 5, perConnection: 20 }],
    fixedRate: { firstRate: 500, firstS: 1, steps: [], stepS: 1, p99LimitMs: 50, refine: 0 },
    maxWriteSync: ['FULL'],
    sweep: { batchMax: [1, 64], waitMs: [0], sync: ['NORMAL'], durationS: 1 },
    readers: { values: [0, 1], workloads: [getProduct], durationS: 1 },
    wrk: { durationS: 1, writeSync: ['NORMAL'] },
  },
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
  settings: Settings;
  progress(line: string): void;
}

interface Scenario {
  id: string;
  title: string;
  run(ctx: Ctx): Promise<ScenarioResult>;
}

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '-');

export function describeTrial(r: LoadResult & Partial<TrialResult>): string {
  const busy = r.busyRetries ? r.busyRetries.after - r.busyRetries.before : 0;
  return (
    `${fmt(r.rps).padStart(7)} req/s  p50 ${fmt(r.latencyMs.p50, 2)} p99 ${fmt(r.latencyMs.p99, 2)} max ${fmt(r.latencyMs.max, 1)} ms` +
    `  non2xx ${r.non2xx}  err ${r.errors}  busy +${busy}` +
    (r.targetRate ? `  (${fmt((100 * r.rps) / r.targetRate)}% of target)` : '') +
    (r.serverCores !== undefined ? `  cpu srv ${fmt(r.serverCores, 2)} gen ${fmt(r.generatorCores, 2)}` : '') +
    (r.startupMs !== undefined ? `  start ${fmt(r.startupMs / 1000, 1)} s stop ${fmt((r.shutdownMs ?? NaN) / 1000, 1)} s` : '')
  );
}

async function trial(ctx: Ctx, label: string, spec: TrialSpec): Promise<TrialResult> {
  const t0 = performance.now();
  const r = await runTrial(ctx.seedPath, spec);
  ctx.progress(`${label.padEnd(40)} ${describeTrial(r)}  (${fmt((performance.now() - t0) / 1000, 1)} s)`);
  return r;
}

const warm = (ctx: Ctx, requests: Workload, connections: number): LoadSpec | undefined =>
  ctx.settings.warmupS > 0 ? { connections, durationS: ctx.settings.warmupS, requests: requests.requests } : undefined;

/** The same workload against ours and the baseline (a factory gives each trial its own workload state). */
async function compare(
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

const hotReadScenario: Scenario = {
  id: 'hot-read',
  title: 'Hot read',
  async run(ctx) {
    return {
      id: this.id,
      title: this.title,
      what: `${hotRead.describe}, 20 connections, ${ctx.settings.durationS} s`,
      rows: await compare(ctx, this.id, hotRead, 20),
      summary: {},
    };
  },
};

async function counterValue(base: string, name: string): Promise<number> {
  const r = await fetch(`${base}/counters/${name}`);
  return r.status === 200 ? ((await r.json()) as { value: number }).value : NaN;
}

const hammerScenario: Scenario = {
  id: 'hammer',
  title: 'Counter hammer',
  async run(ctx) {
    const rows: Row[] = [];
    for (const { connections, perConnection } of ctx.settings.hammer) {
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
};

const crudScenario: Scenario = {
  id: 'crud-mix',
  title: 'CRUD mix',
  async run(ctx) {
    return {
      id: this.id,
      title: this.title,
      what: `${CRUD_MIX_DESCRIPTION}; ${ctx.settings.connections} connections, ${ctx.settings.durationS} s`,
      rows: await compare(ctx, this.id, makeCrudMix, ctx.settings.connections),
      summary: {},
    };
  },
};

const fixedRateScenario: Scenario = {
  id: 'fixed-rate',
  title: 'Fixed rate, CRUD mix',
  async run(ctx) {
    const fr = ctx.settings.fixedRate;
    const rows: Row[] = [];
    const summary: Record<string, unknown> = {};
    const held = (r: TrialResult) =>
      r.errors === 0 && r.non2xx === 0 && r.latencyMs.p99 <= fr.p99LimitMs && r.rps >= 0.97 * (r.targetRate ?? 0);
    for (const server of SERVERS) {
      const step = async (rate: number, durationS: number): Promise<boolean> => {
        // Enough connections that a slow response does not hold the schedule up: 20 ms per connection.
        const connections = Math.min(1000, Math.max(100, Math.ceil(rate / 50)));
        const crudMix = makeCrudMix();
        const result = await trial(ctx, `fixed-rate ${rate}/s ${server}`, {
          server,
          warmup: ctx.settings.warmupS > 0 ? { connections, durationS: ctx.settings.warmupS, rate, requests: crudMix.requests } : undefined,
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
        if (!(await step(rates[i]!, i === 0 ? fr.firstS : fr.stepS))) {
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
        `CRUD mix on an open-loop schedule at a fixed overall rate (max(100, rate/50) connections, at most 1,000; latency counted from when each request was due); ${fr.firstRate.toLocaleString('en-US')} req/s for ${fr.firstS} s, ` +
        `then steps of ${fr.stepS} s up ${fr.steps.map((s) => s / 1000 + 'k').join(', ') || '(none)'} until a step is not held` +
        (fr.refine > 0 ? `, then up to ${fr.refine} steps bisecting between the highest rate held and the first not held (to 500 req/s)` : '') +
        ` (held = zero errors and non-2xx, p99 <= ${fr.p99LimitMs} ms, achieved >= 97% of the target)`,
      rows,
      summary,
    };
  },
};

const maxWriteScenario: Scenario = {
  id: 'max-write',
  title: 'Maximum throughput, write-only',
  async run(ctx) {
    const rows: Row[] = [];
    for (const sync of ctx.settings.maxWriteSync) {
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
};

const maxReadScenario: Scenario = {
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
};

const sweepScenario: Scenario = {
  id: 'batch-sweep',
  title: 'Group-commit tuning sweep (ours)',
  async run(ctx) {
    const sw = ctx.settings.sweep;
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
};

const readersScenario: Scenario = {
  id: 'readers',
  title: 'Reader pool size (ours)',
  async run(ctx) {
    const rd = ctx.settings.readers;
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
};

const wrkScenario: Scenario = {
  id: 'wrk',
  title: 'wrk cross-check',
  async run(ctx) {
    const d = ctx.settings.wrk.durationS;
    const cases: { name: string; script: string; path: string; env: Record<string, string> }[] = [
      { name: 'hot-read', script: 'report.lua', path: `/counters/${HOT_COUNTER}`, env: {} },
      // The path is the script's: a random seeded id per request.
      { name: 'read by id', script: 'get-product.lua', path: '/products/1', env: {} },
      ...ctx.settings.wrk.writeSync.map((sync) => ({ name: `write ${sync}`, script: 'post-product.lua', path: '/products', env: { SQLITE_SYNCHRONOUS: sync } })),
      { name: 'increment FULL', script: 'post-increment.lua', path: `/counters/${HOT_COUNTER}/increment`, env: { SQLITE_SYNCHRONOUS: 'FULL' } },
    ];
    const rows: Row[] = [];
    // The bare probe (bench/probe/main.ts) runs the same cases: this machine's ceiling in this session.
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
};

export const SCENARIOS: readonly Scenario[] = [
  hotReadScenario,
  hammerScenario,
  crudScenario,
  fixedRateScenario,
  maxWriteScenario,
  maxReadScenario,
  sweepScenario,
  readersScenario,
  wrkScenario,
];

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
