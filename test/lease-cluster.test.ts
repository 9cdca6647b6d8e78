// One writer per replica, with two real server processes (separate data directories, one fake-gcs-server bucket,
// loopback), each reaching the emulator through its own proxy: handover under load (five times back and forth),
// kill -9 of the leader, a frozen leader (SIGSTOP past the TTL) that wakes up after another took over, and the
// bucket cut off for 20 s. Lease timings are shortened (TTL 2 s, renew 0.4 s). docs/lease.md.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { groupKill, LEASE_ENV, ltxWritesSince, readyz, TAKEOVER_MS, termViolations, useCluster, type Cluster, type Node } from './helpers/cluster.js';
import { LITESTREAM_BIN, missingTools } from './helpers/gcs.js';
import { readDb, restoreWithCli } from './helpers/replica.js';
import { req, startServer, tempDir } from './helpers/server.js';
import { logLines, waitFor } from './helpers/wait.js';

const skip = missingTools();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Ack {
  id: number;
  name: string;
  node: string;
  at: number;
}

/**
 * `concurrency` clients creating products, each sent to whichever node `target()` names at that moment. Every 2xx
 * is recorded with the node that answered; anything else is a failure, with its status and body.
 */
function writers(target: () => Node, concurrency: number, headers: Record<string, string> = {}) {
  const acks: Ack[] = [];
  const failures: string[] = [];
  let running = true;
  let n = 0;
  const client = async (c: number) => {
    while (running) {
      const node = target();
      const name = `w${c}-${n++}`;
      try {
        const r = await req(node.s.url, 'POST', '/products', { name, price: 1 }, headers);
        if (r.status === 201) acks.push({ id: r.body.id, name, node: node.name, at: performance.now() });
        else failures.push(`${node.name} ${r.status} ${r.text.slice(0, 200)}`);
      } catch (err) {
        failures.push(`${node.name} ${(err as Error).message}: ${String((err as Error).cause ?? '')}`);
      }
    }
  };
  const done = Promise.all(Array.from({ length: concurrency }, (_, c) => client(c)));
  return {
    acks,
    failures,
    async stop() {
      running = false;
      await done;
    },
  };
}

/** Every acknowledged create is in the database, under its id and name. */
function missing(dbPath: string, acks: Ack[]): string[] {
  const db = readDb(dbPath);
  expect(db.integrity).toBe('ok');
  return acks.filter((a) => db.products.get(a.id)?.name !== a.name).map((a) => `${a.node}#${a.id} ${a.name}`);
}

