// The benchmark suite (bench/scenarios/). Usually started through npm, which builds first:
//   npm run bench                    full suite (~10-15 min), writes bench/results/<stamp>.json, charts, bench/RESULTS.md
//   npm run bench -- --quick         reduced suite (~2 min)
//   npm run bench -- --wrk           only the wrk cross-check
//   npm run bench -- --only=hot-read,hammer
// Other flags: --smoke (tiny suite for the harness test), --out=DIR (results dir), --md / --no-md (write
// bench/RESULTS.md; default: only for a whole full or quick suite), --no-charts,
// --cpu-prof (servers run with node --cpu-prof; profiles in bench/results/tmp/<stamp>/, open in Chrome DevTools),
// --render=bench/results/<stamp>.json (rewrite that run's charts and bench/RESULTS.md without running anything),
// --env=READERS=1,WRITE_FLUSH_AT=8 (extra settings for every server of ours; a scenario's own settings win).
// Progress goes to stderr, one line per trial.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeCharts } from './lib/charts.js';
import { cpuTimes, describeMachine, stealShare } from './lib/machine.js';
import { RESULTS_DIR, RESULTS_MD } from './lib/paths.js';
import { renderMarkdown, type RunRecord } from './lib/report.js';
import { createSeedDb } from './lib/seed.js';
import { killAllServers, oursEnv, profiling } from './lib/server.js';
import type { Mode, ScenarioResult } from './lib/scenario.js';
import { defaultScenarioIds, runSuite, settingsFor } from './scenarios/index.js';

