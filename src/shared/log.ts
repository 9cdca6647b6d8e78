// Structured JSON logs (pino) on stdout. The access log (src/http/access-log.ts) writes its lines in the same
// format through stdoutLine().
import { isMainThread } from 'node:worker_threads';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Main thread: every line logged during one event-loop turn leaves in one write (see turnBufferedStdout). */
const stdout = isMainThread ? turnBufferedStdout() : null;

export function createLogger(level: string): Logger {
  const options = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  return stdout ? pino(options, stdout) : pino(options);
}

/**
 * Lines logged during one event-loop turn leave stdout in one write: at tens of thousands of requests a second,
 * a write(2) per access-log line would cost more than the request. What is buffered is written when the process
 * exits; a kill -9 loses at most the lines of the turn in progress.
 */
/**
 * Writes one ready-made log line the way the logger does (buffered per turn on the main thread); null on other
 * threads, which log only through pino.
 */
export const stdoutLine: ((line: string) => void) | null = stdout ? (line) => stdout.write(line) : null;

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
