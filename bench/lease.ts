// Writer lease and cold start (issue 16), with the real server against fake-gcs-server through a byte-counting
// proxy. Two measurements:
//   cold start  a ~100 MB replica; RUNS cold starts, each a fresh data directory: process start -> /readyz 200 as the
//               leader, the restore's own time, bytes uploaded until ready, bytes uploaded in the first minute with
//               no writes (Litestream's scheduled compactions included), then SIGTERM (the lease is released).
//   handover    64 writers on a small database; ROUNDS times: a new instance starts (standby), traffic moves to it,
//               the old one gets SIGTERM: the write gap (the old leader's last 201 -> the new leader's first) and
//               failed requests.
// Run: npm run bench:lease (needs litestream and fake-gcs-server). Not part of npm test. Results:
// bench/results/lease-<stamp>.json and a markdown summary on stdout.
import fs from 'node:fs';
import path from 'node:path';
import { FAKE_GCS_BIN, freePort, LITESTREAM_BIN, startGcs } from '../test/helpers/gcs.js';
import { buildLargeDb } from '../test/helpers/large-db.js';
import { startLatencyProxy, type LatencyProxy } from '../test/helpers/latency-proxy.js';
import { killAll, req, ROOT, startServer, tempDir } from '../test/helpers/server.js';
import { logLines, waitFor } from '../test/helpers/wait.js';

const RUNS = Number(process.env.BENCH_COLD_STARTS ?? 4);
const QUIET_MS = Number(process.env.BENCH_QUIET_MS ?? 60_000);
const ROUNDS = Number(process.env.BENCH_HANDOVERS ?? 5);
const MiB = 1048576;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function env(proxy: LatencyProxy, url: string): Record<string, string> {
  return { REPLICA_URL: url, STORAGE_EMULATOR_HOST: proxy.host, LITESTREAM_BIN: LITESTREAM_BIN!, LITESTREAM_METRICS_ADDR: 'off', LITESTREAM_START_TIMEOUT_MS: '60000' };
}

async function coldStarts(proxy: LatencyProxy) {
  const url = 'gs://bench/cold';
  const dbPath = path.join(tempDir('bench-cold-'), 'app.db');
  buildLargeDb(dbPath, 100 * MiB);
  const dbBytes = fs.statSync(dbPath).size;
  const first = await startServer({ dbPath, env: env(proxy, url), timeoutMs: 120_000 });
  await first.stop();

  const rows = [];
  for (let run = 1; run <= RUNS; run++) {
    const bytes0 = proxy.bytesUp;
    const t0 = performance.now();
    const s = await startServer({ env: env(proxy, url), timeoutMs: 120_000 });
    await waitFor(async () => (await req(s.url, 'GET', '/readyz')).status === 200, '/readyz', 60_000, 20);
    const readyMs = performance.now() - t0;
    const untilReady = proxy.bytesUp - bytes0;
    await sleep(Math.max(0, QUIET_MS - (performance.now() - t0)));
    const minute = proxy.bytesUp - bytes0;
    const restored = logLines(s, 'database restored from the replica')[0];
    const resumed = logLines(s, 'resuming the replica after the restore: no new snapshot').length > 0;
    await s.stop();
    const row = {
      run,
      readyMs: Math.round(readyMs),
      restoreMs: Number(restored?.ms ?? NaN),
      resumed,
      uploadedUntilReadyMiB: +(untilReady / MiB).toFixed(3),
      uploadedFirstMinuteMiB: +(minute / MiB).toFixed(3),
      firstMinutePctOfDb: +((100 * minute) / dbBytes).toFixed(2),
    };
    console.error(JSON.stringify(row));
    rows.push(row);
  }
  return { dbMiB: +(dbBytes / MiB).toFixed(1), quietMs: QUIET_MS, rows };
}

