// Replicate and restore end to end: the real server supervising real Litestream 0.5 against fake-gcs-server
// (GCS JSON/XML API on loopback). Writes go through the API; the replica is restored with the litestream CLI.
import { describe, expect, it } from 'vitest';
import { missingTools } from './helpers/gcs.js';
import { missingAcked, newAcked, readDb, restoreWithCli, useReplica, writeLoad } from './helpers/replica.js';
import { metric, req, type Running } from './helpers/server.js';
import { logLines } from './helpers/wait.js';

const skip = missingTools();

describe.skipIf(skip)('Litestream replication to GCS (emulated)', () => {
  const replica = useReplica('replicate-test');
  let s: Running | undefined;

  it('5,000 products and 1,000 increments through the API, SIGTERM, restore with the CLI: integrity ok, every acknowledged write there', async () => {
    const url = 'gs://replicate-test/db';
    s = await replica.start({ env: replica.env(url) });
    expect(await metric(s.url, 'litestream_up')).toBe(1);
    expect((await req(s.url, 'GET', '/readyz')).status).toBe(200);

    const acked = newAcked();
    const t0 = performance.now();
    // Every 6th request is an increment: 5,000 creates + 1,000 increments.
    await writeLoad(s.url, acked, { total: 6000, concurrency: 32, counter: 'hits', incrementEvery: 6 });
    const writeMs = performance.now() - t0;
    expect(acked.other).toEqual([]);
    expect(acked.products.size).toBe(5000);
    expect(acked.increments.length).toBe(1000);
    // Litestream is the only checkpointer: ours never started.
    expect(await metric(s.url, 'sqlite_checkpoints_total')).toBe(0);
    expect(logLines(s, 'checkpointer ready')).toEqual([]);

    const t1 = performance.now();
    expect(await s.stop('SIGTERM')).toBe(0);
    const stopMs = performance.now() - t1;
    expect(logLines(s, 'shutdown complete')[0]).toMatchObject({ failed: [] });
    // No TRUNCATE checkpoint with a replicator: the writer closed without one.
    expect(logLines(s, 'writer closed')[0]).toMatchObject({ checkpointed: false });
    const objects = await replica.gcs.list('replicate-test', 'db/');
    expect(objects.length).toBeGreaterThan(0);

    const restored = await restoreWithCli(replica.gcs, url);
    const db = readDb(restored.dbPath);
    console.log(
      `replicate: 6,000 writes in ${writeMs.toFixed(0)} ms; SIGTERM -> exit ${stopMs.toFixed(0)} ms; ` +
        `${objects.length} objects in the bucket; CLI restore ${restored.ms} ms`,
    );
    expect(db.integrity).toBe('ok');
    expect(missingAcked(db, acked, 'hits')).toEqual({ products: [], counterShort: 0 });
    // A clean drain applies exactly the acknowledged writes.
    expect(db.products.size).toBe(5000);
    expect(db.counters.get('hits')).toBe(1000);
  });

  it('shutdown under write load: SIGTERM -> exit 0 well inside 10 s, nothing acknowledged missing from the replica', async () => {
    const url = 'gs://replicate-test/load';
    s = await replica.start({ env: replica.env(url) });
    const acked = newAcked();
    const load = writeLoad(s.url, acked, { total: 1e9, concurrency: 48, counter: 'load', incrementEvery: 3 });
    // Let the load run long enough that Litestream has shipped a few passes and WAL is piling up.
    await new Promise((r) => setTimeout(r, 2500));
    const before = acked.products.size + acked.increments.length;
    const t0 = performance.now();
    s.proc.kill('SIGTERM');
    const code = await s.exited;
    const ms = performance.now() - t0;
    await load;
    const complete = logLines(s, 'shutdown complete')[0];
    const stopped = logLines(s, 'litestream stopped after its final upload')[0];
    console.log(
      `shutdown under load: SIGTERM -> exit ${code} in ${ms.toFixed(0)} ms (server: drain ${String(complete?.ms)} ms, ` +
        `litestream final upload + exit ${String(stopped?.ms)} ms); ${before} writes acked before SIGTERM, ` +
        `${acked.products.size + acked.increments.length} in all; refused ${JSON.stringify(acked.refused)}; unknown ${JSON.stringify(acked.unknown)}`,
    );
    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);
    expect(complete).toMatchObject({ failed: [] });
    expect(acked.other).toEqual([]);
    expect(before).toBeGreaterThan(200);

    const db = readDb((await restoreWithCli(replica.gcs, url)).dbPath);
    expect(db.integrity).toBe('ok');
    expect(missingAcked(db, acked, 'load')).toEqual({ products: [], counterShort: 0 });
  });
});
