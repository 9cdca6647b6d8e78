// Starts the real built server (dist/main.js) as a child process on a loopback port, with a temp data dir.
// Every test that starts one must stop it (stop() is idempotent and also runs from the registry in afterAll).
// The bench (bench/lib/server.ts) starts its servers here too, with the options marked "bench" below.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found upwards: this file also runs compiled into dist-bench/test/helpers/ for the bench. */
function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`cannot find the repository root above ${from}`);
  }
}

export const ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
export const ENTRY = path.join(ROOT, 'dist', 'main.js');

const dirs = new Set<string>();

/** A fresh temp dir, removed by killAll() once the servers using it are stopped. */
export function tempDir(prefix = 'sqlite-api-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

export interface Running {
  proc: ChildProcess;
  port: number;
  url: string;
  dbPath: string;
  /** Everything the process wrote to stdout/stderr so far. */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process ended. */
  exited: Promise<number | string>;
  /** SIGTERM (or the given signal) and wait for exit; SIGKILL after `killAfterMs` if given. */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<number | string>;
}

const live = new Set<Running>();

/** Kills anything a test forgot to stop (call from afterAll/afterEach). */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((r) => r.stop('SIGKILL')));
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

export interface StartOptions {
  env?: Record<string, string>;
  dbPath?: string;
  /** Milliseconds to wait for the "listening" log line. */
  timeoutMs?: number;
  /** Another entry script than the server's (e.g. the bench's probe), printing the same listening line. */
  entry?: string;
  /** bench: Node flags before the entry (--cpu-prof). */
  nodeArgs?: string[];
  /** bench: the environment to start from instead of this process's (the bench drops the servers' own variables). */
  baseEnv?: NodeJS.ProcessEnv;
  /**
   * bench: stdout and stderr go to this file instead of a pipe, and output() is its last 64 KB. The bench process
   * also runs the load generator; reading the access log through a pipe (~8 MB/s at 40k req/s) would take its CPU.
   */
  logFile?: string;
  /** Its own process group (with its Litestream): `process.kill(-pid, 'SIGSTOP')` freezes both, as a frozen container. */
  detached?: boolean;
}

/** Starts a server and waits until it listens. Rejects with its output if it exits first (or is killed, if it never listens). */
export async function startServer(opts: StartOptions = {}): Promise<Running> {
  const dbPath = opts.dbPath ?? path.join(tempDir(), 'app.db');
  const logFd = opts.logFile === undefined ? undefined : fs.openSync(opts.logFile, 'w');
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.entry ?? ENTRY], {
    cwd: ROOT,
    env: { ...(opts.baseEnv ?? process.env), PORT: '0', HOST: '127.0.0.1', DB_PATH: dbPath, LOG_LEVEL: 'info', ...opts.env },
    stdio: logFd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', logFd, logFd],
    detached: opts.detached ?? false,
  });
  let out = '';
  let output = () => out;
  if (logFd === undefined) {
    proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  } else {
    fs.closeSync(logFd);
    output = () => fileTail(opts.logFile!, 65_536);
  }
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  const running: Running = {
    proc,
    port: 0,
    url: '',
    dbPath,
    output,
    exited,
    async stop(signal = 'SIGTERM', killAfterMs) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const timer = killAfterMs === undefined ? undefined : setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
      const r = await exited;
      clearTimeout(timer);
      live.delete(running);
      return r;
    },
  };
  live.add(running);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const port = await new Promise<number>((resolve, reject) => {
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
      finish(() => reject(new Error(`server did not listen within ${timeoutMs} ms:\n${output()}`)));
    }, timeoutMs);
    const check = () => {
      const m = /"port":(\d+),"msg":"listening"/.exec(output());
      if (m) finish(() => resolve(Number(m[1])));
    };
    // A log file has no data events: poll it.
    const poll = logFd === undefined ? undefined : setInterval(check, 10);
    if (logFd === undefined) proc.stdout!.on('data', check);
    void exited.then((code) => finish(() => reject(new Error(`server exited (${code}) before listening:\n${output()}`))));
  });
  running.port = port;
  running.url = `http://127.0.0.1:${port}`;
  return running;
}

/** The last `max` bytes of a file ('' if it cannot be read). */
function fileTail(file: string, max: number): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, max);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      return buf.toString();
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** Runs the server entry to completion (for start-up failures): exit code and output. */
export async function runToExit(env: Record<string, string>, timeoutMs = 20_000): Promise<{ code: number | string; output: string }> {
  const proc = spawn(process.execPath, [ENTRY], { cwd: ROOT, env: { ...process.env, PORT: '0', HOST: '127.0.0.1', ...env } });
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | string>((resolve) => proc.on('exit', (c, s) => resolve(c ?? s ?? -1)));
  clearTimeout(timer);
  return { code, output: out };
}

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/** fetch with JSON in and out. */
export async function req(base: string, method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const r = await fetch(base + url, init);
  const text = await r.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: r.status, headers: r.headers, body: parsed, text };
}

/** Reads one sample from the Prometheus text at /metrics (sum over label sets when labels omitted). */
export async function metric(base: string, name: string, labels?: string): Promise<number> {
  const text = await (await fetch(base + '/metrics')).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (labels !== undefined && m[2] !== `{${labels}}`) continue;
    sum += Number(m[3]);
  }
  return sum;
}
