// Instructions per request, thread by thread, under valgrind's callgrind: a count that does not move with the VM's
// speed or the host's steal, for A/B comparisons too small for CPU time. On this 2-core VM paired CPU rounds
// (ab-cpu.ts) spread by +-5-10% per round, even for a thread whose code did not change; callgrind's counts of
// the same build spread by ~3% on the main thread (JIT and GC timing still move them a little).
//
//   node dist-bench/bench/ab-instr.js --a=/tmp/base --b=. [--workloads=read,create,increment] [--rate=300]
//     [--warmup=40] [--seconds=15] [--rounds=2] [--no-probe] [--keep] [--env=NAME=value ...]
//
// Each side runs under callgrind at a low fixed rate (callgrind runs the process ~50x slower: 300 reads/s keeps a
// core busy), is warmed up (V8 compiles by call counts, so a slow run reaches the same code), then its counters
// are zeroed, the measured load runs, and they are dumped (callgrind_control). Counts are user space only: the
// kernel's share (syscalls, wake-ups) is not in them, so they judge code on the request path, not how often a
// thread sleeps. At such a rate every write is a batch of its own, so per-batch costs weigh more than at 10k/s.
// Needs valgrind (Debian's package); prints one line per side and workload and the ratios B/A.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad } from './lib/load.js';
import { PROBE_ENTRY } from './lib/paths.js';
import { createSeedDb } from './lib/seed.js';
import { abWorkloads, envPairs } from './lib/ab.js';
import { roleTotal } from './lib/threads.js';
import type { Workload } from './lib/workloads.js';
import { tempDir } from '../test/helpers/server.js';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: '.' },
    workloads: { type: 'string', default: 'read,create,increment' },
    rate: { type: 'string', default: '300' },
    warmup: { type: 'string', default: '40' },
    seconds: { type: 'string', default: '15' },
    rounds: { type: 'string', default: '2' },
    'no-probe': { type: 'boolean', default: false },
    /** Keep callgrind's files (one per thread, side, workload and round) for callgrind_annotate. */
    keep: { type: 'boolean', default: false },
    env: { type: 'string', multiple: true, default: [] },
  },
});
if (!values.a) throw new Error('--a=<dir with a built dist/> is required');
try {
  execFileSync('valgrind', ['--version']);
} catch {
  throw new Error('valgrind is not installed (Debian: apt-get install valgrind)');
}
const workloads = abWorkloads(values.workloads);
const extraEnv = envPairs(values.env);
const dir = tempDir('sqlite-ab-instr-');
const seed = path.join(dir, 'seed.db');
createSeedDb(seed);

// vgdb (behind callgrind_control) finds the process by a file named after USER/LOGNAME and HOST: both sides must
// see the same values, and the server's own HOST (its listen address) is one of them.
const vgEnv = { USER: process.env.USER || 'bench', LOGNAME: process.env.LOGNAME || 'bench', HOST: '127.0.0.1' };
const control = (cmd: string, pid: number) => execFileSync('callgrind_control', [cmd, String(pid)], { env: { ...process.env, ...vgEnv }, stdio: 'ignore' });

interface Measured {
  /** Instructions per request by role: main, writer, checkpointer, other (V8's platform threads, libuv). */
  byRole: Record<string, number>;
  responses: number;
}

