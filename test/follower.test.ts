// Read followers (issue 19, docs/followers.md): one writer and two followers, real server processes on loopback,
// one fake-gcs-server bucket, each node reaching it through its own proxy (what a follower sends to the bucket is
// counted there). Followers poll every 200 ms here (3 s by default) so the tests run in seconds.
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { groupKill, useCluster, type Cluster, type Node } from './helpers/cluster.js';
import { missingTools } from './helpers/gcs.js';
import { req, type Reply } from './helpers/server.js';
import { logLines, waitFor } from './helpers/wait.js';

const skip = missingTools();
const POLL_MS = 200;
const MAX_LAG_MS = 3000;

const followerEnv = (writer: Node, extra: Record<string, string> = {}) => ({
  ROLE: 'follower',
  WRITER_URL: writer.s.url,
  FOLLOWER_POLL_MS: String(POLL_MS),
  FOLLOWER_MAX_LAG_MS: String(MAX_LAG_MS),
  FOLLOWER_WAIT_MS: '3000',
  ...extra,
});

const position = (r: Reply): number => Number(r.headers.get('replica-position'));
const pick = <T,>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

/** A writer that leads, with `n` followers of its replica. */
async function setUp(c: Cluster, n: number, writerEnv: Record<string, string> = {}): Promise<{ writer: Node; followers: Node[] }> {
  const writer = await c.start('W', { env: { WRITER_HEARTBEAT_MS: '1000', ...writerEnv } });
  await c.leading(writer);
  // Something in the replica before a follower restores it.
  expect((await req(writer.s.url, 'POST', '/products', { name: 'first', price: 1 }, { Prefer: 'durability=replicated' })).status).toBe(201);
  const followers: Node[] = [];
  for (let i = 0; i < n; i++) followers.push(await c.start(`F${i + 1}`, { env: followerEnv(writer) }));
  return { writer, followers };
}

/** Requests a follower sent to the bucket that are not reads (it must never write there). */
const bucketWrites = (n: Node): string[] => n.proxy.heads.filter((h) => !h.line.startsWith('GET ')).map((h) => h.line);

