// Prefer: durability=replicated (issue 15): a write is answered only once a POST /sync that started after its commit
// confirmed it in the replica. Real Litestream, real fake-gcs-server (behind a latency/stall proxy), loopback.
import { afterAll, describe, expect, it } from 'vitest';
import { killAndRestore } from './helpers/durability.js';
import { missingTools } from './helpers/gcs.js';
import { startLatencyProxy, type LatencyProxy } from './helpers/latency-proxy.js';
import { readDb, restoreWithCli, useReplica } from './helpers/replica.js';
import { metric, req, runToExit, startServer, tempDir, type Running } from './helpers/server.js';
import { logLines } from './helpers/wait.js';

const skip = missingTools();
const REPLICATED = { Prefer: 'durability=replicated' };
const RUNS = Number(process.env.DURABILITY_RUNS ?? 3);

describe('durability preference without a replica', () => {
  let s: Running | undefined;
  afterAll(() => s?.stop());

  it('replicated is refused with 400 durability_unavailable, an unknown value with 400 validation_failed, local is applied', async () => {
    s = await startServer();
    const r = await req(s.url, 'POST', '/products', { name: 'a', price: 1 }, REPLICATED);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('durability_unavailable');
    const inc = await req(s.url, 'POST', '/counters/c/increment', undefined, { Prefer: 'respond-async, durability="replicated"' });
    expect(inc.body.error.code).toBe('durability_unavailable');
    const bad = await req(s.url, 'POST', '/products', { name: 'a', price: 1 }, { Prefer: 'durability=eventually' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'validation_failed', details: [{ path: 'header.Prefer' }] });
    const local = await req(s.url, 'POST', '/products', { name: 'a', price: 1 }, { Prefer: 'return=minimal, durability=local' });
    expect(local.status).toBe(201);
    expect(local.headers.get('preference-applied')).toBe('durability=local');
    // Nothing was written by the refused requests.
    expect((await req(s.url, 'GET', '/products')).body.items).toHaveLength(1);
    const plain = await req(s.url, 'DELETE', `/products/${local.body.id}`, undefined, { Prefer: 'wait=5' });
    expect(plain.status).toBe(204);
    expect(plain.headers.get('preference-applied')).toBeNull();
  });

  it('DEFAULT_DURABILITY=replicated without REPLICA_URL: exit 2 at start-up', async () => {
    const r = await runToExit({ DB_PATH: `${tempDir()}/app.db`, DEFAULT_DURABILITY: 'replicated' });
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/DEFAULT_DURABILITY="replicated" needs REPLICA_URL/);
  });
});

