// Restore on start with a ~100 MB database (scale to zero, new instance): how long the restore takes and how
// long from process start to /readyz 200. The data is incompressible so LTX compression cannot flatter it.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultMarginMs } from '../src/replication/lease.js';
import { freePort, missingTools, startGcs } from './helpers/gcs.js';
import { startLatencyProxy } from './helpers/latency-proxy.js';
import { buildLargeDb } from './helpers/large-db.js';
import { useReplica } from './helpers/replica.js';
import { req, tempDir, type Running } from './helpers/server.js';
import { logLines, waitFor } from './helpers/wait.js';

const skip = missingTools();
const TARGET_BYTES = 100 * 1024 * 1024;

describe.skipIf(skip)('restore on start, ~100 MB', () => {
  const replica = useReplica('large-test');
  let s: Running | undefined;

  it('a fresh data directory comes up with all ~100 MB restored; prints restore and start-to-ready times', async () => {
    const url = 'gs://large-test/db';
    // Build the database directly (as the server's schema would be), ~2 KB of random text per product.
    const dbPath = path.join(tempDir(), 'app.db');
    const { rows } = buildLargeDb(dbPath, TARGET_BYTES);
    const bytes = fs.statSync(dbPath).size;
    expect(bytes).toBeGreaterThan(0.9 * TARGET_BYTES);

    // First instance: an existing local database; its first sync uploads all of it.
    const t0 = performance.now();
    s = await replica.start({ dbPath, env: replica.env(url, { LITESTREAM_START_TIMEOUT_MS: '50000' }), timeoutMs: 55_000 });
    const uploadMs = performance.now() - t0;
    expect(await s.stop()).toBe(0);

    // Second instance: fresh disk, same replica.
    const t1 = performance.now();
    s = await replica.start({ env: replica.env(url), timeoutMs: 55_000 });
    const server = s;
    await waitFor(async () => (await req(server.url, 'GET', '/readyz')).status === 200, '/readyz 200', 10_000);
    const readyMs = performance.now() - t1;
    const restored = logLines(s, 'database restored from the replica')[0]!;
    const firstSync = logLines(s, 'litestream first sync done')[0]!;
    // The restore leaves a resume point (src/replication/resume-point.ts): Litestream continues the replica's chain,
    // so the L0 files after the restore are small (without it, the first sync uploaded a full copy as a new L0).
    const objects = (await (await fetch(`http://${replica.gcs.host}/storage/v1/b/large-test/o?prefix=db/ltx/0/`)).json()) as { items: { name: string; size: string }[] };
    const l0 = objects.items.map((o) => `${o.name.split('/').pop()} ${(Number(o.size) / 1048576).toFixed(1)} MiB`);
    expect(logLines(s, 'resuming the replica after the restore: no new snapshot')).toHaveLength(1);
    const afterRestore = objects.items.filter((o) => BigInt(`0x${o.name.split('/').pop()!.split('-')[0]}`) > BigInt(`0x${String(restored.txid)}`));
    expect(afterRestore.length).toBeGreaterThan(0);
    for (const o of afterRestore) expect(Number(o.size)).toBeLessThan(0.01 * bytes);
    console.log(
      `~100 MB restore on start: database ${(bytes / 1048576).toFixed(1)} MiB, ${rows} rows; first upload (start of the first instance) ` +
        `${uploadMs.toFixed(0)} ms; restore ${String(restored.ms)} ms (${restored.files} files, ${(Number(restored.bytes) / 1048576).toFixed(1)} MiB fetched); ` +
        `process start -> /readyz 200 ${readyMs.toFixed(0)} ms, of which Litestream's first sync ${String(firstSync.ms)} ms; L0 files now: ${l0.join(', ')}`,
    );
    // Litestream adds two small tables (_litestream_seq, _litestream_lock) to the file it replicates.
    expect(fs.statSync(s.dbPath).size).toBeGreaterThanOrEqual(bytes);
    const last = await req(s.url, 'GET', `/products/${rows}`);
    expect(last.status).toBe(200);
    expect(last.body.name).toBe(`large-${rows - 1}`);
    expect((await req(s.url, 'GET', '/products?limit=1')).body.items[0].name).toBe('large-0');
  });

  it('a first sync that uploads the whole database for longer than the writer lease\'s TTL still starts: renewals keep the starting term\'s fence open', async () => {
    // LEASE_TTL_MS 4 s: the holder counts 3.2 s of validity per renewal. The first sync must outlast that, so it goes
    // over a slow link: ~32 MiB through a proxy that passes 4 MiB/s per connection (~8 s), on an emulator of its own.
    // Not a bigger database on a fast link, as before: the emulator hashes a resumable upload's whole content again
    // at every chunk, and with ~200 MB that CPU (beside Litestream's and the other test files') held the lease's
    // renewals for 2.4 s in a clean-clone CI run, so the test measured the emulator instead of the lease.
    const ttlMs = 4000;
    const validityMs = ttlMs - defaultMarginMs(ttlMs);
    const gcsPort = await freePort();
    const proxy = await startLatencyProxy(gcsPort, 0, { hostRewrite: false, upBytesPerSec: 4 * 1024 * 1024 });
    const gcs = await startGcs({ port: gcsPort, publicHost: proxy.host });
    try {
      await gcs.createBucket('slow-link');
      const dbPath = path.join(tempDir(), 'app.db');
      buildLargeDb(dbPath, 32 * 1024 * 1024);
      const t0 = performance.now();
      s = await replica.start({
        dbPath,
        env: replica.env('gs://slow-link/db', {
          STORAGE_EMULATOR_HOST: proxy.host,
          LEASE_TTL_MS: String(ttlMs),
          LEASE_RENEW_MS: '250',
          LITESTREAM_START_TIMEOUT_MS: '50000',
        }),
        timeoutMs: 55_000,
      });
      const firstSync = logLines(s, 'litestream first sync done')[0]!;
      console.log(
        `first sync of ~32 MiB at 4 MiB/s with a 4 s lease TTL: ${String(firstSync.ms)} ms; ${(proxy.bytesUp / 1048576).toFixed(1)} MiB sent; ` +
          `start -> listening ${(performance.now() - t0).toFixed(0)} ms`,
      );
      // Longer than one renewal's validity (3.2 s), so only renewals during the sync kept the term.
      expect(Number(firstSync.ms)).toBeGreaterThan(validityMs);
      expect(await req(s.url, 'GET', '/readyz')).toMatchObject({ status: 200, body: { role: 'leader' } });
      expect(logLines(s, 'litestream tried to send to the bucket without a valid writer lease: cut')).toEqual([]);
      expect((await req(s.url, 'POST', '/counters/after/increment')).status).toBe(200);
      expect(await s.stop()).toBe(0);
    } finally {
      await proxy.close();
      await gcs.stop();
    }
  });
});