function parseArgs(argv: string[]) {
  const flags = new Map<string, string | true>();
  for (const a of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unknown argument ${a}`);
    flags.set(m[1]!, m[2] ?? true);
  }
  const known = ['quick', 'smoke', 'wrk', 'only', 'out', 'md', 'no-md', 'no-charts', 'cpu-prof', 'render', 'env'];
  for (const k of flags.keys()) if (!known.includes(k)) throw new Error(`unknown flag --${k} (known: ${known.map((x) => '--' + x).join(' ')})`);
  const mode: Mode = flags.has('smoke') ? 'smoke' : flags.has('quick') ? 'quick' : 'full';
  const only = flags.get('only');
  return {
    mode,
    only: typeof only === 'string' ? only.split(',').filter(Boolean) : flags.has('wrk') ? ['wrk'] : null,
    outDir: typeof flags.get('out') === 'string' ? path.resolve(flags.get('out') as string) : mode === 'smoke' ? null : RESULTS_DIR,
    // RESULTS.md describes a whole suite: partial runs (--only, --wrk) leave it alone unless --md is given.
    md: flags.has('md') || (!flags.has('no-md') && mode !== 'smoke' && !flags.has('only') && !flags.has('wrk')),
    charts: !flags.has('no-charts'),
    cpuProf: flags.has('cpu-prof'),
    render: typeof flags.get('render') === 'string' ? path.resolve(flags.get('render') as string) : null,
    env: parseEnv(flags.get('env')),
  };
}

function parseEnv(v: string | true | undefined): Record<string, string> {
  if (v === undefined) return {};
  if (v === true) throw new Error('--env needs NAME=value[,NAME=value...]');
  return Object.fromEntries(
    v.split(',').map((kv) => {
      const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(kv);
      if (!m) throw new Error(`--env: "${kv}" is not NAME=value`);
      return [m[1]!, m[2]!];
    }),
  );
}

function stamp(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '').replace('T', '-');
}

/** Charts and RESULTS.md again from a recorded run (after a change to the report). */
async function render(jsonPath: string): Promise<number> {
  const record = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as RunRecord;
  const name = path.basename(jsonPath, '.json');
  record.charts = await writeCharts(record.scenarios, path.dirname(jsonPath), name);
  fs.writeFileSync(jsonPath, JSON.stringify(record, null, 1) + '\n');
  writeResultsMd(renderMarkdown(record, path.relative(path.dirname(RESULTS_MD), jsonPath)));
  process.stderr.write(`report: ${RESULTS_MD} (from ${jsonPath})\n`);
  return 0;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.render) return render(args.render);
  const settings = settingsFor(args.mode);
  Object.assign(oursEnv, args.env);
  const t0 = Date.now();
  const progress = (line: string) => process.stderr.write(`[${String(Math.round((Date.now() - t0) / 1000)).padStart(4)} s] ${line}\n`);
  const machine = describeMachine();
  const stat0 = cpuTimes();
  const ids = args.only ?? defaultScenarioIds(args.mode, machine.wrk !== null);
  if (ids.includes('wrk') && machine.wrk === null) throw new Error('wrk is not installed (apt-get install wrk)');

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sqlite-bench-seed-'));
  const outDir = args.outDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sqlite-bench-results-'));
  fs.mkdirSync(outDir, { recursive: true });
  const seedPath = path.join(work, 'seed.db');
  createSeedDb(seedPath);
  progress(
    `${args.mode} run: ${ids.join(', ')}; ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, SQLite ${machine.sqlite}, ` +
      `commit ${machine.commit}${machine.dirty ? '+dirty' : ''}, load average ${machine.loadAvgStart.join(' ')}`,
  );

  const startedAt = new Date(t0);
  if (args.cpuProf) {
    profiling.dir = path.join(RESULTS_DIR, 'tmp', stamp(startedAt));
    fs.mkdirSync(profiling.dir, { recursive: true });
    progress(`CPU profiles: ${profiling.dir}`);
  }
  const failures: string[] = [];
  let scenarios: ScenarioResult[] = [];
  try {
    scenarios = await runSuite({ seedPath, settings, progress }, ids);
  } catch (err) {
    failures.push((err as Error).stack ?? String(err));
    progress(`FAILED: ${(err as Error).message}`);
  } finally {
    killAllServers();
  }

  const name = stamp(startedAt);
  const record: RunRecord = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    mode: args.mode,
    machine,
    loadAvgEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
    steal: stealShare(stat0, cpuTimes()),
    settings: {
      ...(JSON.parse(JSON.stringify(settings, (k, v: unknown) => (k === 'workloads' ? (v as { name: string }[]).map((w) => w.name) : v))) as Record<string, unknown>),
      oursEnv: args.env,
    },
    scenarios,
    charts: args.charts && scenarios.length > 0 ? await writeCharts(scenarios, outDir, name) : {},
    failures,
  };
  const jsonPath = path.join(outDir, `${name}.json`);
  fs.writeFileSync(jsonPath, JSON.stringify(record, null, 1) + '\n');
  progress(`results: ${jsonPath}`);
  for (const c of Object.values(record.charts)) progress(`chart:   ${path.join(outDir, c)}`);
  if (args.md) {
    writeResultsMd(renderMarkdown(record, path.relative(path.dirname(RESULTS_MD), jsonPath)));
    progress(`report:  ${RESULTS_MD}`);
  }
  fs.rmSync(work, { recursive: true, force: true });
  // The path of the JSON on stdout, for scripts and the harness test.
  process.stdout.write(jsonPath + '\n');
  return failures.length > 0 ? 1 : 0;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    killAllServers();
    process.exit(130);
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    killAllServers();
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);

/**
 * Sections other scripts or paired comparisons add below APPENDIX_MARK (bench:durability, the runtime upgrade's
 * before/after) describe other runs: a render of the suite keeps them.
 */
const APPENDIX_MARK = '<!-- appendix: kept when the suite re-renders this file -->';

function writeResultsMd(suite: string): void {
  const old = fs.existsSync(RESULTS_MD) ? fs.readFileSync(RESULTS_MD, 'utf8') : '';
  const at = old.indexOf(APPENDIX_MARK);
  fs.writeFileSync(RESULTS_MD, suite + '\n' + (at >= 0 ? `\n${old.slice(at)}` : ''));
}