async function measure(name: string, entry: string, workload: Workload, round: number): Promise<Measured> {
  const out = path.join(dir, `${name}-${workload.name}-${round}`);
  fs.mkdirSync(out);
  const db = path.join(out, 'app.db');
  fs.copyFileSync(seed, db);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const proc: ChildProcess = spawn(
    'valgrind',
    ['--tool=callgrind', '--separate-threads=yes', '--smc-check=all-non-file', `--callgrind-out-file=${out}/cg.%p`, process.execPath, entry],
    {
      env: { ...process.env, ...extraEnv, ...vgEnv, PORT: String(port), DB_PATH: db, SQLITE_SYNCHRONOUS: 'FULL', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  try {
    for (let waited = 0; !log.includes('listening'); waited += 200) {
      if (waited > 120_000 || proc.exitCode !== null) throw new Error(`${name} did not start under valgrind:\n${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const url = `http://127.0.0.1:${port}`;
    const spec = { connections: 8, rate: Number(values.rate), requests: workload.requests };
    await runLoad(url, { ...spec, durationS: Number(values.warmup) });
    const threads = liveThreads(proc.pid!);
    control('-z', proc.pid!);
    const r = await runLoad(url, { ...spec, durationS: Number(values.seconds) });
    control('-d', proc.pid!);
    return { byRole: countsByRole(out, proc.pid!, threads, log, r.responses), responses: r.responses };
  } finally {
    proc.kill('SIGKILL');
    await new Promise((r) => (proc.exitCode !== null || proc.signalCode !== null ? r(null) : proc.once('exit', r)));
  }
}

/** The process's kernel thread ids, oldest first: valgrind numbers threads 1, 2, ... in the order they start. */
function liveThreads(pid: number): number[] {
  return fs
    .readdirSync(`/proc/${pid}/task`)
    .map(Number)
    .sort((x, y) => x - y);
}

/** Sums callgrind's per-thread totals of the dump by role; the server's `threads` log line names the workers' tids. */
function countsByRole(out: string, pid: number, tids: number[], log: string, responses: number): Record<string, number> {
  const roles = new Map<number, string>([[pid, 'main']]);
  const line = log.split('\n').findLast((l) => l.includes('"msg":"threads"'));
  if (line) {
    const o = JSON.parse(line) as Record<string, unknown>;
    for (const role of ['writer', 'checkpointer']) if (typeof o[role] === 'number') roles.set(o[role] as number, role);
  }
  const byRole: Record<string, number> = {};
  for (const f of fs.readdirSync(out).filter((f) => f.startsWith(`cg.${pid}.`))) {
    const text = fs.readFileSync(path.join(out, f), 'utf8');
    // The -d dump is part 1 (part 0, if any, is what ran after it until the kill, left out).
    if (text.match(/^part: (\d+)/m)?.[1] !== '1') continue;
    const thread = Number(text.match(/^thread: (\d+)/m)?.[1]);
    const total = Number(text.match(/^(?:summary|totals): (\d+)/m)?.[1] ?? 0);
    const role = roles.get(tids[thread - 1] ?? -1) ?? 'other';
    byRole[role] = (byRole[role] ?? 0) + total / responses;
  }
  return byRole;
}

const sides: [string, string][] = [
  ['A', path.resolve(values.a, 'dist', 'main.js')],
  ['B', path.resolve(values.b, 'dist', 'main.js')],
];
if (!values['no-probe']) sides.push(['probe', PROBE_ENTRY]);
const fmt = (n: number) => `${(n / 1000).toFixed(1)}k`;
const results: Record<string, Record<string, Measured[]>> = {};
try {
  for (const [w, workload] of workloads) {
    for (let round = 1; round <= Number(values.rounds); round++) {
      for (const [name, entry] of round % 2 === 1 ? sides : [...sides].reverse()) {
        const m = await measure(name, entry, workload, round);
        ((results[w] ??= {})[name] ??= []).push(m);
        const total = roleTotal(m.byRole);
        const split = Object.entries(m.byRole)
          .sort(([x], [y]) => x.localeCompare(y))
          .map(([role, n]) => `${role} ${fmt(n)}`)
          .join(', ');
        console.log(`round ${round} ${w} ${name}: ${fmt(total)} instructions/req (${split}), ${m.responses} requests`);
      }
    }
  }
} finally {
  if (values.keep) console.log(`callgrind's files are in ${dir} (callgrind_annotate <file>; thread 1 is the main thread)`);
  else fs.rmSync(dir, { recursive: true, force: true });
}
const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
for (const [w, r] of Object.entries(results)) {
  const role = (name: string, k: string) => mean(r[name]!.map((m) => m.byRole[k] ?? 0));
  const total = (name: string) => mean(r[name]!.map((m) => roleTotal(m.byRole)));
  const ratio = (b: number, a: number) => (a > 0 ? (b / a).toFixed(3) : '-');
  const parts = ['main', 'writer', 'other'].map((k) => `${k} ${fmt(role('A', k))} -> ${fmt(role('B', k))} (${ratio(role('B', k), role('A', k))})`);
  const probe = r.probe ? `, B/probe ${(total('B') / total('probe')).toFixed(2)} (main ${(role('B', 'main') / role('probe', 'main')).toFixed(2)})` : '';
  console.log(`${w} at ${values.rate}/s, means of ${values.rounds}: ${parts.join(', ')}; all threads B/A ${(total('B') / total('A')).toFixed(3)}${probe}`);
}
