// Litestream's output into our logs, line by line, and one-shot runs of the litestream CLI with a deadline.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { Logger } from '../shared/log.js';

type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** slog level names (JSON handler: "INFO"; text handler: level=INFO; trace is slog's "DEBUG-4"). */
function levelOf(name: string | undefined, fallback: Level): Level {
  const n = (name ?? '').toUpperCase();
  if (n.startsWith('DEBUG-')) return 'trace';
  if (n === 'DEBUG') return 'debug';
  if (n === 'INFO') return 'info';
  if (n === 'WARN' || n === 'WARNING') return 'warn';
  if (n === 'ERROR') return 'error';
  return fallback;
}

/**
 * Logs one line Litestream printed. `replicate` logs JSON (litestream.yml sets `logging.type: json`): its fields
 * are kept. `restore` always logs slog text (`time=... level=INFO msg="..."`) and errors go to stderr as
 * `Error: ...`: those are logged as text, at their level or, from stderr, as warnings.
 */
export function logLitestreamLine(log: Logger, line: string, from: 'stdout' | 'stderr'): void {
  if (line.trim() === '') return;
  const fallback: Level = from === 'stderr' ? 'warn' : 'info';
  if (line.startsWith('{')) {
    try {
      const { time: _time, level, msg, ...fields } = JSON.parse(line) as Record<string, unknown>;
      log[levelOf(typeof level === 'string' ? level : undefined, fallback)](fields, `litestream: ${String(msg ?? '')}`);
      return;
    } catch {
      // not JSON after all: log it as text
    }
  }
  const text = /\blevel=(\S+)/.exec(line);
  log[levelOf(text?.[1], fallback)]({ line }, 'litestream output');
}

/** Calls `onLine` for every complete line of `stream` (and the unterminated tail at its end). */
export function eachLine(stream: Readable, onLine: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  stream.on('end', () => {
    if (buf) onLine(buf);
    buf = '';
  });
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Killed at the deadline. */
  timedOut: boolean;
  ms: number;
}

/** What to say when the binary itself is missing. */
export function notFoundMessage(bin: string): string {
  return (
    `cannot run Litestream: LITESTREAM_BIN=${JSON.stringify(bin)} was not found. Install the pinned version with ` +
    '`go install github.com/benbjohnson/litestream/cmd/litestream@$(cat .litestream-version)` and put $(go env GOPATH)/bin on PATH'
  );
}

/** Spawns `bin` and rejects with a clear message if it cannot be started at all (ENOENT, EACCES). */
export function spawnChecked(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    // Its own process group: a Ctrl-C or a signal to our group must not stop Litestream behind the server's back
    // (it would shut down in parallel with the ordered drain). The server alone stops it, and kills it on exit.
    const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.once('spawn', () => resolve(child));
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(new Error(err.code === 'ENOENT' ? notFoundMessage(bin) : `cannot start ${bin}: ${err.message}`));
    });
  });
}

/**
 * Runs a litestream CLI command to completion, logging its output. SIGKILLs it at the deadline: the GCS
 * client retries a refused connection forever, so a deadline is the only way to tell "unreachable".
 */
export async function runLitestream(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  log: Logger,
  opts: { logStderr?: boolean } = {},
): Promise<RunResult> {
  const t0 = performance.now();
  const child = await spawnChecked(bin, args, env);
  let stdout = '';
  let stderr = '';
  // -json prints one JSON document over several lines on stdout: keep stdout whole, log stderr line by line.
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  eachLine(child.stderr!, (line) => {
    stderr += line + '\n';
    if (opts.logStderr !== false) logLitestreamLine(log, line, 'stderr');
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once('close', (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  return { code, signal, stdout, stderr, timedOut, ms: Math.round(performance.now() - t0) };
}

/** The last `Error: ...` line litestream printed, or its last line. */
export function lastError(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const err = [...lines].reverse().find((l) => l.startsWith('Error:'));
  return (err ?? lines.at(-1) ?? '(no output)').replace(/^Error:\s*/, '');
}
