// The HTTP contract for GET /products (offset and keyset pages), against the real built server, once per
// reader mode (test/helpers/api.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProduct, expectError, expectJson, expectProduct, ISO, READER_MODES, serverPerSuite } from './helpers/api.js';
import { killAll, req } from './helpers/server.js';

afterAll(killAll);

describe.each(READER_MODES)('API with READERS=%i (%s)', (readers, _mode) => {
  const server = serverPerSuite(readers);
  let base: string;
  const create = (body: Record<string, unknown>) => createProduct(base, body);
  beforeAll(() => {
    base = server.s.url;
  });

  describe('listing', () => {
    let ids: number[];
    beforeAll(async () => {
      ids = [];
      for (let i = 0; i < 25; i++) ids.push((await create({ name: `list-${i}`, price: i })).id);
    });

    it('GET /products defaults to limit 20, offset 0, ordered by id', async () => {
      const r = await req(base, 'GET', '/products');
      expect(r.status).toBe(200);
      expectJson(r);
      expect(Object.keys(r.body).sort()).toEqual(['items', 'limit', 'offset']);
      expect(r.body.limit).toBe(20);
      expect(r.body.offset).toBe(0);
      expect(r.body.items).toHaveLength(20);
      const got = (r.body.items as { id: number }[]).map((p) => p.id);
      expect(got).toEqual([...got].sort((a, b) => a - b));
      for (const p of r.body.items) expect(p.created_at).toMatch(ISO);
    });

    it('GET /products?limit&offset pages by position', async () => {
      const first = await req(base, 'GET', '/products?limit=5&offset=0');
      const second = await req(base, 'GET', '/products?limit=3&offset=2');
      expect(second.status).toBe(200);
      expect(second.body).toMatchObject({ limit: 3, offset: 2 });
      expect(second.body.items).toEqual(first.body.items.slice(2, 5));
      const far = await req(base, 'GET', '/products?limit=10&offset=1000000');
      expect(far.body).toEqual({ items: [], limit: 10, offset: 1000000 });
    });

    it('GET /products?limit&after pages by key (ids greater than after)', async () => {
      const r = await req(base, 'GET', `/products?limit=10&after=${ids[0]! - 1}`);
      expect(r.status).toBe(200);
      expect(Object.keys(r.body).sort()).toEqual(['after', 'items', 'limit']);
      expect(r.body.limit).toBe(10);
      expect(r.body.after).toBe(ids[0]! - 1);
      expect(r.body.items.map((p: { id: number }) => p.id)).toEqual(ids.slice(0, 10));
      expectProduct(r.body.items[0], { name: 'list-0', price: 0 });

      const last = await req(base, 'GET', `/products?limit=100&after=${ids[19]}`);
      expect(last.body.items.map((p: { id: number }) => p.id)).toEqual(ids.slice(20));
      const none = await req(base, 'GET', `/products?after=${ids[24]}`);
      expect(none.body).toEqual({ items: [], limit: 20, after: ids[24] });
      const max = await req(base, 'GET', '/products?limit=100&after=0');
      expect(max.body.items.length).toBeLessThanOrEqual(100);
      expect(max.body.items.length).toBeGreaterThanOrEqual(25);
    });

    it.each([
      'limit=0',
      'limit=101',
      'limit=-1',
      'limit=abc',
      'limit=1.5',
      'offset=-1',
      'offset=x',
      'after=-1',
      'after=x',
      'limit=5&offset=0&after=1',
      'offset=3&after=3',
    ])('GET /products?%s -> 400 validation_failed', async (q) => {
      expectError(await req(base, 'GET', `/products?${q}`), 400, 'validation_failed');
    });
  });
});