describe.skipIf(skip)('read followers', () => {
  const cluster = useCluster('followers');

  it('followers answer reads with the writer\'s data within the lag bound; Replica-Position never goes backwards; they never write to the bucket', { timeout: 90_000 }, async () => {
    const c = await cluster();
    const { writer, followers } = await setUp(c, 2);
    for (const f of followers) {
      const r = await req(f.s.url, 'GET', '/readyz');
      expect(r.status).toBe(200);
      expect(r.body.role).toBe('follower');
      expect(r.headers.get('replica-position')).toMatch(/^\d+$/);
      expect(Number(r.headers.get('replica-age-ms'))).toBeLessThan(MAX_LAG_MS);
    }
    const seen = new Map<string, number>();
    const lags: number[] = [];
    for (let i = 0; i < 10; i++) {
      const w = await req(writer.s.url, 'POST', '/counters/c/increment', { by: 1 });
      expect(w.status).toBe(200);
      const value = w.body.value as number;
      const t0 = performance.now();
      // Without a bookmark: eventually, within Litestream's 1 s upload + a poll.
      for (const f of followers) {
        await waitFor(async () => {
          const r = await req(f.s.url, 'GET', '/counters/c');
          const p = position(r);
          expect(p).toBeGreaterThanOrEqual(seen.get(f.name) ?? 0);
          seen.set(f.name, p);
          return r.status === 200 && r.body.value >= value;
        }, `${f.name} has ${value}`, 5000);
      }
      lags.push(performance.now() - t0);
    }
    lags.sort((a, b) => a - b);
    console.log(`follower lag without a bookmark (local writes, 1 s sync, ${POLL_MS} ms polls): p50 ${lags[5]!.toFixed(0)} ms, max ${lags.at(-1)!.toFixed(0)} ms`);
    // Litestream's 1 s upload interval plus one poll, with room for a slow CI machine.
    expect(lags.at(-1)!).toBeLessThan(1000 + POLL_MS + 2000);
    for (const f of followers) expect(bucketWrites(f)).toEqual([]);
  });

  it('read-your-writes: 10 clients write through a random follower and read back with the Bookmark from another: every read sees its write', { timeout: 90_000 }, async () => {
    const c = await cluster();
    const { followers } = await setUp(c, 2);
    const results = await Promise.all(
      Array.from({ length: 10 }, async (_, client) => {
        const out: { ok: boolean; status: number; waited: number }[] = [];
        for (let i = 0; i < 5; i++) {
          const via = pick(followers);
          const w = await req(via.s.url, 'POST', '/products', { name: `c${client}-${i}`, price: i });
          expect(w.status).toBe(201);
          const bookmark = w.headers.get('bookmark');
          expect(bookmark).toMatch(/^\d+$/);
          const other = followers.find((f) => f !== via)!;
          const t0 = performance.now();
          const r = await req(other.s.url, 'GET', `/products/${w.body.id}`, undefined, { Bookmark: bookmark! });
          out.push({ ok: r.status === 200 && r.body.name === `c${client}-${i}` && position(r) >= Number(bookmark), status: r.status, waited: performance.now() - t0 });
        }
        return out;
      }),
    );
    const all = results.flat();
    const waits = all.map((x) => x.waited).sort((a, b) => a - b);
    console.log(`read-your-writes: ${all.filter((x) => x.ok).length}/${all.length} saw their write; wait p50 ${waits[Math.floor(waits.length / 2)]!.toFixed(0)} ms, max ${waits.at(-1)!.toFixed(0)} ms`);
    expect(all.filter((x) => !x.ok)).toEqual([]);
  });

  it('writes through a follower land exactly once (a retry with the same Idempotency-Key replays); with the writer down the follower answers writes 502 and keeps serving reads', { timeout: 90_000 }, async () => {
    const c = await cluster();
    const { writer, followers } = await setUp(c, 1);
    const f = followers[0]!;
    const key = { 'Idempotency-Key': 'once-through-a-follower' };
    const a = await req(f.s.url, 'POST', '/products', { name: 'once', price: 3 }, key);
    const b = await req(f.s.url, 'POST', '/products', { name: 'once', price: 3 }, key);
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.body.id).toBe(a.body.id);
    const list = await req(writer.s.url, 'GET', '/products?limit=100');
    expect(list.body.items.filter((p: { name: string }) => p.name === 'once')).toHaveLength(1);
    await waitFor(async () => (await req(f.s.url, 'GET', `/products/${a.body.id}`)).status === 200, 'the follower has it', 5000);

    // Idle, the writer beats (WRITER_HEARTBEAT_MS 1000 here): the follower's position moves with no write at all.
    const before = position(await req(f.s.url, 'GET', '/readyz'));
    await waitFor(async () => position(await req(f.s.url, 'GET', '/readyz')) > before, 'a heartbeat reached the follower', 6000);
    expect(Number(/^writer_heartbeats_total (\d+)/m.exec((await req(writer.s.url, 'GET', '/metrics')).text)?.[1])).toBeGreaterThan(0);

    groupKill(writer, 'SIGKILL');
    await writer.s.exited;
    const down = await req(f.s.url, 'POST', '/products', { name: 'lost', price: 1 });
    expect(down.status).toBe(502);
    expect(down.body.error.code).toBe('writer_unreachable');
    const read = await req(f.s.url, 'GET', `/products/${a.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body.name).toBe('once');
    // Its copy is still current (the bucket answers; nothing new in it): ready.
    expect((await req(f.s.url, 'GET', '/readyz')).status).toBe(200);
  });

  it('the copy is never served in WAL mode, and a reader kept open across 100 applied changes never reads older than the position it reports', { timeout: 90_000 }, async () => {
    const c = await cluster();
    const { writer, followers } = await setUp(c, 1);
    const f = followers[0]!;
    // The header says rollback journal (1, 1), not WAL (2, 2), whenever the follower serves.
    const header = Buffer.alloc(20);
    const fd = fs.openSync(f.dbPath, 'r');
    fs.readSync(fd, header, 0, 20, 0);
    fs.closeSync(fd);
    expect([header[18], header[19]]).toEqual([1, 1]);
    expect(fs.existsSync(`${f.dbPath}-wal`)).toBe(false);
    const direct = new Database(f.dbPath, { readonly: true });
    try {
      expect(direct.pragma('journal_mode', { simple: true })).toBe('delete');
      // 100 increments, each replicated (so each is its own upload), each read back through the follower's own
      // long-lived reader connection with the bookmark, and on a connection of ours opened before them all.
      const stale: string[] = [];
      for (let i = 1; i <= 100; i++) {
        const w = await req(writer.s.url, 'POST', '/counters/hazard/increment', { by: 1 }, { Prefer: 'durability=replicated' });
        expect(w.status).toBe(200);
        const r = await req(f.s.url, 'GET', '/counters/hazard', undefined, { Bookmark: w.headers.get('bookmark')! });
        if (r.status !== 200 || r.body.value !== i) stale.push(`step ${i}: ${r.status} ${r.text}`);
        const row = direct.prepare("SELECT value FROM counters WHERE name = 'hazard'").get() as { value: number } | undefined;
        const pos = (direct.prepare('SELECT seq FROM replica_position').get() as { seq: number }).seq;
        if (pos >= Number(w.headers.get('bookmark')) && row?.value !== i) stale.push(`step ${i}: our connection read ${row?.value} at position ${pos}`);
      }
      expect(stale).toEqual([]);
    } finally {
      direct.close();
    }
  });

  it('a follower killed with SIGKILL resumes from its record without a full restore', { timeout: 90_000 }, async () => {
    const c = await cluster();
    const { writer, followers } = await setUp(c, 1);
    const f = followers[0]!;
    for (let i = 0; i < 20; i++) expect((await req(writer.s.url, 'POST', '/products', { name: `r${i}`, price: 1 })).status).toBe(201);
    const last = await req(writer.s.url, 'POST', '/products', { name: 'last', price: 1 }, { Prefer: 'durability=replicated' });
    await waitFor(async () => (await req(f.s.url, 'GET', `/products/${last.body.id}`)).status === 200, 'follower caught up', 5000);
    groupKill(f, 'SIGKILL');
    await f.s.exited;
    const again = await c.start('F1-again', { dbPath: f.dbPath, env: followerEnv(writer) });
    expect(logLines(again.s, 'follower: copy ready')[0]).toMatchObject({ resumed: true });
    expect(logLines(again.s, 'follower: restored the replica')).toEqual([]);
    expect((await req(again.s.url, 'GET', `/products/${last.body.id}`)).body.name).toBe('last');
  });

  it('writer handover (SIGTERM to the leader, a standby takes over) while followers follow: they follow the new leader\'s chain, no restore, no stale read past the bound', { timeout: 120_000 }, async () => {
    const c = await cluster();
    const { writer: a, followers } = await setUp(c, 2);
    const b = await c.start('W2', { env: { WRITER_HEARTBEAT_MS: '1000' } });
    for (let i = 0; i < 10; i++) expect((await req(a.s.url, 'POST', '/counters/h/increment', { by: 1 })).status).toBe(200);
    a.s.proc.kill('SIGTERM');
    expect(await a.s.exited).toBe(0);
    await c.leading(b);
    let last = 0;
    const positions = new Map<string, number>();
    for (let i = 11; i <= 30; i++) {
      const w = await req(b.s.url, 'POST', '/counters/h/increment', { by: 1 });
      expect(w.status).toBe(200);
      expect(w.body.value).toBe(i);
      const bookmark = Number(w.headers.get('bookmark'));
      expect(bookmark).toBeGreaterThan(last);
      last = bookmark;
      for (const f of followers) {
        const r = await req(f.s.url, 'GET', '/counters/h', undefined, { Bookmark: String(bookmark) });
        expect(r.status).toBe(200);
        expect(r.body.value).toBe(i);
        // Served from the copy (a read forwarded to the writer would carry the copy's older position).
        expect(position(r)).toBeGreaterThanOrEqual(bookmark);
        expect(position(r)).toBeGreaterThanOrEqual(positions.get(f.name) ?? 0);
        positions.set(f.name, position(r));
      }
    }
    for (const f of followers) {
      expect(logLines(f.s, 'follower: restored the replica').filter((l) => l.why !== 'start')).toEqual([]);
      expect(bucketWrites(f)).toEqual([]);
    }
  });
});