describe.skipIf(skip)('durability=replicated', () => {
  const replica = useReplica('durability', { printOutputOnFailure: true });
  let proxy: LatencyProxy | undefined;
  afterAll(() => proxy?.close());
  /** Server env whose Litestream reaches the emulator through the proxy. */
  const viaProxy = async (url: string, extra: Record<string, string> = {}) => {
    proxy ??= await startLatencyProxy(replica.gcs.port);
    return { ...replica.env(url, extra), STORAGE_EMULATOR_HOST: proxy.host };
  };

  it('answers after a confirmed sync, with Preference-Applied; local writes in the same moment are answered at commit', async () => {
    const s = await replica.start({ env: await viaProxy('gs://durability/basic', { LITESTREAM_SYNC_INTERVAL: '1m' }) });
    const r = await req(s.url, 'POST', '/products', { name: 'durable', price: 3 }, REPLICATED);
    expect(r.status).toBe(201);
    expect(r.headers.get('preference-applied')).toBe('durability=replicated');
    expect(r.headers.get('location')).toBe(`/products/${r.body.id}`);
    const inc = await req(s.url, 'POST', '/counters/d/increment', { by: 2 }, REPLICATED);
    expect(inc.status).toBe(200);
    expect(inc.body.value).toBe(2);
    const [ok, waited] = [await metric(s.url, 'replication_syncs_total', 'result="ok"'), await metric(s.url, 'replication_wait_seconds_count')];
    expect(ok).toBe(2);
    expect(waited).toBe(2);
    // Only a local write: no gate pass.
    expect((await req(s.url, 'POST', '/products', { name: 'local', price: 1 })).status).toBe(201);
    expect(await metric(s.url, 'replication_syncs_total')).toBe(2);
  });

  it('grouping: 64 concurrent replicated writers share syncs (mean writes per sync > 1) and /sync calls never overlap', async () => {
    const s = await replica.start({ env: { ...(await viaProxy('gs://durability/group')), LOG_LEVEL: 'debug' } });
    proxy!.delayMs = 20;
    try {
      let n = 0;
      const t0 = performance.now();
      const statuses: Record<number, number> = {};
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (performance.now() - t0 < 3000) {
            const r = await req(s.url, 'POST', '/products', { name: `g-${n++}`, price: 1 }, REPLICATED);
            statuses[r.status] = (statuses[r.status] ?? 0) + 1;
          }
        }),
      );
      const writes = await metric(s.url, 'replicated_writes_per_sync_sum');
      const syncs = await metric(s.url, 'replicated_writes_per_sync_count');
      const passes = logLines(s, 'replication sync').map((l) => ({ start: l.startedAt as number, end: (l.startedAt as number) + (l.ms as number) }));
      console.log(`grouping: ${writes} replicated writes in ${syncs} syncs (${(writes / syncs).toFixed(1)} per sync), statuses ${JSON.stringify(statuses)}`);
      expect(Object.keys(statuses)).toEqual(['201']);
      expect(writes).toBe(statuses[201]);
      expect(writes / syncs).toBeGreaterThan(1);
      // Every pass is logged (one that found the replica behind settles nothing and is not in the histogram).
      expect(passes.length).toBe(await metric(s.url, 'replication_syncs_total'));
      // startedAt is wall-clock ms: allow 1 ms of rounding between one pass's end and the next one's start.
      for (let i = 1; i < passes.length; i++) expect(passes[i]!.start).toBeGreaterThanOrEqual(passes[i - 1]!.end - 1);
    } finally {
      proxy!.delayMs = 0;
    }
  });

  it('GCS stalled for 10 s: replicated writes answer 504 replication_timeout in time, local writes and reads work, a keyed retry answers 201 without a second row', { timeout: 60_000 }, async () => {
    const s = await replica.start({ env: await viaProxy('gs://durability/stall') });
    const timeoutMs = 5000;
    proxy!.stall();
    let resumed = false;
    const resume = setTimeout(() => {
      resumed = true;
      proxy!.resume();
    }, 10_000);
    try {
      const t0 = performance.now();
      const pending = req(s.url, 'POST', '/products', { name: 'stalled', price: 7 }, { ...REPLICATED, 'Idempotency-Key': 'stall-1' });
      // Meanwhile: local writes and reads answer at once.
      const tl = performance.now();
      const local = await req(s.url, 'POST', '/products', { name: 'local', price: 1 });
      expect(local.status).toBe(201);
      expect((await req(s.url, 'GET', `/products/${local.body.id}`)).status).toBe(200);
      const localMs = performance.now() - tl;
      const r = await pending;
      const ms = performance.now() - t0;
      console.log(`stall: 504 after ${ms.toFixed(0)} ms (REPLICATION_TIMEOUT_MS ${timeoutMs}); local write + read during the stall ${localMs.toFixed(0)} ms`);
      expect(r.status).toBe(504);
      expect(r.body.error.code).toBe('replication_timeout');
      expect(r.body.error.details[0]).toMatchObject({ committed: true, replicated: false, result: { name: 'stalled', price: 7 } });
      expect(ms).toBeGreaterThanOrEqual(timeoutMs - 50);
      expect(ms).toBeLessThan(timeoutMs + 1000);
      expect(localMs).toBeLessThan(1000);
      expect(resumed).toBe(false);
      const id = r.body.error.details[0].id as number;

      await new Promise((res) => setTimeout(res, Math.max(0, 10_000 - (performance.now() - t0)) + 200));
      const retry = await req(s.url, 'POST', '/products', { name: 'stalled', price: 7 }, { ...REPLICATED, 'Idempotency-Key': 'stall-1' });
      expect(retry.status).toBe(201);
      expect(retry.body.id).toBe(id);
      expect(retry.headers.get('preference-applied')).toBe('durability=replicated');
      const names = (await req(s.url, 'GET', '/products?limit=100')).body.items.map((p: { name: string }) => p.name);
      expect(names.filter((n: string) => n === 'stalled')).toHaveLength(1);
      expect(await metric(s.url, 'replication_syncs_total', 'result="failed"')).toBeGreaterThanOrEqual(1);
    } finally {
      clearTimeout(resume);
      proxy!.resume();
    }
  });

  it('SIGTERM with replicated writes in flight: each is answered (201 confirmed, or 504/503), none hangs, exit 0, every 201 is in the replica', async () => {
    const url = 'gs://durability/sigterm';
    const s = await replica.start({ env: await viaProxy(url) });
    proxy!.delayMs = 30;
    try {
      const acked: number[] = [];
      const statuses: Record<string, number> = {};
      let stopping = false;
      let n = 0;
      const clients = Array.from({ length: 32 }, async () => {
        while (!stopping) {
          try {
            const r = await req(s.url, 'POST', '/products', { name: `t-${n++}`, price: 1 }, REPLICATED);
            statuses[r.status] = (statuses[r.status] ?? 0) + 1;
            if (r.status === 201) acked.push(r.body.id as number);
            else expect(['replication_timeout', 'unavailable']).toContain(r.body.error.code);
          } catch {
            // The listen socket closed: this request was never accepted.
            statuses.refused = (statuses.refused ?? 0) + 1;
            break;
          }
        }
      });
      await new Promise((res) => setTimeout(res, 1500));
      const t0 = performance.now();
      s.proc.kill('SIGTERM');
      const code = await s.exited;
      const exitMs = performance.now() - t0;
      stopping = true;
      await Promise.all(clients);
      const [draining] = logLines(s, 'draining');
      console.log(`SIGTERM under replicated writes: in flight at SIGTERM ${String(draining?.writeQueue)}, statuses ${JSON.stringify(statuses)}, exit ${code} after ${exitMs.toFixed(0)} ms`);
      expect(code).toBe(0);
      expect(exitMs).toBeLessThan(8000);
      expect(acked.length).toBeGreaterThan(20);
      const restored = readDb((await restoreWithCli(replica.gcs, url)).dbPath);
      expect(restored.integrity).toBe('ok');
      expect(acked.filter((id) => !restored.products.has(id))).toEqual([]);
    } finally {
      proxy!.delayMs = 0;
    }
  });

  for (let run = 1; run <= RUNS; run++) {
    it(`kill -9 after a burst of 2xx, run ${run}/${RUNS}: every write answered with durability=replicated is in the restored replica`, async () => {
      const r = await killAndRestore(replica, `gs://durability/kill-${run}`, { durability: 'replicated', loadMs: 5000, concurrency: 20 });
      console.log(
        `replicated run ${run}: ${r.acked.products.size} creates + ${r.acked.increments.length} increments acked; replica has ${r.restoredProducts} products; ` +
          `missing ${r.missing.products.length} creates, counter short by ${r.missing.counterShort}`,
      );
      expect(r.acked.other).toEqual([]);
      expect(r.writes).toBeGreaterThan(100);
      expect(r.integrity).toBe('ok');
      expect(r.missing).toEqual({ products: [], counterShort: 0 });
    });
  }

  it('contrast: durability=local with a 5 s sync interval loses acknowledged writes at kill -9 (the test above can fail)', async () => {
    const r = await killAndRestore(replica, 'gs://durability/contrast', {
      durability: 'local',
      env: { LITESTREAM_SYNC_INTERVAL: '5s' },
      loadMs: 5000,
      concurrency: 20,
    });
    const lost = r.missing.products.length;
    console.log(
      `local contrast: ${r.acked.products.size} creates + ${r.acked.increments.length} increments acked; ` +
        `${lost} acked creates missing after restore, counter short by ${r.missing.counterShort}`,
    );
    expect(r.integrity).toBe('ok');
    expect(lost).toBeGreaterThan(0);
  });
});
