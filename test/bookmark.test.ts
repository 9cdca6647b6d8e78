// The replica position (docs/followers.md): with a replica, every transaction the writer commits moves it by one,
// and every successful write is answered with its transaction's position in a Bookmark header; without one (no
// follower can exist) nothing is tracked. Real servers; the replica is a file:// one (real Litestream).
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LITESTREAM_BIN, missingTools } from './helpers/gcs.js';
import { killAll, req, startServer, tempDir } from './helpers/server.js';

afterAll(killAll);

const replicaEnv = () => ({ REPLICA_URL: `file://${path.join(tempDir('bm-replica-'), 'r')}`, LITESTREAM_BIN: LITESTREAM_BIN!, LITESTREAM_METRICS_ADDR: 'off' });

const bookmark = (h: Headers): number | null => (h.get('bookmark') === null ? null : Number(h.get('bookmark')));

describe('Bookmark', () => {
  it('without a replica: no Bookmark, no position kept (no follower can read this database)', async () => {
    const s = await startServer();
    const r = await req(s.url, 'POST', '/products', { name: 'plain', price: 1 });
    expect(r.status).toBe(201);
    expect(r.headers.get('bookmark')).toBeNull();
    expect((await req(s.url, 'GET', '/metrics')).text).toMatch(/^writer_replica_position 0$/m);
    expect(await s.stop()).toBe(0);
  });
});

describe.skipIf(missingTools())('Bookmark with a replica', () => {
  it('every successful write carries its transaction\'s position; positions grow; a failed write carries none; an idempotent replay carries one at least as new as the original', async () => {
    const s = await startServer({ env: replicaEnv() });
    let last = 0;
    for (let i = 0; i < 5; i++) {
      const r = await req(s.url, 'POST', '/products', { name: `b${i}`, price: 1 });
      expect(r.status).toBe(201);
      const b = bookmark(r.headers)!;
      expect(b).toBeGreaterThan(last);
      last = b;
    }
    const inc = await req(s.url, 'POST', '/counters/x/increment', { by: 2 });
    expect(bookmark(inc.headers)).toBeGreaterThan(last);
    const del = await req(s.url, 'DELETE', '/products/1');
    expect(del.status).toBe(204);
    expect(bookmark(del.headers)).toBeGreaterThan(bookmark(inc.headers)!);

    const bad = await req(s.url, 'POST', '/products', { name: '', price: -1 });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('bookmark')).toBeNull();
    const missing = await req(s.url, 'PATCH', '/products/999999', { price: 2 });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('bookmark')).toBeNull();

    const key = { 'Idempotency-Key': 'bm-1' };
    const first = await req(s.url, 'POST', '/products', { name: 'idem', price: 1 }, key);
    const again = await req(s.url, 'POST', '/products', { name: 'idem', price: 1 }, key);
    expect(again.body.id).toBe(first.body.id);
    expect(bookmark(again.headers)).toBeGreaterThanOrEqual(bookmark(first.headers)!);
    // The gauge says the newest position.
    const metrics = (await req(s.url, 'GET', '/metrics')).text;
    expect(Number(/^writer_replica_position (\d+)/m.exec(metrics)?.[1])).toBe(bookmark(again.headers));
    expect(await s.stop()).toBe(0);
  });

  it('writes committed together share one position (one transaction)', async () => {
    const s = await startServer({ env: { ...replicaEnv(), WRITE_BATCH_WAIT_MS: '20' } });
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => req(s.url, 'POST', '/counters/y/increment', { by: i })));
    const positions = new Set(rs.map((r) => bookmark(r.headers)));
    // 20 concurrent writes, a 20 ms batch window: far fewer transactions than writes.
    expect(positions.size).toBeLessThan(20);
    expect(await s.stop()).toBe(0);
  });
});
