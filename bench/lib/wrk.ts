// One wrk run (C load generator, ~9 us CPU per request against autocannon's ~23 us), reported in the same
// shape as an autocannon run. wrk's own summary comes out of bench/wrk/report.lua as one JSON line.
import { execFileSync, spawn } from 'node:child_process';
import type { LoadResult } from './load.js';
import { WRK_DIR } from './paths.js';
import { procCpuSeconds } from './server.js';

export function wrkVersion(): string | null {
  try {
    const out = execFileSync('wrk', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return /wrk\s+(\S+)/.exec(out)?.[1] ?? 'unknown';
  } catch (err) {
    // `wrk -v` prints its version and exits non-zero.
    const out = String((err as { stdout?: unknown }).stdout ?? '');
    if (/wrk\s/.test(out)) return /wrk\s+(\S+)/.exec(out)?.[1] ?? 'unknown';
    return null;
  }
}

export interface WrkSpec {
  connections: number;
  durationS: number;
  /** Lua script in bench/wrk (report.lua for a plain GET). */
  script: string;
  path: string;
}

export async function runWrk(base: string, spec: WrkSpec): Promise<LoadResult> {
  const args = ['-t1', `-c${spec.connections}`, `-d${spec.durationS}s`, '--timeout', '10s', '-s', spec.script, base + spec.path];
  const proc = spawn('wrk', args, { cwd: WRK_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
  // wrk's CPU time, sampled until it exits (the last sample is at most 100 ms short).
  let cpu = 0;
  const t0 = performance.now();
  const sampler = setInterval(() => {
    const c = procCpuSeconds(proc.pid!);
    if (Number.isFinite(c)) cpu = c;
  }, 100);
  const code = await new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
  clearInterval(sampler);
  const wall = (performance.now() - t0) / 1000;
  const line = /WRK_JSON (\{.*\})/.exec(out)?.[1];
  if (code !== 0 || !line) throw new Error(`wrk failed (exit ${code}): wrk ${args.join(' ')}\n${out}`);
  const r = JSON.parse(line) as Record<string, number>;
  const elapsedS = r.duration_us! / 1e6;
  const errors = r.connect! + r.read! + r.write! + r.timeout!;
  return {
    connections: spec.connections,
    elapsedS,
    responses: r.requests!,
    rps: r.requests! / elapsedS,
    ok2xx: r.requests! - r.status!,
    non2xx: r.status!,
    status: {},
    errors,
    timeouts: r.timeout!,
    latencyMs: { p50: r.p50! / 1000, p90: r.p90! / 1000, p99: r.p99! / 1000, p999: r.p999! / 1000, max: r.max! / 1000, mean: r.mean! / 1000 },
    generatorCores: cpu / wall,
  };
}
