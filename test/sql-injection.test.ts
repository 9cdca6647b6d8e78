// Only prepared statements touch SQL: injection strings in every field and path/query parameter are stored
// verbatim or rejected by validation, never executed, and no answer carries SQL or a stack trace.
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, req, startServer } from './helpers/server.js';

afterAll(killAll);

const PAYLOADS = [
  "'; DROP TABLE products; --",
  "1 OR 1=1",
  "x'); DELETE FROM counters; --",
  '" OR ""="',
  "1; UPDATE products SET price = 0",
  "Robert'); DROP TABLE counters;--",
  "' UNION SELECT sql FROM sqlite_master --",
];

function expectNoLeak(text: string): void {
  expect(text).not.toMatch(/sqlite_|SQLITE_|syntax error|no such|\bat [\w.]+ \(|node:internal/);
}

describe('SQL injection', () => {
  it('stores hostile strings verbatim in body fields and rejects them in ids, names and query parameters', async () => {
    const s = await startServer();
    expect((await req(s.url, 'POST', '/counters/safe/increment')).status).toBe(200);

    for (const p of PAYLOADS) {
      const created = await req(s.url, 'POST', '/products', { name: p, price: 1, description: p });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ name: p, description: p });
      const id = created.body.id as number;
      const patched = await req(s.url, 'PATCH', `/products/${id}`, { description: p + p });
      expect(patched.body.description).toBe(p + p);
      expect((await req(s.url, 'GET', `/products/${id}`)).body.name).toBe(p);

      for (const r of [
        await req(s.url, 'GET', `/products/${encodeURIComponent(p)}`),
        await req(s.url, 'DELETE', `/products/${encodeURIComponent(p)}`),
        await req(s.url, 'GET', `/counters/${encodeURIComponent(p)}`),
        await req(s.url, 'POST', `/counters/${encodeURIComponent(p)}/increment`),
        await req(s.url, 'GET', `/products?limit=${encodeURIComponent(p)}`),
        await req(s.url, 'GET', `/products?after=${encodeURIComponent(p)}`),
        await req(s.url, 'POST', '/counters/safe/increment', { by: p }),
      ]) {
        expect([400, 404]).toContain(r.status);
        expectNoLeak(r.text);
      }
    }
    // NUL would truncate SQLite's length(): refused by validation, not by a CHECK constraint.
    const nul = await req(s.url, 'POST', '/products', { name: "\u0000' UNION SELECT sql FROM sqlite_master --", price: 1 });
    expect(nul.status).toBe(400);
    expect(nul.body.error.code).toBe('validation_failed');
    expect((await req(s.url, 'GET', '/counters/safe')).body).toEqual({ name: 'safe', value: 1 });
    expect(await s.stop()).toBe(0);

    const db = new Database(s.dbPath, { readonly: true });
    try {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
      expect(tables).toEqual(expect.arrayContaining(['counters', 'products']));
      expect(db.prepare('SELECT count(*) FROM products').pluck().get()).toBe(PAYLOADS.length);
      expect(db.prepare('SELECT name FROM products ORDER BY id').pluck().all()).toEqual(PAYLOADS);
      expect(db.prepare('SELECT count(*) FROM counters').pluck().get()).toBe(1);
    } finally {
      db.close();
    }
  });
});
