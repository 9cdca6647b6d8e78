// bench/RESULTS.md from one run: machine, method, headline with ratios, targets, one table per scenario.
import fs from 'node:fs';
import { ANALYSIS_MD } from './paths.js';
import type { Machine } from './machine.js';
import type { Row, ScenarioResult, Settings } from './suite.js';
import type { TrialResult } from './trial.js';

export interface RunRecord {
  startedAt: string;
  finishedAt: string;
  mode: Settings['mode'];
  machine: Machine;
  loadAvgEnd: number[];
  settings: Record<string, unknown>;
  scenarios: ScenarioResult[];
  charts: Record<string, string>;
  failures: string[];
}

const num = (n: number | undefined, d = 0) =>
  n === undefined || !Number.isFinite(n) ? '-' : n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const ms = (n: number) => (n >= 100 ? num(n, 0) : n >= 10 ? num(n, 1) : num(n, 2));
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? '-' : `${num(a / b, a / b >= 10 ? 0 : 2)}x`;
const percent = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? '-' : `${num((100 * a) / b)}%`;
const busyDelta = (r: TrialResult) => r.busyRetries.after - r.busyRetries.before;
const busyErrDelta = (r: TrialResult) => r.busyErrors.after - r.busyErrors.before;

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  // Right-align the columns whose cells are all figures.
  const figure = /^(-|[-\d.,]+\*?(x| ms|%)?|[\d,]+ → [\d,]+)?$/;
  const numeric = head.map((_, i) => rows.some((r) => /^\d/.test(r[i] ?? '')) && rows.every((r) => figure.test(r[i] ?? '')));
  return [line(head), line(numeric.map((n) => (n ? '---:' : '---'))), ...rows.map(line)].join('\n');
}

function find(s: ScenarioResult | undefined, match: Record<string, string | number>): TrialResult | undefined {
  return s?.rows.find((r) => Object.entries(match).every(([k, v]) => r.params[k] === v))?.result;
}

/** Rows grouped by their params other than `server`, in first-seen order. */
function groups(s: ScenarioResult): { key: string; rows: Row[] }[] {
  const out: { key: string; rows: Row[] }[] = [];
  for (const row of s.rows) {
    const key = Object.entries(row.params)
      .filter(([k]) => k !== 'server')
      .map(([k, v]) => (k === 'rate' ? `${num(Number(v))} req/s` : k === 'phase' || k === 'case' ? String(v) : `${k} ${String(v)}`))
      .join(', ');
    let g = out.find((x) => x.key === key);
    if (!g) out.push((g = { key, rows: [] }));
    g.rows.push(row);
  }
  return out;
}

function checksCell(r: TrialResult): string {
  const c = r.checks;
  const parts: string[] = [];
  if ('exact' in c) parts.push(`${c.exact ? 'exact' : '**NOT EXACT**'}: ${num(Number(c.finalValue))} / ${num(Number(c.expected))}`);
  if ('held' in c) parts.push(c.held ? 'held' : 'not held');
  return parts.join('; ');
}

