// Paired A/B rounds of CPU per request at a fixed rate (issue 17's method): two builds of this server (each a
// directory holding a built dist/, e.g. a `git worktree` of the commit to compare against) and the bare probe,
// running side by side on copies of one seeded database. Every round runs each workload against A, then B, then
// the probe (the order alternates per round), so a VM that changes speed mid-run moves all three alike; the
// ratios B/A and B/probe are taken within a round.
//
//   node dist-bench/bench/ab-cpu.js --a=/tmp/base --b=. [--rate=10000] [--rounds=4] [--seconds=5] [--warmup=10] [--workloads=create,increment,read]
//     [--env=NAME=value ...] (both) [--env-a=NAME=value ...] [--env-b=NAME=value ...] (one side: --a=. --b=. compares settings)
//     [--seed-migrations=N] (a seed at schema version N, for an A that predates a migration)
//
// Prints one line per trial (CPU us per request, per thread with its kernel part, p50/p99) and the medians of the
// per-round ratios (B/probe also for user and kernel time apart).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad } from './lib/load.js';
import { PROBE_ENTRY } from './lib/paths.js';
import { createSeedDb } from './lib/seed.js';
import { MIGRATIONS } from '../src/shared/db/migrations.js';
import { cpuTimes, stealShare } from './lib/machine.js';
import { procCpuSeconds } from './lib/server.js';
import { cpuByRole, roleTotal, threadCpuSeconds, threadRoles } from './lib/threads.js';
import { abWorkloads, envPairs } from './lib/ab.js';
import { killAll, startServer, tempDir, type Running } from '../test/helpers/server.js';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: '.' },
    rate: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '5' },
    /** Seconds of load per side and workload before the rounds: V8 is still compiling for ~10 s (scenarios/cpu.ts). */
    warmup: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    workloads: { type: 'string', default: 'create,increment,read' },
    env: { type: 'string', multiple: true, default: [] },
    'env-a': { type: 'string', multiple: true, default: [] },
    'env-b': { type: 'string', multiple: true, default: [] },
    /** Seed the database at this schema version: an older build refuses a newer schema, a newer one migrates up. */
    'seed-migrations': { type: 'string' },
  },
});
if (!values.a) throw new Error('--a=<dir with a built dist/> is required');
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const workloads = abWorkloads(values.workloads);
const extraEnv = envPairs(values.env);

const dir = tempDir('sqlite-ab-');
const seed = path.join(dir, 'seed.db');
createSeedDb(seed, undefined, values['seed-migrations'] === undefined ? MIGRATIONS : MIGRATIONS.slice(0, Number(values['seed-migrations'])));
const copy = (name: string) => {
  const p = path.join(dir, `${name}.db`);
  fs.copyFileSync(seed, p);
  return p;
};

interface Side {
  name: string;
  server: Running;
  roles: Map<number, string> | null;
}

const env = { SQLITE_SYNCHRONOUS: 'FULL', LOG_LEVEL: 'info', ...extraEnv };
async function start(name: string, entry: string, own: Record<string, string> = {}): Promise<Side> {
  const server = await startServer({ entry, dbPath: copy(name), env: { ...env, ...own }, logFile: path.join(dir, `${name}.log`) });
  return { name, server, roles: null };
}

const sides = [
  await start('A', path.resolve(values.a, 'dist', 'main.js'), envPairs(values['env-a'])),
  await start('B', path.resolve(values.b, 'dist', 'main.js'), envPairs(values['env-b'])),
  await start('probe', PROBE_ENTRY),
];
await new Promise((r) => setTimeout(r, 500));
for (const s of sides) if (s.name !== 'probe') s.roles = threadRoles(s.server.proc.pid!, s.server.output());

/** Per workload, the per-round ratios: B/A, B/probe, A/probe, and B/probe of user time and of system time alone. */
const ratios: Record<string, { ba: number[]; bp: number[]; ap: number[]; bpUser: number[]; bpSys: number[] }> = {};
try {
  for (const [w, workload] of workloads) {
    // Warm every side up once (JIT, page cache) before the measured rounds.
    for (const s of sides) await runLoad(s.server.url, { connections, durationS: Number(values.warmup), rate, requests: workload.requests });
  }
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const [w, workload] of workloads) {
      const order = round % 2 === 1 ? sides : [...sides].reverse();
      const us: Record<string, number> = {};
      const sys: Record<string, number> = {};
      for (const s of order) {
        const pid = s.server.proc.pid!;
        const t0 = threadCpuSeconds(pid);
        const c0 = procCpuSeconds(pid);
        const s0 = cpuTimes();
        const r = await runLoad(s.server.url, { connections, durationS: seconds, rate, requests: workload.requests });
        const c1 = procCpuSeconds(pid);
        const t1 = threadCpuSeconds(pid);
        const steal = stealShare(s0, cpuTimes());
        const per = (sec: number) => ((1e6 * sec) / r.responses).toFixed(1);
        us[s.name] = (1e6 * (c1 - c0)) / r.responses;
        // Per thread, with its kernel share (syscalls, wake-ups): the probe's are its main thread and V8's own.
        const roles = s.roles ?? new Map([[pid, 'main']]);
        const system = cpuByRole(t0, t1, roles, 'system');
        sys[s.name] = (1e6 * roleTotal(system)) / r.responses;
        const split = Object.entries(cpuByRole(t0, t1, roles))
          .map(([role, sec]) => `${role} ${per(sec)} (sys ${per(system[role] ?? 0)})`)
          .join(', ');
        console.log(
          `round ${round} ${w} ${s.name}: ${us[s.name]!.toFixed(1)} us/req, sys ${sys[s.name]!.toFixed(1)} (${split}) ` +
            `p50 ${r.latencyMs.p50.toFixed(2)} p99 ${r.latencyMs.p99.toFixed(2)} ms, ${Math.round(r.rps)} req/s, non-2xx ${r.non2xx}` +
            (steal === null ? '' : `, host steal ${(100 * steal).toFixed(1)}%`),
        );
      }
      const e = (ratios[w] ??= { ba: [], bp: [], ap: [], bpUser: [], bpSys: [] });
      e.bpUser.push((us.B! - sys.B!) / (us.probe! - sys.probe!));
      e.bpSys.push(sys.B! / sys.probe!);
      e.ba.push(us.B! / us.A!);
      e.bp.push(us.B! / us.probe!);
      e.ap.push(us.A! / us.probe!);
    }
  }
} finally {
  await killAll();
  fs.rmSync(dir, { recursive: true, force: true });
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
for (const [w, r] of Object.entries(ratios)) {
  console.log(
    `${w} at ${rate}/s: B/A median ${median(r.ba).toFixed(2)} [${r.ba.map((x) => x.toFixed(2)).join(' ')}], ` +
      `A/probe ${median(r.ap).toFixed(2)}, B/probe ${median(r.bp).toFixed(2)} [${r.bp.map((x) => x.toFixed(2)).join(' ')}] ` +
      `(user ${median(r.bpUser).toFixed(2)}, system ${median(r.bpSys).toFixed(2)})`,
  );
}
