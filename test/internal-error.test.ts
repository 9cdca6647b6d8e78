// A real fault, not an injected one: another process drops the products table under the running server.
// Reads and writes then fail inside SQLite with "no such table"; clients must get a bare 500 `internal`
// (no SQL, no stack), the cause must be logged, and the server must keep serving everything else.
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, req, startServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

afterAll(killAll);

describe.each([0, 2])('internal errors (READERS=%i)', (readers) => {
  it('answer 500 internal without leaking internals, log the cause, and leave other routes working', async () => {
    const s = await startServer({ env: { READERS: String(readers) } });
    expect((await req(s.url, 'POST', '/products', { name: 'a', price: 1 })).status).toBe(201);

    const other = new Database(s.dbPath);
    other.exec('DROP TABLE products');
    other.close();

    for (const r of [
      await req(s.url, 'POST', '/products', { name: 'b', price: 2 }),
      await req(s.url, 'GET', '/products/1'),
      await req(s.url, 'GET', '/products?limit=5'),
    ]) {
      expect(r.status).toBe(500);
      expect(r.body).toEqual({ error: { code: 'internal', message: 'internal error' } });
      expect(r.text).not.toMatch(/products|sqlite|table|at /i);
    }
    // The writer logged the SQLite error; counters still work.
    await waitFor(() => /no such table: products/.test(s.output()), 'the SQLite error in the logs');
    expect((await req(s.url, 'POST', '/counters/c/increment')).body).toEqual({ name: 'c', value: 1 });
    expect((await req(s.url, 'GET', '/healthz')).status).toBe(200);
    expect(await s.stop()).toBe(0);
  });
});