describe.skipIf(skip)('writer lease: two processes, one replica', () => {
  const cluster = useCluster('lease-cluster');

  it('overlap, then SIGTERM under 64 writers: the standby takes over with no failed request; five handovers back and forth', { timeout: 240_000 }, async () => {
    const c: Cluster = await cluster();
    // A handover by release does not depend on the TTL. With the file's 2 s (the holder gives up 1.6 s after its last
    // good renewal) one clean-clone CI run on 2026-12-03 saw the leader lose its lease in the first overlap and hold
    // the 64 writers until SIGTERM: a loss, which other tests cover, not the handover this one is about. The longer
    // TTL leaves room for a stalled renewal on a loaded runner; leaseLog() says what happened if it fails again.
    const env = { LEASE_TTL_MS: '5000', LEASE_RENEW_MS: '1000' };
    let leader = await c.start('A', { env });
    await c.leading(leader);
    expect((await readyz(leader)).body).toMatchObject({ status: 'ready', role: 'leader' });
    let current = leader;
    const load = writers(() => current, 64);
    const gaps: number[] = [];
    const dirs: Record<string, string> = { A: leader.dbPath };
    for (let round = 1; round <= 5; round++) {
      await sleep(1000);
      // The new instance (B, A, B, ...) on its own directory: it finds the lease held and waits as a standby.
      const name = leader.name === 'A' ? 'B' : 'A';
      const standby = await c.start(name, { dbPath: dirs[name], env });
      dirs[name] = standby.dbPath;
      await waitFor(() => logLines(standby.s, 'standby: another instance holds the writer lease; holding requests until it is released or expires').length > 0, 'standby');
      expect((await readyz(standby)).body).toMatchObject({ status: 'ready', role: 'standby' });
      await sleep(1000); // overlap: both run, only the leader commits
      expect(logLines(standby.s, 'leading: term started')).toHaveLength(0);
      // Cloud Run shifts traffic to the ready new instance, then sends SIGTERM to the old one.
      current = standby;
      await sleep(300);
      const termAt = performance.now();
      leader.s.proc.kill('SIGTERM');
      expect(await leader.s.exited).toBe(0);
      await c.leading(standby);
      // The old leader's last answer (its drained writes included), the new one's first in this round.
      const lastOld = Math.max(...load.acks.filter((a) => a.node === leader.name).map((a) => a.at));
      await waitFor(() => load.acks.some((a) => a.node === standby.name && a.at > termAt), 'a write answered by the new leader');
      const firstNew = Math.min(...load.acks.filter((a) => a.node === standby.name && a.at > termAt).map((a) => a.at));
      gaps.push(firstNew - lastOld);
      leader = standby;
    }
    await sleep(1000);
    await load.stop();
    current.s.proc.kill('SIGTERM');
    expect(await current.s.exited).toBe(0);

    const terms = c.terms();
    const gapsFromLogs = terms.slice(1).map((t, i) => t.firstCommitAt! - terms[i]!.lastCommitAt!);
    console.log(
      `handover x5 under 64 writers: ${load.acks.length} creates acknowledged, ${load.failures.length} failed; ` +
        `write gap (client: last 201 from the old leader -> first from the new) ${gaps.map((g) => g.toFixed(0)).join(', ')} ms; ` +
        `(logs: last commit -> first commit) ${gapsFromLogs.map((g) => g.toFixed(0)).join(', ')} ms; ` +
        `terms ${terms.map((t) => `${t.node}#${t.epoch}:${t.batches}`).join(' ')}`,
    );
    expect(load.failures, c.leaseLog()).toEqual([]);
    expect(terms.map((t) => t.end), c.leaseLog()).toEqual(Array(6).fill('released'));
    expect(termViolations(terms)).toEqual([]);
    // Every write either node acknowledged is in the replica the last one left.
    const restored = await restoreWithCli(c.gcs, c.url);
    expect(missing(restored.dbPath, load.acks)).toEqual([]);
    expect(Math.max(...gaps)).toBeLessThan(8000); // inside STANDBY_HOLD_MS: no held write timed out
  });

  it('standby: reads and writes are held, answered 503 not_leader after STANDBY_HOLD_MS; a held read is answered once it leads, with the last write the old leader acknowledged', { timeout: 60_000 }, async () => {
    const c = await cluster();
    const a = await c.start('A');
    await c.leading(a);
    const b = await c.start('B', { env: { STANDBY_HOLD_MS: '700' } });
    await waitFor(() => logLines(b.s, 'standby: another instance holds the writer lease; holding requests until it is released or expires').length > 0, 'standby');
    // Not answered from a copy: held, then refused, nothing applied.
    for (const [method, url, body] of [['GET', '/products?limit=1'], ['POST', '/products', { name: 'early', price: 1 }]] as const) {
      const t0 = performance.now();
      const r = await req(b.s.url, method, url, body);
      expect(r.status, `${method} ${url}`).toBe(503);
      expect(r.body.error.code).toBe('not_leader');
      expect(r.headers.get('retry-after')).toBe('1');
      expect(performance.now() - t0).toBeGreaterThanOrEqual(650);
    }
    // The old leader's last acknowledged write, then a read held by the standby across the handover.
    const last = await req(a.s.url, 'POST', '/products', { name: 'last-of-A', price: 9 });
    expect(last.status).toBe(201);
    const b2 = await c.start('B2', { env: { STANDBY_HOLD_MS: '8000' } });
    await waitFor(() => logLines(b2.s, 'standby: another instance holds the writer lease; holding requests until it is released or expires').length > 0, 'standby B2');
    const held = req(b2.s.url, 'GET', `/products/${last.body.id}`);
    await sleep(200);
    b.s.proc.kill('SIGTERM'); // a standby stops at once (nothing to hand over)
    expect(await b.s.exited).toBe(0);
    a.s.proc.kill('SIGTERM');
    expect(await a.s.exited).toBe(0);
    const r = await held;
    expect(r.status).toBe(200);
    expect(r.body.name).toBe('last-of-A');
    await c.leading(b2);
    expect(termViolations(c.terms())).toEqual([]);
    expect(c.terms().map((t) => t.node)).toEqual(['A', 'B2']);
    expect(logLines(b.s, 'leading: term started')).toHaveLength(0);
  });

  it('kill -9 of the leader: the standby takes over within TTL + margin + restore; every replicated-acknowledged write survives', { timeout: 90_000 }, async () => {
    const c = await cluster();
    const a = await c.start('A');
    await c.leading(a);
    const b = await c.start('B');
    let target = a;
    const load = writers(() => target, 16, { Prefer: 'durability=replicated' });
    await sleep(2000);
    await c.crash(a);
    const killedAt = performance.now();
    target = b; // held by B until it leads
    await c.leading(b, 1, 30_000);
    const takeoverMs = performance.now() - killedAt;
    await waitFor(() => load.acks.some((x) => x.node === 'B'), 'a write acknowledged by B', 15_000);
    await load.stop();
    const ackedByA = load.acks.filter((x) => x.node === 'A');
    console.log(`kill -9: B led ${takeoverMs.toFixed(0)} ms after the kill (TTL + margin = ${TAKEOVER_MS} ms); ${ackedByA.length} replicated writes acknowledged by A`);
    expect(takeoverMs).toBeLessThan(TAKEOVER_MS + 8000);
    // Failures are only the requests that were in flight at A when it died (connection reset).
    expect(load.failures.every((f) => f.startsWith('A '))).toBe(true);
    b.s.proc.kill('SIGTERM');
    expect(await b.s.exited).toBe(0);
    const restored = await restoreWithCli(c.gcs, c.url);
    expect(missing(restored.dbPath, load.acks)).toEqual([]);
    expect(termViolations(c.terms())).toEqual([]);
  });

  it.each([
    ['the whole container (server and Litestream)', true],
    ['only the server (its Litestream runs on)', false],
  ])('zombie, %s frozen past the TTL with uploads pending: its next commit is refused, and nothing of its Litestream reaches the bucket after the takeover', { timeout: 90_000 }, async (_what, withLitestream) => {
    const c = await cluster();
    // A 5 s sync interval: the writes just before the freeze are still waiting for Litestream's upload when it stops.
    const a = await c.start('A', { env: { LITESTREAM_SYNC_INTERVAL: '5s' } });
    await c.leading(a);
    for (let i = 0; i < 20; i++) {
      expect((await req(a.s.url, 'POST', '/products', { name: `a-${i}`, price: 1 }, { Prefer: 'durability=replicated' })).status).toBe(201);
    }
    const b = await c.start('B');
    for (let i = 0; i < 20; i++) expect((await req(a.s.url, 'POST', '/products', { name: `a-late-${i}`, price: 1 })).status).toBe(201);
    groupKill(a, 'SIGSTOP', { litestream: withLitestream }); // with uploads pending
    await c.leading(b, 1, 30_000);
    const takeoverAt = performance.now();
    const bAcks: Ack[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await req(b.s.url, 'POST', '/products', { name: `b-${i}`, price: 2 }, { Prefer: 'durability=replicated' });
      expect(r.status).toBe(201);
      bAcks.push({ id: r.body.id, name: `b-${i}`, node: 'B', at: performance.now() });
    }
    // A server stuck past Litestream's 5 s sync interval: its Litestream tries to upload the pending files meanwhile.
    if (!withLitestream) await sleep(Math.max(0, 6000 - (performance.now() - takeoverAt)));
    const resumedAt = withLitestream ? performance.now() : takeoverAt;
    groupKill(a, 'SIGCONT', { litestream: withLitestream });
    // Its first write after waking: never committed (fenced), answered 503 not_leader (at once, or after the hold).
    const late = await req(a.s.url, 'POST', '/products', { name: 'zombie', price: 3 });
    expect(late.status).toBe(503);
    expect(late.body.error.code).toBe('not_leader');
    await waitFor(() => logLines(a.s, 'litestream killed: the writer lease is gone (no final upload)').length > 0, 'A killed its Litestream');
    await sleep(2000); // anything A's Litestream would still upload has had time to arrive
    // Whether its Litestream got a chunk out before the kill is a race: the fenced egress cuts it either way.
    const cut = logLines(a.s, 'litestream tried to send to the bucket without a valid writer lease: cut').length;
    console.log(`zombie (${_what}): after the thaw the fenced egress refused ${cut ? 'uploads' : 'nothing it read'}; the bucket saw ${ltxWritesSince(a, resumedAt).length} LTX writes from it`);
    // With its Litestream running on, what it tried to upload meanwhile waited in the stuck server's egress and was
    // cut there (without the egress it would have landed over B's files: what the chaos soak saw before it existed).
    expect(ltxWritesSince(a, resumedAt)).toEqual([]);
    const loss = logLines(a.s, 'writer lease lost: commits fenced, Litestream killed without a final upload; becoming a standby')[0]!;
    expect(loss).toMatchObject({ reason: 'expired' });
    // The line says why: the last good renewal is as old as the freeze, which outlasted the 2 s TTL.
    expect(Number(loss.sinceLastHeldMs)).toBeGreaterThan(Number(LEASE_ENV.LEASE_TTL_MS));
    b.s.proc.kill('SIGTERM');
    expect(await b.s.exited).toBe(0);
    const restored = await restoreWithCli(c.gcs, c.url);
    const db = readDb(restored.dbPath);
    expect(db.integrity).toBe('ok');
    const names = [...db.products.values()].map((p) => p.name as string);
    // The replicated ones are there; the local ones written just before the freeze may be lost (never uploaded).
    expect(names.filter((n) => /^a-\d+$/.test(n))).toHaveLength(20);
    expect(missing(restored.dbPath, bAcks)).toEqual([]);
    expect(names).not.toContain('zombie');
    expect(termViolations(c.terms())).toEqual([]);
    groupKill(a, 'SIGKILL');
  });

  it('the bucket unreachable for 20 s: the leader stops committing within the TTL (503), leads again after, nothing acknowledged lost', { timeout: 120_000 }, async () => {
    const c = await cluster();
    const a = await c.start('A', { env: { STANDBY_HOLD_MS: '1000' } });
    await c.leading(a);
    const load = writers(() => a, 8, { Prefer: 'durability=replicated' });
    await sleep(1500);
    const cutAt = performance.now();
    a.proxy.stall();
    await waitFor(() => logLines(a.s, 'writer lease lost: commits fenced, Litestream killed without a final upload; becoming a standby').length > 0, 'lease lost', 10_000);
    const lostMs = performance.now() - cutAt;
    const lastAckDuringCut = Math.max(0, ...load.acks.filter((x) => x.at > cutAt).map((x) => x.at - cutAt));
    await sleep(Math.max(0, 20_000 - (performance.now() - cutAt)));
    a.proxy.resume();
    await c.leading(a, 2, 30_000);
    const back = performance.now();
    await waitFor(() => load.acks.some((x) => x.at > back), 'writes acknowledged again', 15_000);
    await load.stop();
    const refused = load.failures.filter((f) => /"not_leader"|"replication_timeout"/.test(f)).length;
    console.log(
      `bucket cut 20 s: lease lost after ${lostMs.toFixed(0)} ms (TTL 2000 ms); last ack ${lastAckDuringCut.toFixed(0)} ms into the cut; ` +
        `${refused} requests refused (503/504); led again ${(back - cutAt - 20_000).toFixed(0)} ms after the bucket came back`,
    );
    expect(lostMs).toBeLessThan(2000 + 1000);
    expect(lastAckDuringCut).toBeLessThan(2000);
    expect(load.failures.filter((f) => !/"not_leader"|"replication_timeout"/.test(f))).toEqual([]);
    a.s.proc.kill('SIGTERM');
    expect(await a.s.exited).toBe(0);
    const restored = await restoreWithCli(c.gcs, c.url);
    expect(missing(restored.dbPath, load.acks)).toEqual([]);
  });
});

