// The benchmark harness still runs: `bench/run.ts --smoke` (built into dist-bench by pretest) starts ours and
// the baseline, runs a 2-second hot read and a tiny counter hammer against each, and writes its results.
// Numbers are not judged here, only that the harness measures something sane and the baseline is correct.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers/server.js';

const RUNNER = path.join(ROOT, 'dist-bench', 'bench', 'run.js');

interface Row {
  params: Record<string, string | number>;
  result: {
    responses: number;
    rps: number;
    ok2xx: number;
    non2xx: number;
    errors: number;
    latencyMs: { p50: number; p99: number; max: number };
    busyRetries: { before: number; after: number };
    checks: Record<string, unknown>;
  };
}
interface Run {
  mode: string;
  machine: { cores: number; node: string; sqlite: string; commit: string };
  scenarios: { id: string; rows: Row[] }[];
  charts: Record<string, string>;
  failures: string[];
}

const out = tempDir('bench-smoke-');
afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

function runSmoke(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [RUNNER, '--smoke', `--out=${out}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('bench harness (smoke)', () => {
  it('runs a short hot read and a tiny exact counter hammer against ours and the baseline', async () => {
    const r = await runSmoke();
    expect(r.code, r.stderr).toBe(0);
    const jsonPath = r.stdout.trim().split('\n').at(-1)!;
    expect(path.dirname(jsonPath)).toBe(out);
    const run = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as Run;

    expect(run.mode).toBe('smoke');
    expect(run.failures).toEqual([]);
    expect(run.machine.cores).toBeGreaterThan(0);
    expect(run.machine.sqlite).toMatch(/^\d+\.\d+\.\d+$/);
    // Progress: one line per trial on stderr.
    expect(r.stderr).toMatch(/hot-read ours .* req\/s/);

    const hot = run.scenarios.find((s) => s.id === 'hot-read')!;
    expect(hot.rows.map((x) => x.params.server).sort()).toEqual(['baseline', 'ours']);
    for (const { result } of hot.rows) {
      expect(result.responses).toBeGreaterThan(0);
      expect(result.ok2xx).toBe(result.responses);
      expect(result.non2xx).toBe(0);
      expect(result.errors).toBe(0);
      expect(result.rps).toBeGreaterThan(0);
      expect(result.latencyMs.p50).toBeGreaterThan(0);
      expect(result.latencyMs.p99).toBeGreaterThanOrEqual(result.latencyMs.p50);
      expect(result.busyRetries.after).toBeGreaterThanOrEqual(result.busyRetries.before);
    }

    const hammer = run.scenarios.find((s) => s.id === 'hammer')!;
    expect(hammer.rows).toHaveLength(2);
    for (const { params, result } of hammer.rows) {
      expect(result.checks, String(params.server)).toMatchObject({ expected: 100, finalValue: 100, exact: true });
      expect(result.ok2xx).toBe(100);
    }

    const chart = path.join(out, run.charts.summary!);
    expect(fs.readFileSync(chart, 'utf8')).toMatch(/^<svg/);
  });
});
