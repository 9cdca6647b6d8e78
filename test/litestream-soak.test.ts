// 60 s of sustained writes with Litestream checkpointing underneath: no client-visible error, the WAL stays
// bounded (Litestream's PASSIVE checkpoints at 1,000 pages work with wal_autocheckpoint = 0), and
// sqlite_busy_retries_total shows what its write-lock barrier cost us.
// Out of the default run (it takes over a minute): SOAK=1 npx vitest run test/litestream-soak.test.ts
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { missingTools } from './helpers/gcs.js';
import { killAndRestore } from './helpers/durability.js';
import { missingAcked, newAcked, readDb, restoreWithCli, useReplica, writeLoad } from './helpers/replica.js';
import { metric, type Running } from './helpers/server.js';

const SOAK_MS = Number(process.env.SOAK_MS ?? 60_000);
const skip = process.env.SOAK === '1' ? missingTools() : 'set SOAK=1 to run the 60 s soak test';

describe.skipIf(skip)('soak: sustained writes while Litestream checkpoints', () => {
  const replica = useReplica('soak-test');
  let s: Running | undefined;

  it(`${SOAK_MS / 1000} s of writes: no client-visible error, bounded WAL, everything in the replica`, { timeout: SOAK_MS + 90_000 }, async () => {
    const url = 'gs://soak-test/db';
    s = await replica.start({ env: replica.env(url) });
    const acked = newAcked();
    const t0 = performance.now();
    let maxWal = 0;
    const wal = `${s.dbPath}-wal`;
    const sampler = setInterval(() => {
      try {
        maxWal = Math.max(maxWal, fs.statSync(wal).size);
      } catch {
        // no WAL at this instant
      }
    }, 100);
    await writeLoad(s.url, acked, { total: 1e9, concurrency: 32, counter: 'soak', incrementEvery: 3, stop: () => performance.now() - t0 > SOAK_MS });
    clearInterval(sampler);
    const writes = acked.products.size + acked.increments.length;
    const busy = await metric(s.url, 'sqlite_busy_retries_total');
    console.log(
      `soak: ${writes} writes in ${((performance.now() - t0) / 1000).toFixed(1)} s; largest WAL seen ${(maxWal / 1048576).toFixed(1)} MiB; ` +
        `sqlite_busy_retries_total ${busy}; refused ${JSON.stringify(acked.refused)}`,
    );
    expect(acked.other).toEqual([]);
    expect(acked.refused).toEqual({});
    expect(acked.unknown).toEqual({ create: 0, increment: 0 });
    // Far more written than the largest WAL: checkpoints ran. 1,000 pages = 4 MiB is Litestream's trigger.
    expect(maxWal).toBeLessThan(64 * 1048576);
    expect(await s.stop()).toBe(0);
    const db = readDb((await restoreWithCli(replica.gcs, url)).dbPath);
    expect(db.integrity).toBe('ok');
    expect(missingAcked(db, acked, 'soak')).toEqual({ products: [], counterShort: 0 });
  });
});

// Issue 15: the kill -9 durability run of test/durability.test.ts, 10 times in a row.
const DURABILITY_SOAK_RUNS = Number(process.env.SOAK_DURABILITY_RUNS ?? 10);
describe.skipIf(skip)('soak: durability=replicated survives kill -9, again and again', () => {
  const replica = useReplica('soak-durability', { printOutputOnFailure: true });
  it(`${DURABILITY_SOAK_RUNS} kill -9 + restore runs: zero acknowledged replicated writes lost`, { timeout: DURABILITY_SOAK_RUNS * 30_000 }, async () => {
    let total = 0;
    for (let run = 1; run <= DURABILITY_SOAK_RUNS; run++) {
      const r = await killAndRestore(replica, `gs://soak-durability/run-${run}`, { durability: 'replicated', loadMs: 5000, concurrency: 20 });
      total += r.writes;
      console.log(`durability soak run ${run}: ${r.writes} replicated writes acked; missing ${r.missing.products.length} creates, counter short ${r.missing.counterShort}; integrity ${r.integrity}`);
      expect(r.acked.other).toEqual([]);
      expect(r.integrity).toBe('ok');
      expect(r.missing).toEqual({ products: [], counterShort: 0 });
    }
    console.log(`durability soak: ${DURABILITY_SOAK_RUNS} runs, ${total} acknowledged replicated writes, 0 lost`);
  });
});
