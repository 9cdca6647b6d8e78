// One trial: a fresh copy of the seed database, a fresh server process, an optional warm-up, the measured
// load with the server's metrics scraped before and after, optional checks, then stop and clean up.
import type { LoadResult, LoadSpec } from './load.js';
import { cpuTimes, stealShare } from './machine.js';
import { runLoad } from './load.js';
import { freshDbCopy, startServer, type RunningServer, type ServerKind } from './server.js';
import { cpuByRole, threadCpuSeconds, threadRoles } from './threads.js';

/** Metrics read before and after every measured run. */
export const SCRAPED = [
  'sqlite_busy_retries_total',
  'baseline_busy_errors_total',
  'overloaded_rejections_total',
  'writer_batch_size_sum',
  'writer_batch_size_count',
] as const;
export type Scraped = Record<(typeof SCRAPED)[number], number>;

export async function scrapeMetrics(base: string): Promise<Scraped> {
  const text = await (await fetch(base + '/metrics')).text();
  const out = Object.fromEntries(SCRAPED.map((n) => [n, 0])) as Scraped;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (m && m[1]! in out) out[m[1] as keyof Scraped] += Number(m[3]);
  }
  return out;
}

export interface TrialSpec {
  server: ServerKind;
  /** Extra server environment (on top of PORT/HOST/DB_PATH/LOG_LEVEL). */
  env?: Record<string, string>;
  warmup?: LoadSpec;
  load: LoadSpec;
  /** Runs after the measured load, against the still-running server. */
  check?: (server: RunningServer, load: LoadResult) => Promise<Record<string, unknown>>;
  /** Instead of autocannon (e.g. wrk): runs the measurement itself. */
  custom?: (server: RunningServer) => Promise<LoadResult>;
}

export interface TrialResult extends LoadResult {
  server: ServerKind;
  env: Record<string, string>;
  busyRetries: { before: number; after: number };
  busyErrors: { before: number; after: number };
  overloaded: number;
  /** Mean commands per writer transaction during the run (ours only). */
  meanBatch: number | null;
  /** Cores the server process used on average during the run. */
  serverCores: number;
  /** CPU seconds per thread role during the measured load (bench/lib/threads.ts): main, writer, checkpointer, libuv, other. */
  threadSeconds: Record<string, number>;
  /** The kernel's part of threadSeconds (syscalls, wake-ups, page faults); absent in runs before 2026-12-03 22:30. */
  threadSystemSeconds?: Record<string, number>;
  checks: Record<string, unknown>;
  /** Spawn to "listening", and SIGTERM to exit (ours drains and checkpoints the WAL), in ms. */
  startupMs: number;
  shutdownMs: number;
  /** The server's process id (names its --cpu-prof files). */
  pid: number;
  /** The share of the machine's CPU time stolen by the hypervisor during the measured load (null off Linux). */
  steal: number | null;
}

export async function runTrial(seedPath: string, spec: TrialSpec): Promise<TrialResult> {
  const db = freshDbCopy(seedPath);
  let server: RunningServer | null = null;
  let result: Omit<TrialResult, 'shutdownMs'>;
  let shutdownMs = NaN;
  try {
    const tStart = performance.now();
    server = await startServer({ kind: spec.server, dbPath: db.dbPath, env: spec.env ?? {} });
    const startupMs = performance.now() - tStart;
    if (spec.warmup) await runLoad(server.url, spec.warmup);
    const before = await scrapeMetrics(server.url);
    const cpu0 = server.cpuSeconds();
    const threads0 = threadCpuSeconds(server.pid);
    const t0 = performance.now();
    const stat0 = cpuTimes();
    const load = spec.custom ? await spec.custom(server) : await runLoad(server.url, spec.load);
    const serverCores = (server.cpuSeconds() - cpu0) / ((performance.now() - t0) / 1000);
    const steal = stealShare(stat0, cpuTimes());
    const threads1 = threadCpuSeconds(server.pid);
    const roles = threadRoles(server.pid, server.output());
    const threadSeconds = cpuByRole(threads0, threads1, roles);
    const threadSystemSeconds = cpuByRole(threads0, threads1, roles, 'system');
    const after = await scrapeMetrics(server.url);
    const checks = spec.check ? await spec.check(server, load) : {};
    const batches = after.writer_batch_size_count - before.writer_batch_size_count;
    result = {
      ...load,
      server: spec.server,
      env: spec.env ?? {},
      busyRetries: { before: before.sqlite_busy_retries_total, after: after.sqlite_busy_retries_total },
      busyErrors: { before: before.baseline_busy_errors_total, after: after.baseline_busy_errors_total },
      overloaded: after.overloaded_rejections_total - before.overloaded_rejections_total,
      meanBatch: batches > 0 ? (after.writer_batch_size_sum - before.writer_batch_size_sum) / batches : null,
      serverCores,
      threadSeconds,
      threadSystemSeconds,
      checks,
      startupMs,
      pid: server.pid,
      steal,
    };
  } catch (err) {
    if (server) (err as Error).message += `\n--- ${spec.server} server output (tail) ---\n${server.output().slice(-4000)}`;
    throw err;
  } finally {
    const tStop = performance.now();
    if (server) {
      const code = await server.stop();
      if (code !== 0) process.stderr.write(`  warning: ${spec.server} server exited with ${code}\n${server.output().slice(-2000)}\n`);
    }
    shutdownMs = performance.now() - tStop;
    db.remove();
  }
  return { ...result, shutdownMs };
}
