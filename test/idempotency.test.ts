// Idempotency-Key: exactly-once effects for retried writes. The first request with a key runs; later ones with the
// same key and the same request get its stored response (4xx included); a different request with the key is 422.
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, req, startServer } from './helpers/server.js';

afterAll(killAll);

const key = (k: string) => ({ 'Idempotency-Key': k });

describe('Idempotency-Key', () => {
  it('20 clients x 50 increments, every request sent twice with its key (every 5th three times, concurrently): exactly 1,000', async () => {
    const s = await startServer();
    const seen: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, async (_, c) => {
        for (let i = 0; i < 50; i++) {
          const k = `inc-${c}-${i}`;
          const copies = i % 5 === 0 ? 3 : 2;
          // The first copy goes out, then the duplicates while it may still be in flight.
          const first = req(s.url, 'POST', '/counters/hits/increment', undefined, key(k));
          const dups = Array.from({ length: copies - 1 }, () => req(s.url, 'POST', '/counters/hits/increment', undefined, key(k)));
          const [a, ...rest] = await Promise.all([first, ...dups]);
          expect(a!.status).toBe(200);
          for (const r of rest) expect({ status: r.status, body: r.body }).toEqual({ status: 200, body: a!.body });
          seen.push(a!.body.value);
          // And once more after it was answered.
          expect((await req(s.url, 'POST', '/counters/hits/increment', undefined, key(k))).body).toEqual(a!.body);
        }
      }),
    );
    expect((await req(s.url, 'GET', '/counters/hits')).body).toEqual({ name: 'hits', value: 1000 });
    expect(new Set(seen).size).toBe(1000);
    expect(await s.stop()).toBe(0);
  });

  it('replays status, body and Location; 4xx outcomes too; a different request with the key is 422; the key survives a restart', async () => {
    const s = await startServer();
    const a = await req(s.url, 'POST', '/products', { name: 'lamp', price: 2, stock: 1 }, key('create-1'));
    expect(a.status).toBe(201);
    // Same request (keys in another order: compared after parsing): the stored response, nothing created.
    const b = await req(s.url, 'POST', '/products', { stock: 1, price: 2, name: 'lamp' }, key('create-1'));
    expect({ status: b.status, body: b.body, location: b.headers.get('location') }).toEqual({
      status: 201,
      body: a.body,
      location: a.headers.get('location'),
    });
    expect((await req(s.url, 'GET', '/products?limit=10')).body.items).toHaveLength(1);

    // Different body, or different path, with the same key: 422, and nothing runs.
    const other = await req(s.url, 'POST', '/products', { name: 'lamp', price: 3 }, key('create-1'));
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('idempotency_key_reused');
    expect((await req(s.url, 'PATCH', `/products/${a.body.id}`, { stock: 1 }, key('create-1'))).status).toBe(422);

    // A 404 is stored too: creating the row afterwards does not change what the key answers.
    const missing = await req(s.url, 'DELETE', '/products/999', undefined, key('del-999'));
    expect(missing.status).toBe(404);
    expect((await req(s.url, 'DELETE', '/products/999', undefined, key('del-999'))).body).toEqual(missing.body);

    // A DELETE retried after it succeeded gets its 204 again, not a 404.
    expect((await req(s.url, 'DELETE', `/products/${a.body.id}`, undefined, key('del-1'))).status).toBe(204);
    expect((await req(s.url, 'DELETE', `/products/${a.body.id}`, undefined, key('del-1'))).status).toBe(204);
    expect((await req(s.url, 'DELETE', `/products/${a.body.id}`)).status).toBe(404);

    // Malformed keys are refused before anything runs.
    const bad = await req(s.url, 'POST', '/counters/x/increment', undefined, key('x'.repeat(129)));
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('header.Idempotency-Key');

    expect(await s.stop()).toBe(0);
    const again = await startServer({ dbPath: s.dbPath });
    expect((await req(again.url, 'POST', '/products', { name: 'lamp', price: 2, stock: 1 }, key('create-1'))).body).toEqual(a.body);
    expect(await again.stop()).toBe(0);
  });

  it('keys expire after IDEMPOTENCY_TTL_S: then the same key runs again', async () => {
    const s = await startServer({ env: { IDEMPOTENCY_TTL_S: '1' } });
    expect((await req(s.url, 'POST', '/counters/ttl/increment', undefined, key('t'))).body.value).toBe(1);
    expect((await req(s.url, 'POST', '/counters/ttl/increment', undefined, key('t'))).body.value).toBe(1);
    await new Promise((r) => setTimeout(r, 1200));
    expect((await req(s.url, 'POST', '/counters/ttl/increment', undefined, key('t'))).body.value).toBe(2);
    expect(await s.stop()).toBe(0);
  });
});
