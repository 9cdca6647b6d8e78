// Durability scenario (issue 15): replicated vs local writes, with Litestream uploading to fake-gcs-server behind a
// latency-injecting TCP proxy (0, 20, 50 ms added per request). Per case: writes/s, p50/p99, writes per sync, GCS
// requests/s, and the sync round trip. Run: npm run bench:durability (needs litestream and fake-gcs-server).
// Not part of npm test. Results: bench/results/durability-<stamp>.json and a markdown table on stdout.
import fs from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';
import { FAKE_GCS_BIN, LITESTREAM_BIN, startGcs } from '../test/helpers/gcs.js';
import { startLatencyProxy } from '../test/helpers/latency-proxy.js';
import { killAll, metric, ROOT, startServer } from '../test/helpers/server.js';

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const LATENCIES = (process.env.BENCH_LATENCIES ?? '0,20,50').split(',').map(Number);

interface Row {
  latencyMs: number;
  durability: 'local' | 'replicated';
  writesPerS: number;
  p50: number;
  p99: number;
  non2xx: number;
  writesPerSync: number | null;
  syncMeanMs: number | null;
  gcsRequestsPerS: number;
}

async function main(): Promise<void> {
  if (!LITESTREAM_BIN || !FAKE_GCS_BIN) throw new Error('bench:durability needs litestream and fake-gcs-server on PATH (see docs/development.md)');
  const gcs = await startGcs();
  await gcs.createBucket('bench');
  const rows: Row[] = [];
  try {
    for (const latencyMs of LATENCIES) {
      const proxy = await startLatencyProxy(gcs.port, latencyMs);
      for (const durability of ['local', 'replicated'] as const) {
        const s = await startServer({
          env: {
            REPLICA_URL: `gs://bench/d-${latencyMs}-${durability}`,
            STORAGE_EMULATOR_HOST: proxy.host,
            LITESTREAM_BIN,
            LITESTREAM_METRICS_ADDR: 'off',
            LOG_LEVEL: 'info',
            // Litestream's own start-up talks to the bucket through the proxy too.
            LITESTREAM_START_TIMEOUT_MS: '60000',
          },
          timeoutMs: 90_000,
        });
        const req0 = proxy.requests;
        let n = 0;
        const result = await autocannon({
          url: s.url,
          connections: CONNECTIONS,
          duration: DURATION_S,
          requests: [
            {
              method: 'POST',
              path: '/products',
              headers: { 'content-type': 'application/json', prefer: `durability=${durability}` },
              setupRequest: (r) => ({ ...r, body: JSON.stringify({ name: `b-${n++}`, price: 1 }) }),
            },
          ],
        });
        const gcsRequests = proxy.requests - req0;
        const writes = await metric(s.url, 'replicated_writes_per_sync_sum');
        const syncs = await metric(s.url, 'replicated_writes_per_sync_count');
        const syncSum = await metric(s.url, 'replication_sync_seconds_sum');
        const syncCount = await metric(s.url, 'replication_sync_seconds_count');
        await s.stop();
        const row: Row = {
          latencyMs,
          durability,
          writesPerS: Math.round(result['2xx'] / result.duration),
          p50: result.latency.p50,
          p99: result.latency.p99,
          non2xx: result.non2xx + result.errors,
          writesPerSync: syncs ? Math.round((writes / syncs) * 10) / 10 : null,
          syncMeanMs: syncCount ? Math.round((syncSum / syncCount) * 10000) / 10 : null,
          gcsRequestsPerS: Math.round((gcsRequests / result.duration) * 10) / 10,
        };
        console.error(JSON.stringify(row));
        rows.push(row);
      }
      await proxy.close();
    }
  } finally {
    await killAll();
    await gcs.stop();
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').replace('T', '-');
  const out = path.join(ROOT, 'bench', 'results', `durability-${stamp}.json`);
  fs.writeFileSync(out, JSON.stringify({ connections: CONNECTIONS, durationS: DURATION_S, rows }, null, 2));
  console.log(`| added GCS latency | durability | writes/s | p50 ms | p99 ms | non-2xx | writes per sync | sync mean ms | GCS requests/s |`);
  console.log(`|---|---|---|---|---|---|---|---|---|`);
  for (const r of rows) {
    console.log(`| ${r.latencyMs} ms | ${r.durability} | ${r.writesPerS} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.writesPerSync ?? '-'} | ${r.syncMeanMs ?? '-'} | ${r.gcsRequestsPerS} |`);
  }
  console.log(`\n${path.relative(ROOT, out)}`);
}

await main();
