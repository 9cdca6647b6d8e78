// Starts the real built server (dist/main.js) as a child process on a loopback port, with a temp data dir.
// Every test that starts one must stop it (stop() is idempotent and also runs from the registry in afterAll).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Compiled into dist-bench/test/helpers when the bench imports it (bench/durability.ts): the repo is one further up.
const HERE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ROOT = path.basename(HERE_ROOT) === 'dist-bench' ? path.dirname(HERE_ROOT) : HERE_ROOT;
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
  /** SIGTERM (or the given signal) and wait for exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
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
}

/** Starts a server and waits until it listens. Rejects with its output if it exits first. */
export async function startServer(opts: StartOptions = {}): Promise<Running> {
  const dbPath = opts.dbPath ?? path.join(tempDir(), 'app.db');
  const proc = spawn(process.execPath, [opts.entry ?? ENTRY], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DB_PATH: dbPath, LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  const running: Running = {
    proc,
    port: 0,
    url: '',
    dbPath,
    output: () => out,
    exited,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const r = await exited;
      live.delete(running);
      return r;
    },
  };
  live.add(running);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen in time:\n${out}`)), opts.timeoutMs ?? 30_000);
    const check = () => {
      const m = /"port":(\d+),"msg":"listening"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    proc.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening:\n${out}`));
    });
  });
  running.port = port;
  running.url = `http://127.0.0.1:${port}`;
  return running;
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
