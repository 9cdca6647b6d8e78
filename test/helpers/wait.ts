// Polling instead of fixed sleeps: other jobs share this machine, so timings vary.
import type { Running } from './server.js';

/** Polls `cond` until it returns a truthy value; rejects with `what` after timeoutMs. */
export async function waitFor<T>(cond: () => T | Promise<T>, what: string, timeoutMs = 10_000, everyMs = 10): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Waits until the server's output matches `re`; returns the match. */
export async function waitForOutput(server: Running, re: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> {
  try {
    return await waitFor(() => re.exec(server.output()), `output matching ${re}`, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- server output ---\n${server.output()}`);
  }
}

/** The parsed JSON log lines (pino) the server printed whose msg equals `msg`. */
export function logLines(server: Running, msg: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of server.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (o.msg === msg) out.push(o);
    } catch {
      // not a log line
    }
  }
  return out;
}
