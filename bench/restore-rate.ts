// Restore throughput (issue 18): how many MB/s `litestream restore` (the pinned v0.5.18) gets from a replica, to
// size Cloud Run's startup probe against LITESTREAM_RESTORE_TIMEOUT_MS (docs/deploy-cloud-run.md "Start-up budget").
// For each size: a database of incompressible rows (test/helpers/large-db.ts) is replicated to fake-gcs-server by the
// real server (its first sync uploads it), then restored RUNS times with the CLI into a fresh directory, under
// /usr/bin/time for the peak memory. Also prints what Litestream keeps on the data volume beside the database.
// Run: npm run build && npm run build:bench && node dist-bench/bench/restore-rate.js (needs litestream and
// fake-gcs-server; sizes in MiB from BENCH_RESTORE_MIB, default "100,400"). Not part of npm test.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { LITESTREAM_BIN, startGcs, stopAllGcs } from '../test/helpers/gcs.js';
import { buildLargeDb } from '../test/helpers/large-db.js';
import { replicaEnv } from '../test/helpers/replica.js';
import { killAll, startServer, tempDir } from '../test/helpers/server.js';

const MiB = 1048576;
const SIZES = (process.env.BENCH_RESTORE_MIB ?? '100,400').split(',').map(Number);
const RUNS = Number(process.env.BENCH_RESTORE_RUNS ?? 3);

/** Bytes under `dir`, recursively. */
function du(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? du(p) : fs.statSync(p).size;
  }
  return n;
}

async function main(): Promise<void> {
  if (!LITESTREAM_BIN) throw new Error('litestream not installed (scripts/install-replication-tools.sh)');
  const gcs = await startGcs();
  await gcs.createBucket('rate');
  const rows: string[] = [];
  try {
    for (const mib of SIZES) {
      const url = `gs://rate/db-${mib}`;
      const dbPath = path.join(tempDir('rate-src-'), 'app.db');
      buildLargeDb(dbPath, mib * MiB);
      const dbBytes = fs.statSync(dbPath).size;
      const t0 = performance.now();
      const s = await startServer({ dbPath, env: replicaEnv(gcs, url, { LITESTREAM_START_TIMEOUT_MS: '300000' }), timeoutMs: 320_000 });
      const uploadMs = performance.now() - t0;
      const volume = du(path.dirname(dbPath));
      await s.stop();
      for (let run = 1; run <= RUNS; run++) {
        const out = path.join(tempDir('rate-dst-'), 'app.db');
        const t1 = performance.now();
        const r = spawnSync('/usr/bin/time', ['-f', '%M', LITESTREAM_BIN, 'restore', '-o', out, url], {
          env: { ...process.env, STORAGE_EMULATOR_HOST: gcs.host },
          encoding: 'utf8',
        });
        const ms = performance.now() - t1;
        if (r.status !== 0) throw new Error(`restore failed: ${r.stderr}`);
        const maxRssKiB = Number(r.stderr.trim().split('\n').at(-1));
        const row =
          `| ${(dbBytes / MiB).toFixed(0)} | ${run} | ${(ms / 1000).toFixed(2)} | ${(dbBytes / MiB / (ms / 1000)).toFixed(0)} | ` +
          `${(maxRssKiB / 1024).toFixed(0)} | ${(uploadMs / 1000).toFixed(1)} | ${((volume - dbBytes) / MiB).toFixed(1)} |`;
        console.log(row);
        rows.push(row);
        fs.rmSync(path.dirname(out), { recursive: true, force: true });
      }
    }
  } finally {
    await killAll();
    await stopAllGcs();
  }
  console.log('\n| database MiB | run | restore s | MiB/s | litestream peak RSS MiB | first upload s | beside the db after the upload, MiB |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

await main();
