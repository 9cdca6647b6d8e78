// Structured JSON logs (pino) on stdout, and the access log in the same format.
import { isMainThread } from 'node:worker_threads';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { AccessLogMode } from './config.js';

export type { Logger };

/** Main thread: every line logged during one event-loop turn leaves in one write (see turnBufferedStdout). */
const stdout = isMainThread ? turnBufferedStdout() : null;

export function createLogger(level: string): Logger {
  const options = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  return stdout ? pino(options, stdout) : pino(options);
}

export interface AccessEntry {
  reqId: string;
  method: string;
  route: string;
  status: number;
  ms: number;
}

/**
 * One line per answered request (`all`) or per request answered with a status >= 400 (`errors`), at info, in
 * pino's format, e.g.
 * {"level":30,"time":"…","pid":1,"component":"http","reqId":"…","method":"GET","route":"GET /products/:id","status":200,"ms":0.21,"msg":"request"}
 * Written by hand: pino's generic serialisation of the same line cost ~30% of a point read's throughput.
 * Every field is either ours (route), a number, or validated to need no JSON escaping (reqId, method).
 */
export function createAccessLog(log: Logger, mode: AccessLogMode): ((e: AccessEntry) => void) | null {
  if (mode === 'off' || !log.isLevelEnabled('info')) return null;
  const minStatus = mode === 'errors' ? 400 : 0;
  if (!stdout)
    return (e) => {
      if (e.status >= minStatus) log.info({ component: 'http', ...e }, 'request');
    };
  const head = `{"level":30,"time":"`;
  const mid = `","pid":${process.pid},"component":"http","reqId":"`;
  // The timestamp string is rebuilt once per millisecond, not per line.
  let lastMs = 0;
  let time = '';
  return (e) => {
    if (e.status < minStatus) return;
    const now = Date.now();
    if (now !== lastMs) time = new Date((lastMs = now)).toISOString();
    stdout.write(
      `${head}${time}${mid}${e.reqId}","method":"${e.method}","route":"${e.route}","status":${e.status},"ms":${e.ms},"msg":"request"}\n`,
    );
  };
}

/**
 * Lines logged during one event-loop turn leave stdout in one write: at tens of thousands of requests a second,
 * a write(2) per access-log line would cost more than the request. What is buffered is written when the process
 * exits; a kill -9 loses at most the lines of the turn in progress.
 */
function turnBufferedStdout(): DestinationStream {
  let lines: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (lines.length === 0) return;
    const text = lines.join('');
    lines = [];
    process.stdout.write(text);
  };
  process.on('exit', flush);
  return {
    write(line: string) {
      lines.push(line);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
  };
}
