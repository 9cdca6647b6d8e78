// The benchmark harness still runs: `bench/run.ts --smoke` (built into dist-bench by pretest) starts ours and
// the baseline, runs a 2-second hot read and a tiny counter hammer against each, and writes its results.
// Numbers are not judged here, only that the harness measures something sane and the baseline is correct.
// The ceiling probe, which only the wrk cross-check runs, is checked on its own below.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSeedDb } from '../bench/lib/seed.js';
import { req, ROOT, startServer, tempDir } from './helpers/server.js';

const RUNNER = path.join(ROOT, 'dist-bench', 'bench', 'run.js');
const PROBE = path.join(ROOT, 'dist-bench', 'bench', 'probe', 'main.js');

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

describe('bench ceiling probe (bench/probe/main.ts)', () => {
  it('answers the cross-check routes over the seeded schema; concurrent creates and increments all commit', async () => {
    const dbPath = path.join(tempDir('bench-probe-'), 'app.db');
    createSeedDb(dbPath, 10);
    const s = await startServer({ entry: PROBE, dbPath, env: { SQLITE_SYNCHRONOUS: 'FULL' } });
    try {
      const one = await req(s.url, 'GET', '/products/3');
      expect(one.status).toBe(200);
      expect(one.body).toMatchObject({ id: 3, name: 'product 3' });
      expect((await req(s.url, 'GET', '/products/999')).status).toBe(404);
      expect((await req(s.url, 'GET', '/counters/c1')).body).toEqual({ name: 'c1', value: 0 });

      const created = await Promise.all(
        Array.from({ length: 40 }, (_, i) => req(s.url, 'POST', '/products', { name: `p${i}`, price: 1.5, stock: i })),
      );
      expect(created.map((r) => r.status)).toEqual(created.map(() => 200));
      expect(new Set(created.map((r) => r.body.id)).size).toBe(40);
      const last = await req(s.url, 'GET', `/products/${created[39]!.body.id}`);
      expect(last.body).toMatchObject({ name: 'p39', price: 1.5, stock: 39 });

      const incs = await Promise.all(Array.from({ length: 50 }, () => req(s.url, 'POST', '/counters/c1/increment', { by: 1 })));
      expect(incs.every((r) => r.status === 200)).toBe(true);
      expect((await req(s.url, 'GET', '/counters/c1')).body).toEqual({ name: 'c1', value: 50 });
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });
});