describe.skipIf(skip)('contrast: the same overlap without a lease', () => {
  it('two servers replicating to one file:// replica (no lease there): both take writes, and acknowledged writes are missing from the replica', { timeout: 60_000 }, async () => {
    const dir = tempDir('shared-replica-');
    const url = `file://${dir}`;
    const env = { REPLICA_URL: url, LITESTREAM_BIN: LITESTREAM_BIN!, LITESTREAM_METRICS_ADDR: 'off' };
    const a = await startServer({ env });
    const b = await startServer({ env });
    try {
      const acks: Ack[] = [];
      for (let i = 0; i < 100; i++) {
        for (const [name, s] of [['A', a], ['B', b]] as const) {
          const r = await req(s.url, 'POST', '/products', { name: `${name}-${i}`, price: 1 });
          expect(r.status).toBe(201); // both accept writes: nothing says which one is the writer
          acks.push({ id: r.body.id, name: `${name}-${i}`, node: name, at: performance.now() });
        }
      }
      expect(await a.stop()).toBe(0);
      expect(await b.stop()).toBe(0);
      const out = path.join(tempDir('restored-'), 'app.db');
      const r = spawnSync(LITESTREAM_BIN!, ['restore', '-o', out, url], { encoding: 'utf8' });
      // Either the restore fails on the mixed chain, or it succeeds with one server's history over the other's.
      const lost = r.status === 0 ? missingSoft(out, acks) : acks.length;
      console.log(`no lease: 2 servers x 100 acknowledged creates; restore exit ${r.status}; ${lost} of ${acks.length} acknowledged writes missing`);
      expect(lost).toBeGreaterThan(0);
    } finally {
      await a.stop('SIGKILL');
      await b.stop('SIGKILL');
    }
  });
});

/** Acknowledged creates missing (or different) in the file. */
function missingSoft(dbPath: string, acks: Ack[]): number {
  const db = readDb(dbPath);
  return acks.filter((a) => db.products.get(a.id)?.name !== a.name).length;
}
