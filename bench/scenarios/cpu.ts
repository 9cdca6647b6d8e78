// CPU per request (issue 17): this server against the bare single-thread probe (bench/probe/), started in the same
// run, at fixed rates on an open-loop schedule, 32 connections, SQLITE_SYNCHRONOUS=FULL: durable creates,
// increments and point reads. The figure is the server process's CPU (user + system, every thread) divided by the
// requests answered: it does not depend on how fast this shared VM is that minute, and it is what a bigger machine
// multiplies. Ours is also split per thread (main, writer, checkpointer, libuv, other = V8's platform threads:
// garbage collection and compilation), from /proc/<pid>/task/*/stat (bench/lib/threads.ts).
import { ms, num, ratio } from '../lib/format.js';
import type { Headline, Mode, Row, Scenario, ScenarioResult, Target } from '../lib/scenario.js';
import { trial } from '../lib/scenario.js';
import type { ServerKind } from '../lib/server.js';
import { table } from '../lib/tables.js';
import type { TrialResult } from '../lib/trial.js';
import { createProduct, getProduct, increment, type Workload } from '../lib/workloads.js';

interface CpuSettings {
  rates: number[];
  durationS: number;
  warmupS: number;
}

const SETTINGS: Record<Mode, CpuSettings> = {
  full: { rates: [5000, 10_000], durationS: 10, warmupS: 2 },
  quick: { rates: [5000], durationS: 4, warmupS: 1 },
  smoke: { rates: [500], durationS: 1, warmupS: 0 },
};

const CONNECTIONS = 32;
const SERVERS: readonly ServerKind[] = ['ours', 'probe'];
const WORKLOADS: readonly { id: string; workload: Workload }[] = [
  { id: 'create', workload: createProduct },
  { id: 'increment', workload: increment('cpu') },
  { id: 'read', workload: getProduct },
];
const ROLES = ['main', 'writer', 'checkpointer', 'libuv', 'other'] as const;

/** The targets: a durable write at most 1.5x the probe's CPU, a point read 1.1x; p99 <= 5 ms at 10k writes/s. */
const TARGET = { writeRatio: 1.5, readRatio: 1.1, p99Ms: 5, p99Rate: 10_000 };

/** Microseconds of server CPU per answered request. */
export const cpuPerRequestUs = (r: TrialResult): number => (1e6 * r.serverCores) / r.rps;
const usPerRequest = (seconds: number, r: TrialResult): number => (1e6 * seconds) / r.responses;

export const cpuScenario: Scenario = {
  id: 'cpu',
  title: 'CPU per request, against the bare probe',
  settings: { key: 'cpu', byMode: SETTINGS },
  async run(ctx) {
    const st = SETTINGS[ctx.settings.mode];
    const rows: Row[] = [];
    for (const { id, workload } of WORKLOADS) {
      for (const rate of st.rates) {
        for (const server of SERVERS) {
          const result = await trial(ctx, `cpu ${id} ${rate}/s ${server}`, {
            server,
            env: { SQLITE_SYNCHRONOUS: 'FULL' },
            warmup: st.warmupS > 0 ? { connections: CONNECTIONS, durationS: st.warmupS, rate, requests: workload.requests } : undefined,
            load: { connections: CONNECTIONS, durationS: st.durationS, rate, requests: workload.requests },
          });
          rows.push({ params: { workload: id, rate, server }, result });
        }
      }
    }
    return {
      id: this.id,
      title: this.title,
      what:
        `${WORKLOADS.map((w) => w.workload.describe).join('; ')}: each at ${st.rates.map((r) => num(r)).join(' and ')} req/s on an open-loop schedule, ` +
        `${CONNECTIONS} connections, ${st.durationS} s (after ${st.warmupS} s of warm-up), SQLITE_SYNCHRONOUS=FULL, ours and the probe in the same run. ` +
        'CPU = user + system of every thread of the server process, per answered request.',
      rows,
      summary: {},
    };
  },
  headlines(s) {
    const out: Headline[] = [];
    for (const { id } of WORKLOADS) {
      const rate = Math.max(...s.rows.filter((r) => r.params.workload === id).map((r) => Number(r.params.rate)));
      const ours = pick(s, id, rate, 'ours');
      const probe = pick(s, id, rate, 'probe');
      if (!ours || !probe) continue;
      out.push({
        label: `CPU per request, ${id} at ${num(rate)}/s: ours / probe`,
        ours: cpuPerRequestUs(ours) / cpuPerRequestUs(probe),
        unit: 'ratio',
        note: `${num(cpuPerRequestUs(ours), 1)} us vs ${num(cpuPerRequestUs(probe), 1)} us; lower is better`,
      });
    }
    return out;
  },
  section(s) {
    const cells: string[][] = [];
    const threads: string[][] = [];
    for (const row of s.rows.filter((r) => r.params.server === 'ours')) {
      const { workload, rate } = row.params;
      const ours = row.result;
      const probe = pick(s, String(workload), Number(rate), 'probe');
      cells.push([
        String(workload),
        num(Number(rate)),
        num(cpuPerRequestUs(ours), 1),
        probe ? num(cpuPerRequestUs(probe), 1) : '-',
        probe ? ratio(cpuPerRequestUs(ours), cpuPerRequestUs(probe)) : '-',
        `${ms(ours.latencyMs.p50)} / ${ms(ours.latencyMs.p99)}`,
        probe ? `${ms(probe.latencyMs.p50)} / ${ms(probe.latencyMs.p99)}` : '-',
        num(ours.rps),
      ]);
      threads.push([String(workload), num(Number(rate)), ...ROLES.map((role) => num(usPerRequest(ours.threadSeconds[role] ?? 0, ours), 1))]);
    }
    return [
      table(['workload', 'rate req/s', 'ours us/req', 'probe us/req', 'ours / probe', 'ours p50 / p99 ms', 'probe p50 / p99 ms', 'ours achieved req/s'], cells),
      '',
      'Ours per thread, microseconds of CPU per request (other = V8 platform threads: garbage collection, compilation):',
      '',
      table(['workload', 'rate req/s', ...ROLES], threads),
    ];
  },
};

function pick(s: ScenarioResult, workload: string, rate: number, server: ServerKind): TrialResult | undefined {
  return s.rows.find((r) => r.params.workload === workload && r.params.rate === rate && r.params.server === server)?.result;
}

export function cpuTargets(all: ScenarioResult[]): Target[] {
  const s = all.find((x) => x.id === 'cpu');
  if (!s) return [];
  const out: Target[] = [];
  for (const row of s.rows.filter((r) => r.params.server === 'ours')) {
    const { workload, rate } = row.params;
    const probe = pick(s, String(workload), Number(rate), 'probe');
    if (!probe) continue;
    const limit = workload === 'read' ? TARGET.readRatio : TARGET.writeRatio;
    const r = cpuPerRequestUs(row.result) / cpuPerRequestUs(probe);
    out.push({ label: `CPU per ${workload} at ${num(Number(rate))}/s <= ${limit}x the probe's`, measured: `${num(r, 2)}x`, met: r <= limit });
    if (workload !== 'read' && rate === TARGET.p99Rate) {
      out.push({
        label: `p99 <= ${TARGET.p99Ms} ms at ${num(TARGET.p99Rate)} durable ${workload}s/s`,
        measured: `${ms(row.result.latencyMs.p99)} ms`,
        met: row.result.latencyMs.p99 <= TARGET.p99Ms,
      });
    }
  }
  return out;
}
