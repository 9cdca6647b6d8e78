// One server process per trial: ours (dist/main.js), the baseline or the probe, on a loopback port chosen by the
// OS, against its own copy of the seeded database. Started by the tests' launcher (test/helpers/server.ts) with
// what the bench needs on top: the servers' own variables dropped from the inherited environment, --env
// settings for ours, --cpu-prof, output to a log file rather than a pipe, and the process's CPU time from /proc.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ENV_NAMES } from '../../src/shared/config.js';
import { killAll, startServer as launch } from '../../test/helpers/server.js';
import { BASELINE_ENTRY, OURS_ENTRY, PROBE_ENTRY } from './paths.js';

/** `probe`: the bare single-thread ceiling (bench/probe/main.ts), run by the wrk cross-check only. */
export type ServerKind = 'ours' | 'baseline' | 'probe';

export interface RunningServer {
  kind: ServerKind;
  pid: number;
  port: number;
  url: string;
  /** The last 64 KB the process wrote (stdout + stderr). */
  output(): string;
  /** CPU seconds (user + system, all threads) used so far; NaN where /proc is unavailable. */
  cpuSeconds(): number;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code or signal. */
  stop(graceMs?: number): Promise<number | string>;
}

/**
 * Kills every server still running, starting ones included (on exit or interrupt). The launcher's killAll sends
 * every SIGKILL before it returns; only its waiting for the exits is asynchronous, and nothing here waits.
 */
export function killAllServers(): void {
  void killAll();
}

let clockTicks: number | undefined;
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export function procCpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields overall.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / ticksPerSecond();
  } catch {
    return NaN;
  }
}

export interface StartOptions {
  kind: ServerKind;
  dbPath: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** The servers' own settings (every variable src/shared/config.ts reads, and the baseline's), dropped from the inherited environment. */
const SERVER_ENV = new Set(ENV_NAMES);
const isServerEnv = (k: string) => SERVER_ENV.has(k) || k.startsWith('BASELINE_');

/** Extra settings for every server of ours (`--env=...`), under each scenario's own. */
export const oursEnv: Record<string, string> = {};

/** When set, every server runs with --cpu-prof and writes its profiles (one per thread) here. */
export const profiling = { dir: null as string | null };

export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const entry = { ours: OURS_ENTRY, baseline: BASELINE_ENTRY, probe: PROBE_ENTRY }[opts.kind];
  if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: build first (npm run build && npm run build:bench)`);
  const r = await launch({
    entry,
    dbPath: opts.dbPath,
    // Only what the scenario sets: a READERS or REPLICA_URL left in the caller's shell must not leak in.
    baseEnv: Object.fromEntries(Object.entries(process.env).filter(([k]) => !isServerEnv(k))),
    env: { ...(opts.kind === 'ours' ? oursEnv : {}), ...opts.env },
    nodeArgs: profiling.dir ? ['--cpu-prof', `--cpu-prof-dir=${profiling.dir}`] : [],
    // Next to its database, which the trial removes afterwards.
    logFile: path.join(path.dirname(opts.dbPath), `${opts.kind}-${process.hrtime.bigint()}.log`),
    timeoutMs: opts.timeoutMs ?? 30_000,
  }).catch((err: unknown) => {
    (err as Error).message = `${opts.kind} ${(err as Error).message}`;
    throw err;
  });
  const server: RunningServer = {
    kind: opts.kind,
    pid: r.proc.pid!,
    port: r.port,
    url: r.url,
    output: r.output,
    cpuSeconds: () => procCpuSeconds(r.proc.pid!),
    stop: (graceMs = 20_000) => r.stop('SIGTERM', graceMs),
  };
  return server;
}

/** A fresh temp dir with a copy of the seed database in it. */
export function freshDbCopy(seedPath: string): { dir: string; dbPath: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sqlite-bench-'));
  const dbPath = path.join(dir, 'app.db');
  fs.copyFileSync(seedPath, dbPath);
  return { dir, dbPath, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
