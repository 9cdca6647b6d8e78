// One server process per trial: ours (dist/main.js) or the baseline, on a loopback port chosen by the OS,
// against its own copy of the seeded database. Also reads the process's CPU time from /proc.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ENV_NAMES } from '../../src/config.js';
import { BASELINE_ENTRY, OURS_ENTRY, PROBE_ENTRY, ROOT } from './paths.js';

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

const live = new Set<RunningServer>();

/** Kills every server still running (on exit or interrupt). */
export function killAllServers(): void {
  for (const s of live) {
    try {
      process.kill(s.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
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

/** The servers' own settings (every variable src/config.ts reads, and the baseline's), dropped from the inherited environment. */
const SERVER_ENV = new Set(ENV_NAMES);
const isServerEnv = (k: string) => SERVER_ENV.has(k) || k.startsWith('BASELINE_');

/** Extra settings for every server of ours (`--env=...`), under each scenario's own. */
export const oursEnv: Record<string, string> = {};

/** When set, every server runs with --cpu-prof and writes its profiles (one per thread) here. */
export const profiling = { dir: null as string | null };

export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const entry = { ours: OURS_ENTRY, baseline: BASELINE_ENTRY, probe: PROBE_ENTRY }[opts.kind];
  if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: build first (npm run build && npm run build:bench)`);
  // Only what the scenario sets: a READERS or REPLICA_URL left in the caller's shell must not leak in.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !isServerEnv(k)));
  const nodeArgs = profiling.dir ? ['--cpu-prof', `--cpu-prof-dir=${profiling.dir}`] : [];
  // The server's stdout and stderr go to a file next to its database, not through a pipe into this process: this
  // process also runs autocannon, and reading the access log (~8 MB/s at 40k req/s) would take CPU from it.
  const logPath = path.join(path.dirname(opts.dbPath), `${opts.kind}-${process.hrtime.bigint()}.log`);
  const logFd = fs.openSync(logPath, 'w');
  const proc: ChildProcess = spawn(process.execPath, [...nodeArgs, entry], {
    cwd: ROOT,
    env: {
      ...inherited,
      PORT: '0',
      HOST: '127.0.0.1',
      DB_PATH: opts.dbPath,
      LOG_LEVEL: 'info',
      ...(opts.kind === 'ours' ? oursEnv : {}),
      ...opts.env,
    },
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  /** The last 64 KB the process wrote (read from its log file). */
  const out = (): string => {
    try {
      const fd = fs.openSync(logPath, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        const len = Math.min(size, 65_536);
        const buf = Buffer.alloc(len);
        fs.readSync(fd, buf, 0, len, size - len);
        return buf.toString();
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return '';
    }
  };
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));

  const server: RunningServer = {
    kind: opts.kind,
    pid: proc.pid!,
    port: 0,
    url: '',
    output: out,
    cpuSeconds: () => procCpuSeconds(proc.pid!),
    async stop(graceMs = 20_000) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        const r = await exited;
        clearTimeout(t);
        live.delete(server);
        return r;
      }
      live.delete(server);
      return exited;
    },
  };
  live.add(server);

  // The ready line: pino JSON with "msg":"listening" and the port (ours and the baseline log the same), polled
  // from the start of the log file.
  server.port = await new Promise<number>((resolve, reject) => {
    let done = false;
    const finish = (f: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(poll);
      f();
    };
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      finish(() => reject(new Error(`${opts.kind} server did not listen within ${opts.timeoutMs ?? 30_000} ms:\n${out()}`)));
    }, opts.timeoutMs ?? 30_000);
    const poll = setInterval(() => {
      for (const line of out().split('\n')) {
        if (!line.includes('"listening"')) continue;
        try {
          const rec = JSON.parse(line) as { msg?: string; port?: number };
          if (rec.msg === 'listening' && typeof rec.port === 'number') {
            const port = rec.port;
            finish(() => resolve(port));
            return;
          }
        } catch {
          /* not JSON */
        }
      }
    }, 10);
    void exited.then((code) => finish(() => reject(new Error(`${opts.kind} server exited (${code}) before listening:\n${out()}`))));
  });
  server.url = `http://127.0.0.1:${server.port}`;
  return server;
}

/** A fresh temp dir with a copy of the seed database in it. */
export function freshDbCopy(seedPath: string): { dir: string; dbPath: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sqlite-bench-'));
  const dbPath = path.join(dir, 'app.db');
  fs.copyFileSync(seedPath, dbPath);
  return { dir, dbPath, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