function compareTable(s: ScenarioResult): string {
  const hasChecks = s.rows.some((r) => Object.keys(r.result.checks).length > 0);
  const paced = s.rows.some((r) => r.result.serviceLatencyMs !== undefined);
  const probed = s.rows.some((r) => r.params.server === 'probe');
  const head = ['case', 'server', 'req/s', 'ours/baseline', ...(probed ? ['ours/probe'] : []), 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', '2xx', 'non-2xx', 'errors', 'BUSY retries', 'BUSY failures', 'CPU server', 'server us/req', 'CPU loadgen'];
  if (paced) head.splice(8, 0, 'p50 ms from send', 'p99 ms from send');
  if (hasChecks) head.push('check');
  const rows: string[][] = [];
  for (const g of groups(s)) {
    const base = g.rows.find((r) => r.params.server === 'baseline')?.result;
    const probe = g.rows.find((r) => r.params.server === 'probe')?.result;
    for (const row of g.rows) {
      const r = row.result;
      const cells = [
        g.key || '-',
        String(row.params.server),
        num(r.rps),
        row.params.server === 'ours' ? ratio(r.rps, base?.rps) : '',
        ...(probed ? [row.params.server === 'ours' ? percent(r.rps, probe?.rps) : ''] : []),
        ms(r.latencyMs.p50),
        ms(r.latencyMs.p90),
        ms(r.latencyMs.p99),
        ms(r.latencyMs.max),
        ...(paced ? [ms(r.serviceLatencyMs?.p50 ?? NaN), ms(r.serviceLatencyMs?.p99 ?? NaN)] : []),
        num(r.ok2xx),
        num(r.non2xx),
        num(r.errors),
        `${num(r.busyRetries.before)} → ${num(r.busyRetries.after)}`,
        row.params.server === 'baseline' ? num(busyErrDelta(r)) : '-',
        num(r.serverCores, 2),
        num((1e6 * r.serverCores) / r.rps, 1),
        num(r.generatorCores, 2) + (r.generatorCores >= SATURATED ? '*' : ''),
      ];
      if (hasChecks) cells.push(checksCell(r));
      rows.push(cells);
    }
  }
  return table(head, rows) + saturationNote(s);
}

/** A load generator using about a whole core is likely measuring its own ceiling. */
const SATURATED = 0.9;
function saturationNote(s: ScenarioResult): string {
  return s.rows.some((r) => r.result.generatorCores >= SATURATED)
    ? '\n\n\\* The load generator used about a whole core: that figure may be its own ceiling rather than the server\'s.'
    : '';
}

function sweepTable(s: ScenarioResult): string {
  const head = ['SQLITE_SYNCHRONOUS', 'WRITE_BATCH_MAX', 'WRITE_BATCH_WAIT_MS', 'req/s', 'vs max=1', 'p50 ms', 'p99 ms', 'max ms', 'mean batch', 'non-2xx', 'errors', 'CPU server'];
  const rows = s.rows.map(({ params: p, result: r }) => {
    const control = find(s, { sync: p.sync!, batchMax: 1, waitMs: p.waitMs! });
    return [
      String(p.sync),
      num(Number(p.batchMax)),
      String(p.waitMs),
      num(r.rps),
      ratio(r.rps, control?.rps),
      ms(r.latencyMs.p50),
      ms(r.latencyMs.p99),
      ms(r.latencyMs.max),
      num(r.meanBatch ?? NaN, 1),
      num(r.non2xx),
      num(r.errors),
      num(r.serverCores, 2),
    ];
  });
  return table(head, rows);
}

function readersTable(s: ScenarioResult): string {
  const head = ['workload', 'READERS', 'req/s', 'vs READERS=0', 'p50 ms', 'p99 ms', 'max ms', 'non-2xx', 'errors', 'CPU server', 'CPU loadgen'];
  const rows = s.rows.map(({ params: p, result: r }) => {
    const inline = find(s, { workload: p.workload!, readers: 0 });
    return [
      String(p.workload),
      String(p.readers),
      num(r.rps),
      ratio(r.rps, inline?.rps),
      ms(r.latencyMs.p50),
      ms(r.latencyMs.p99),
      ms(r.latencyMs.max),
      num(r.non2xx),
      num(r.errors),
      num(r.serverCores, 2),
      num(r.generatorCores, 2) + (r.generatorCores >= SATURATED ? '*' : ''),
    ];
  });
  return table(head, rows) + saturationNote(s);
}

interface Headline {
  label: string;
  ours?: number;
  baseline?: number;
  unit: 'req/s' | 'ms' | 'count';
  note?: string;
}

function headlines(scn: ScenarioResult[]): Headline[] {
  const by = (id: string) => scn.find((s) => s.id === id);
  const out: Headline[] = [];
  const pair = (label: string, id: string, match: Record<string, string | number>, unit: Headline['unit'] = 'req/s', pick = (r: TrialResult) => r.rps) => {
    const o = find(by(id), { ...match, server: 'ours' });
    const b = find(by(id), { ...match, server: 'baseline' });
    if (o || b) out.push({ label, ours: o && pick(o), baseline: b && pick(b), unit });
  };
  pair('Hot read GET /counters/c1', 'hot-read', {});
  const hammer = by('hammer');
  for (const phase of new Set(hammer?.rows.map((r) => String(r.params.phase)))) {
    const o = find(hammer, { phase, server: 'ours' });
    const b = find(hammer, { phase, server: 'baseline' });
    out.push({
      label: `Counter hammer ${phase}: increments/s`,
      ours: o?.rps,
      baseline: b?.rps,
      unit: 'req/s',
      note: `exact: ours ${o?.checks.exact ? 'yes' : 'NO'}, baseline ${b?.checks.exact ? 'yes' : 'NO'}`,
    });
  }
  pair('CRUD mix', 'crud-mix', {});
  const fr = by('fixed-rate');
  if (fr) {
    const first = fr.rows[0]?.params.rate;
    if (first !== undefined) {
      pair(`Fixed ${num(Number(first))} req/s CRUD mix: p99`, 'fixed-rate', { rate: first }, 'ms', (r) => r.latencyMs.p99);
      out.at(-1)!.note = 'latency: lower is better; counted from when each request was due';
    }
    out.push({
      label: 'Highest fixed rate held (0 errors, p99 <= 50 ms)',
      ours: Number(fr.summary.highestHeld_ours ?? NaN),
      baseline: Number(fr.summary.highestHeld_baseline ?? NaN),
      unit: 'req/s',
      note: `steps tried up to ${num(Math.max(...fr.rows.map((r) => Number(r.params.rate))))} req/s`,
    });
  }
  pair('Durable writes POST /products (FULL)', 'max-write', { sync: 'FULL' });
  pair('Writes POST /products (NORMAL)', 'max-write', { sync: 'NORMAL' });
  pair('Reads GET /products/{id}', 'max-read', {});
  const w = by('wrk');
  for (const c of new Set(w?.rows.map((r) => String(r.params.case)))) pair(`wrk: ${c}`, 'wrk', { case: c });
  return out;
}

interface Target {
  label: string;
  measured: string;
  met: boolean | null;
}

function targets(scn: ScenarioResult[]): Target[] {
  const by = (id: string) => scn.find((s) => s.id === id);
  const t: Target[] = [];
  // Throughput targets are judged with each generator (the probes behind them used wrk); met if either meets it.
  const both = (id: string, params: Record<string, string | number>, wrkCase: string) =>
    [
      { gen: 'autocannon', o: find(by(id), { ...params, server: 'ours' }), b: find(by(id), { ...params, server: 'baseline' }) },
      { gen: 'wrk', o: find(by('wrk'), { case: wrkCase, server: 'ours' }), b: find(by('wrk'), { case: wrkCase, server: 'baseline' }) },
    ].filter((x) => x.o !== undefined) as { gen: string; o: TrialResult; b: TrialResult | undefined }[];
  // The bare probe under wrk in this session: the ceiling the absolute targets were taken from.
  const ceiling = (wrkCase: string) => {
    const p = find(by('wrk'), { case: wrkCase, server: 'probe' });
    const o = find(by('wrk'), { case: wrkCase, server: 'ours' });
    return p ? `; bare probe (wrk): ${num(p.rps)} req/s, ours ${percent(o?.rps, p.rps)} of it` : '';
  };
  const writes = both('max-write', { sync: 'FULL' }, 'write FULL');
  if (writes.length)
    t.push({
      label: 'Durable writes (FULL, POST /products) >= 35k req/s and >= 10x baseline',
      measured: writes.map(({ gen, o, b }) => `${gen}: ${num(o.rps)} req/s, ${ratio(o.rps, b?.rps)} baseline`).join('; ') + ceiling('write FULL'),
      met: writes.some(({ o, b }) => o.rps >= 35_000 && b !== undefined && o.rps >= 10 * b.rps),
    });
  const reads = both('max-read', {}, 'read by id');
  if (reads.length)
    t.push({
      label: 'Reads (GET /products/{id}) >= 40k req/s and not slower than baseline',
      measured: reads.map(({ gen, o, b }) => `${gen}: ${num(o.rps)} req/s, ${ratio(o.rps, b?.rps)} baseline`).join('; ') + ceiling('read by id'),
      met: reads.some(({ o, b }) => o.rps >= 40_000 && b !== undefined && o.rps >= b.rps),
    });
  const hammer = by('hammer');
  const ho = hammer?.rows.filter((r) => r.params.server === 'ours').at(-1)?.result;
  if (ho)
    t.push({
      label: 'Counter hammer >= 45k increments/s, exact',
      measured:
        `${num(ho.rps)} increments/s, ${ho.checks.exact ? 'exact' : 'NOT exact'} (${String(hammer!.rows.at(-1)!.params.phase)})` +
        (find(by('wrk'), { case: 'increment FULL', server: 'ours' })
          ? `; wrk -c64: ${num(find(by('wrk'), { case: 'increment FULL', server: 'ours' })!.rps)} increments/s`
          : '') +
        ceiling('increment FULL'),
      met: ho.rps >= 45_000 && ho.checks.exact === true,
    });
  const fr = by('fixed-rate');
  const f5 = fr?.rows.find((r) => r.params.server === 'ours' && r.params.rate === 5000)?.result;
  if (f5)
    t.push({
      label: 'Fixed 5,000 req/s CRUD mix: p99 <= 5 ms, zero non-2xx',
      measured: `p99 ${ms(f5.latencyMs.p99)} ms, non-2xx ${f5.non2xx}, errors ${f5.errors}`,
      met: f5.latencyMs.p99 <= 5 && f5.non2xx === 0 && f5.errors === 0,
    });
  if (fr) {
    const held = Number(fr.summary.highestHeld_ours ?? 0);
    const tried = Math.max(...fr.rows.filter((r) => r.params.server === 'ours').map((r) => Number(r.params.rate)));
    t.push({
      label: 'Highest fixed rate held (0 errors, p99 < 50 ms) >= 35k req/s',
      measured: `${num(held)} req/s (highest step tried ${num(tried)})`,
      met: held >= 35_000 ? true : tried < 35_000 && held === tried ? null : false,
    });
  }
  return t;
}

export function renderMarkdown(run: RunRecord, jsonFile: string): string {
  const m = run.machine;
  const quick = run.mode !== 'full';
  const out: string[] = [];
  out.push('# Benchmark results', '');
  out.push('Generated by `npm run bench` (bench/run.ts); do not edit by hand. Raw data: `' + jsonFile + '`.', '');
  if (quick) {
    out.push(
      `> **Mode: ${run.mode}.** Short trials and a reduced sweep: indicative only. Run \`npm run bench\` (about 10-15 minutes) on an otherwise idle machine for the figures to quote.`,
      '',
    );
  }
  out.push(
    table(
      ['', ''],
      [
        ['Run', `${run.startedAt} to ${run.finishedAt} (${run.mode})`],
        ['Commit', `${m.commit}${m.dirty ? ' (work tree had uncommitted changes)' : ''}`],
        ['CPU', `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB`],
        ['OS', m.os],
        ['Node', m.node],
        ['SQLite', `${m.sqlite} (better-sqlite3 ${m.packages['better-sqlite3']})`],
        ['HTTP', `uWebSockets.js ${m.packages['uWebSockets.js']}`],
        ['Load generators', `autocannon ${m.packages.autocannon} (in the harness process)${m.wrk ? `, wrk ${m.wrk} (-t1)` : ', wrk not installed'}`],
        ['Load average', `${m.loadAvgStart.join(' ')} at start, ${run.loadAvgEnd.join(' ')} at the end`],
      ],
    ),
    '',
  );
  out.push(
    `> The load generator runs on the same ${m.cores} cores as the server it measures, so every absolute figure here is lower than the server alone would reach, ` +
      'and the generator\'s own CPU ("CPU loadgen", in cores) is part of the picture: autocannon costs ~23 us of CPU per request and tops out near 43k req/s on one core, wrk ~9 us. ' +
      'Nothing is pinned. Compare the two designs within one run (the ratios), not across machines or runs. A load average well above 0 at the start means something else was running.',
    '',
  );
  out.push('## Method', '');
  out.push(
    '- **Data**: one seeded database (the server\'s own migrations, 10,000 products with ids 1-10,000, counter `c1` = 0) copied fresh for every trial; a fresh server process per trial on a loopback port chosen by the OS (read from its `listening` log line).',
    `- **Trial**: ${num(Number(run.settings.warmupS), 1)} s warm-up (discarded), then the measured load (${num(Number(run.settings.durationS))} s unless a scenario says otherwise); \`/metrics\` scraped before and after. Latencies are client-side, per response, at microsecond resolution (autocannon's own histogram rounds to whole ms), over every response.`,
    '- **Ours**: `dist/main.js` with its defaults for this machine unless a scenario sets an env var (READERS defaults to 0 = inline reads on fewer than 4 cores; WRITE_BATCH_MAX 512, WRITE_BATCH_WAIT_MS 0, WRITE_FLUSH_AT 16, SQLITE_SYNCHRONOUS NORMAL, ACCESS_LOG errors, CHECKPOINT_INTERVAL_MS 50: a checkpointer thread beside the writer), no replication. The servers\' own variables are dropped from the inherited environment, so only what a scenario sets applies.' +
      (Object.keys((run.settings.oursEnv as Record<string, string> | undefined) ?? {}).length
        ? ` **This run set for ours:** ${Object.entries(run.settings.oursEnv as Record<string, string>).map(([k, v]) => `\`${k}=${v}\``).join(', ')} (\`--env\`).`
        : ''),
    '- **Baseline** (`bench/baseline/`): the common design, built honestly: the same uWS routes, zod validation, error replies, metrics and SQL statements (imported from `src/`), but 4 worker threads each with its own read-write better-sqlite3 connection (WAL, busy_timeout 5000, same SQLITE_SYNCHRONOUS), every request its own transaction (`BEGIN IMMEDIATE` for writes) on the least busy thread, retried up to 5 times with backoff on SQLITE_BUSY/LOCKED. `BUSY retries` is `sqlite_busy_retries_total` before → after; `BUSY failures` is `baseline_busy_errors_total` (requests that failed after every retry).',
    '- **Probe** (`bench/probe/main.ts`, wrk cross-check only): the bare single-thread uWS + better-sqlite3 server the targets were measured with, rebuilt: no validation, metrics, logs or threads; writes group-committed per event-loop turn on the main thread. It is this machine\'s ceiling in this session; "ours/probe" says how much of it this server keeps.',
    '- **Fixed rate**: autocannon\'s `overallRate` lets each connection send its whole per-second budget in a burst at the start of every second; the harness instead follows an open-loop schedule (request k due at start + k/rate, released by a 1 ms timer, like wrk2) and counts latency from when each request was due, so a stall cannot hide behind requests never sent (coordinated omission); the 1 ms timer adds up to ~1 ms to these latencies. "from send" columns are the plain service latencies. A step is *held* when it has zero errors and non-2xx, p99 (from due) <= 50 ms and the achieved rate is at least 97% of the target.',
    '- **CPU**: server = the server process\'s CPU time over the run (all threads, user + system) in cores; "server us/req" = that CPU time per response, in microseconds; loadgen = the load generator\'s.',
    '',
  );

  out.push('## Headline', '');
  out.push(
    table(
      ['', 'ours', 'baseline', 'ours/baseline', 'note'],
      headlines(run.scenarios).map((h) => {
        const f = (v?: number) => (h.unit === 'ms' ? (v === undefined ? '-' : `${ms(v)} ms`) : num(v));
        const r = ratio(h.ours, h.baseline);
        return [h.label, f(h.ours), f(h.baseline), r, h.note ?? ''];
      }),
    ),
    '',
  );
  const tg = targets(run.scenarios);
  if (tg.length > 0) {
    out.push('## Targets (issue 4)', '');
    if (quick) out.push('_Quick-mode figures: short trials, judged against full-run targets._', '');
    out.push(table(['target', 'measured', 'met'], tg.map((t) => [t.label, t.measured, t.met === null ? 'not reached by the steps tried' : t.met ? 'yes' : '**no**'])), '');
  }
  if (run.charts.summary) out.push(`![Throughput, ours vs baseline](results/${run.charts.summary})`, '');
  // Hand-written: where the time goes for the targets missed (profiles), kept across regenerations.
  if (fs.existsSync(ANALYSIS_MD)) out.push(fs.readFileSync(ANALYSIS_MD, 'utf8').trim(), '');
  if (run.failures.length > 0) {
    out.push('## Failures', '', ...run.failures.map((f) => '- ' + f.split('\n')[0]), '');
  }

  run.scenarios.forEach((s, i) => {
    out.push(`## ${i + 1}. ${s.title}`, '', s.what + '.', '');
    if (s.id === 'batch-sweep') {
      out.push(sweepTable(s), '');
      if (run.charts['batch-sweep']) out.push(`![sweep throughput](results/${run.charts['batch-sweep']})`, '');
      if (run.charts['batch-sweep-p99']) out.push(`![sweep p99](results/${run.charts['batch-sweep-p99']})`, '');
    } else if (s.id === 'readers') {
      out.push(readersTable(s), '');
      if (run.charts.readers) out.push(`![readers](results/${run.charts.readers})`, '');
    } else {
      out.push(compareTable(s), '');
      if (s.id === 'fixed-rate') {
        out.push(`Highest rate held: ours ${num(Number(s.summary.highestHeld_ours ?? 0))} req/s, baseline ${num(Number(s.summary.highestHeld_baseline ?? 0))} req/s.`, '');
        if (run.charts['fixed-rate']) out.push(`![fixed rate](results/${run.charts['fixed-rate']})`, '');
      }
      if (s.id === 'wrk' && run.charts.wrk) out.push(`![wrk: ours, baseline, probe](results/${run.charts.wrk})`, '');
    }
  });
  return out.join('\n');
}
