// Failures: kill -9 of the server and Litestream mid-burst (the replica is consistent and holds everything
// acknowledged more than sync-interval + 1 s before the kill), and Litestream dying under a running server
// (writes answer 503 replication_down, /readyz 503, nothing acknowledged lost, restart or final upload).
import { describe, expect, it } from 'vitest';
import { missingTools } from './helpers/gcs.js';
import { isAlive, litestreamPids, missingAcked, newAcked, readDb, restoreWithCli, useReplica, writeLoad } from './helpers/replica.js';
import { metric, req, type Running } from './helpers/server.js';
import { logLines, waitFor } from './helpers/wait.js';

const skip = missingTools();
const SYNC_INTERVAL_MS = 1000;

describe.skipIf(skip)('crashes and a dying Litestream', () => {
  const replica = useReplica('crash-test', { printOutputOnFailure: true });
  let s: Running | undefined;

  it('kill -9 of the server and Litestream mid-burst: the restored replica is consistent and has every write acked > sync-interval + 1 s before the kill', async () => {
    const url = 'gs://crash-test/kill9';
    s = await replica.start({ env: replica.env(url, { LITESTREAM_SYNC_INTERVAL: `${SYNC_INTERVAL_MS}ms` }) });
    const [lsPid] = litestreamPids(s);
    expect(lsPid).toBeGreaterThan(0);
    const acked = newAcked();
    const load = writeLoad(s.url, acked, { total: 1e9, concurrency: 32, counter: 'crash', incrementEvery: 4 });
    await waitFor(() => acked.products.size > 2000, 'the burst to get going', 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    const killedAt = performance.now();
    process.kill(lsPid!, 'SIGKILL');
    s.proc.kill('SIGKILL');
    await s.exited;
    await load;
    const cutoff = killedAt - (SYNC_INTERVAL_MS + 1000);

    const db = readDb((await restoreWithCli(replica.gcs, url)).dbPath);
    const old = [...acked.products.values()].filter((p) => p.at <= cutoff).length;
    const miss = missingAcked(db, acked, 'crash', cutoff);
    const lateMissing = missingAcked(db, acked, 'crash').products.length;
    console.log(
      `kill -9: ${acked.products.size} creates + ${acked.increments.length} increments acked; ${old} creates acked > ${SYNC_INTERVAL_MS + 1000} ms ` +
        `before the kill; replica has ${db.products.size} products, counter ${db.counters.get('crash') ?? 0}; ` +
        `${lateMissing} of the later acked creates not replicated (allowed)`,
    );
    expect(db.integrity).toBe('ok');
    expect(old).toBeGreaterThan(1000);
    expect(miss).toEqual({ products: [], counterShort: 0 });
    // Consistent: only rows some client sent, each exactly as sent; the counter no higher than was attempted.
    for (const [id, row] of db.products) {
      const n = Number(String(row.name).slice(2));
      expect(row.name, `product ${id}`).toBe(`p-${n}`);
      expect(row.price).toBe(n % 1000);
      expect(row.stock).toBe(n % 7);
    }
    expect(db.counters.get('crash') ?? 0).toBeLessThanOrEqual(acked.increments.length + acked.unknown.increment);
  });

  it('Litestream killed while the server runs: 503 replication_down and /readyz 503 until it is restarted; nothing acknowledged lost', async () => {
    const url = 'gs://crash-test/restart';
    // A 3 s restart delay keeps the outage long enough to observe.
    s = await replica.start({ env: replica.env(url, { LITESTREAM_RESTART_DELAY_MS: '3000' }) });
    const server = s;
    const acked = newAcked();
    let stop = false;
    const load = writeLoad(s.url, acked, { total: 1e9, concurrency: 8, counter: 'restart', incrementEvery: 2, stop: () => stop, keepGoingOn503: true });
    await waitFor(() => acked.products.size > 200, 'writes to flow', 30_000);

    const [first] = litestreamPids(s);
    process.kill(first!, 'SIGKILL');
    const down = await waitFor(async () => {
      const r = await req(server.url, 'POST', '/products', { name: 'during-outage', price: 1 });
      return r.status === 503 ? r : null;
    }, 'a write to be refused', 5000);
    expect(down.body.error.code).toBe('replication_down');
    expect(down.body.error.message).toMatch(/litestream exited unexpectedly \(SIGKILL\)/);
    expect(down.headers.get('retry-after')).toBe('5');
    const ready = await req(s.url, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.reason).toMatch(/litestream exited unexpectedly/);
    expect(await metric(s.url, 'litestream_up')).toBe(0);
    expect(await metric(s.url, 'server_ready')).toBe(0);
    // Reads still work.
    expect((await req(s.url, 'GET', '/products?limit=1')).status).toBe(200);
    expect(logLines(s, 'litestream exited unexpectedly (SIGKILL); writes are refused until it is back')).toHaveLength(1);

    // Restarted after the delay: ready again, and writes flow.
    await waitFor(async () => (await req(server.url, 'GET', '/readyz')).status === 200, '/readyz 200 after the restart', 20_000, 100);
    expect(await metric(s.url, 'litestream_up')).toBe(1);
    expect(await metric(s.url, 'litestream_restarts_total')).toBe(1);
    expect(litestreamPids(s)).toHaveLength(2);
    expect(isAlive(first!)).toBe(false);
    const ackedBefore = acked.products.size;
    await waitFor(() => acked.products.size > ackedBefore + 100, 'writes after the restart', 20_000);
    stop = true;
    await load;
    expect(acked.refused.replication_down ?? 0).toBeGreaterThan(0);
    expect(acked.other).toEqual([]);

    expect(await s.stop()).toBe(0);
    const db = readDb((await restoreWithCli(replica.gcs, url)).dbPath);
    expect(db.integrity).toBe('ok');
    expect(missingAcked(db, acked, 'restart')).toEqual({ products: [], counterShort: 0 });
  });

  it('Litestream killed and not restarted (LITESTREAM_MAX_RESTARTS=0): writes stay refused; shutdown ships what was committed and exits 0', async () => {
    const url = 'gs://crash-test/norestart';
    s = await replica.start({ env: replica.env(url, { LITESTREAM_MAX_RESTARTS: '0' }) });
    const server = s;
    const acked = newAcked();
    let stop = false;
    const load = writeLoad(s.url, acked, { total: 1e9, concurrency: 16, counter: 'norestart', incrementEvery: 2, stop: () => stop, keepGoingOn503: true });
    await waitFor(() => acked.products.size > 300, 'writes to flow', 30_000);
    process.kill(litestreamPids(s)[0]!, 'SIGKILL');
    await waitFor(() => (acked.refused.replication_down ?? 0) > 0, 'writes to be refused', 5000);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await req(server.url, 'POST', '/counters/norestart/increment')).status).toBe(503);
    expect((await req(server.url, 'GET', '/readyz')).status).toBe(503);
    expect(logLines(s, 'not restarting litestream (LITESTREAM_MAX_RESTARTS): writes stay refused')).toHaveLength(1);
    stop = true;
    await load;

    const t0 = performance.now();
    expect(await s.stop()).toBe(0);
    console.log(`shutdown with Litestream dead (one-shot final upload): ${(performance.now() - t0).toFixed(0)} ms`);
    expect(logLines(s, 'litestream is not running at shutdown: starting it once for the final upload')).toHaveLength(1);
    expect(logLines(s, 'shutdown complete')[0]).toMatchObject({ failed: [] });
    const db = readDb((await restoreWithCli(replica.gcs, url)).dbPath);
    expect(db.integrity).toBe('ok');
    // Including writes committed after Litestream died and before the server noticed.
    expect(missingAcked(db, acked, 'norestart')).toEqual({ products: [], counterShort: 0 });
    expect(db.products.size).toBe(acked.products.size);
  });
});