async function handovers(proxy: LatencyProxy) {
  const url = 'gs://bench/handover';
  const dirs: Record<string, string | undefined> = {};
  const start = async (name: string) => {
    const s = await startServer({ dbPath: dirs[name], env: env(proxy, url), timeoutMs: 60_000 });
    dirs[name] = s.dbPath;
    return { name, s };
  };
  let leader = await start('A');
  let current = leader;
  const acks: { node: string; at: number }[] = [];
  const failures: string[] = [];
  let running = true;
  let n = 0;
  const writer = async () => {
    while (running) {
      const node = current;
      try {
        const r = await req(node.s.url, 'POST', '/products', { name: `h-${n++}`, price: 1 });
        if (r.status === 201) acks.push({ node: node.name, at: performance.now() });
        else failures.push(`${r.status} ${r.text.slice(0, 120)}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const writing = Promise.all(Array.from({ length: 64 }, writer));
  const rounds = [];
  for (let round = 1; round <= ROUNDS; round++) {
    await sleep(2000);
    const standby = await start(leader.name === 'A' ? 'B' : 'A');
    await waitFor(() => logLines(standby.s, 'standby: another instance holds the writer lease; holding requests until it is released or expires').length > 0, 'standby', 60_000, 20);
    current = standby;
    await sleep(300);
    const termAt = performance.now();
    leader.s.proc.kill('SIGTERM');
    await leader.s.exited;
    await waitFor(() => acks.some((a) => a.node === standby.name && a.at > termAt), 'a write answered by the new leader', 60_000, 20);
    const lastOld = Math.max(...acks.filter((a) => a.node === leader.name).map((a) => a.at));
    const firstNew = Math.min(...acks.filter((a) => a.node === standby.name && a.at > termAt).map((a) => a.at));
    const ended = logLines(leader.s, 'term ended')[0];
    rounds.push({ round, from: leader.name, to: standby.name, writeGapMs: Math.round(firstNew - lastOld), oldLeaderStopMs: Math.round(performance.now() - termAt), oldTermBatches: ended?.batches });
    console.error(JSON.stringify(rounds.at(-1)));
    leader = standby;
  }
  running = false;
  await writing;
  await leader.s.stop();
  return { writers: 64, acknowledged: acks.length, failed: failures.length, failures: failures.slice(0, 5), rounds };
}

async function main(): Promise<void> {
  if (!LITESTREAM_BIN || !FAKE_GCS_BIN) throw new Error('bench:lease needs litestream and fake-gcs-server on PATH (see docs/development.md)');
  // Everything through the proxy (the emulator's public host), so upload bytes are counted.
  const gcsPort = await freePort();
  const proxy = await startLatencyProxy(gcsPort, 0, { hostRewrite: false });
  const gcs = await startGcs({ port: gcsPort, publicHost: proxy.host });
  await gcs.createBucket('bench');
  try {
    const cold = await coldStarts(proxy);
    const handover = await handovers(proxy);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').replace('T', '-');
    const out = path.join(ROOT, 'bench', 'results', `lease-${stamp}.json`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify({ cold, handover }, null, 2));
    console.log(`## Writer lease and cold start\n\nRaw: ${path.relative(ROOT, out)}\n`);
    console.log(`Cold start, ${cold.dbMiB} MiB database, fresh directory each time, first ${cold.quietMs / 1000} s without writes:\n`);
    console.log('| run | start -> ready ms | restore ms | resumed | uploaded until ready MiB | uploaded in the window MiB | % of db |');
    console.log('|---:|---:|---:|---|---:|---:|---:|');
    for (const r of cold.rows) console.log(`| ${r.run} | ${r.readyMs} | ${r.restoreMs} | ${r.resumed} | ${r.uploadedUntilReadyMiB} | ${r.uploadedFirstMinuteMiB} | ${r.firstMinutePctOfDb} |`);
    console.log(`\nHandover under ${handover.writers} writers: ${handover.acknowledged} creates acknowledged, ${handover.failed} failed.\n`);
    console.log('| round | from -> to | write gap ms | old leader SIGTERM -> exit ms |');
    console.log('|---:|---|---:|---:|');
    for (const r of handover.rounds) console.log(`| ${r.round} | ${r.from} -> ${r.to} | ${r.writeGapMs} | ${r.oldLeaderStopMs} |`);
  } finally {
    await killAll();
    await proxy.close();
    await gcs.stop();
  }
}

await main();
