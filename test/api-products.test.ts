// The HTTP contract for /products/{id} and POST /products, status by status, against the real built server,
// once per reader mode (test/helpers/api.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProduct, expectError, expectJson, expectProduct, READER_MODES, serverPerSuite } from './helpers/api.js';
import { killAll, req } from './helpers/server.js';

afterAll(killAll);

describe.each(READER_MODES)('API with READERS=%i (%s)', (readers, _mode) => {
  const server = serverPerSuite(readers);
  let base: string;
  const create = (body: Record<string, unknown>) => createProduct(base, body);
  beforeAll(() => {
    base = server.s.url;
  });

  describe('products', () => {
    it('POST /products -> 201, Location, the product with defaults and ISO-8601 timestamps', async () => {
      const r = await req(base, 'POST', '/products', { name: 'widget', price: 9.5 });
      expect(r.status).toBe(201);
      expectJson(r);
      expectProduct(r.body, { name: 'widget', price: 9.5 });
      expect(r.headers.get('location')).toBe(`/products/${r.body.id}`);

      const full = await req(base, 'POST', '/products', { name: 'gadget', price: 0, description: 'shiny', stock: 3 });
      expect(full.status).toBe(201);
      expectProduct(full.body, { name: 'gadget', price: 0, description: 'shiny', stock: 3 });
      expect(full.body.id).toBeGreaterThan(r.body.id);
    });

    it.each([
      ['missing name', { price: 1 }],
      ['missing price', { name: 'x' }],
      ['empty name', { name: '', price: 1 }],
      ['name over 200 chars', { name: 'n'.repeat(201), price: 1 }],
      ['negative price', { name: 'x', price: -0.01 }],
      ['price as a string', { name: 'x', price: '1' }],
      ['description over 2000 chars', { name: 'x', price: 1, description: 'd'.repeat(2001) }],
      ['fractional stock', { name: 'x', price: 1, stock: 1.5 }],
      ['negative stock', { name: 'x', price: 1, stock: -1 }],
      ['an unknown field', { name: 'x', price: 1, colour: 'red' }],
      ['a JSON array', [1, 2]],
      ['JSON null', null],
    ])('POST /products with %s -> 400 validation_failed', async (_what, body) => {
      expectError(await req(base, 'POST', '/products', JSON.stringify(body)), 400, 'validation_failed');
    });

    it('accepts the boundary values (name 200 chars, description 2000 chars, price 0, stock 0)', async () => {
      const body = { name: 'n'.repeat(200), price: 0, description: 'd'.repeat(2000), stock: 0 };
      const r = await req(base, 'POST', '/products', body);
      expect(r.status).toBe(201);
      expectProduct(r.body, body);
    });

    it.each([
      ['malformed JSON', '{"name": "x", '],
      ['an empty body', ''],
      ['plain text', 'hello'],
    ])('POST /products with %s -> 400 invalid_json', async (_what, text) => {
      expectError(await req(base, 'POST', '/products', text), 400, 'invalid_json');
    });

    it('GET /products/{id} -> 200 the product, 404 not_found for a missing row', async () => {
      const p = await create({ name: 'get-me', price: 1.25, description: 'x', stock: 2 });
      const r = await req(base, 'GET', `/products/${p.id}`);
      expect(r.status).toBe(200);
      expectJson(r);
      expect(r.body).toEqual(p);
      expectError(await req(base, 'GET', `/products/${p.id + 100_000}`), 404, 'not_found');
      expectError(await req(base, 'GET', `/products/${Number.MAX_SAFE_INTEGER}`), 404, 'not_found');
    });

    it.each(['abc', '0', '-1', '1.5', '9007199254740992', '99999999999999999', '1e3'])(
      'a bad id %j in the path -> 400 validation_failed on every method',
      async (id) => {
        expectError(await req(base, 'GET', `/products/${id}`), 400, 'validation_failed');
        expectError(await req(base, 'PATCH', `/products/${id}`, { price: 1 }), 400, 'validation_failed');
        expectError(await req(base, 'PUT', `/products/${id}`, { name: 'x', price: 1 }), 400, 'validation_failed');
        expectError(await req(base, 'DELETE', `/products/${id}`), 400, 'validation_failed');
      },
    );

    it('PATCH /products/{id} changes only the given fields -> 200; 404 for a missing row', async () => {
      const p = await create({ name: 'patch-me', price: 5, description: 'keep', stock: 7 });
      const r = await req(base, 'PATCH', `/products/${p.id}`, { price: 6.5 });
      expect(r.status).toBe(200);
      expectJson(r);
      expectProduct(r.body, { name: 'patch-me', price: 6.5, description: 'keep', stock: 7 });
      expect(r.body.id).toBe(p.id);
      expect(r.body.created_at).toBe(p.created_at);
      expect(r.body.updated_at >= p.updated_at).toBe(true);

      const r2 = await req(base, 'PATCH', `/products/${p.id}`, { name: 'renamed', stock: 0, description: '' });
      expect(r2.status).toBe(200);
      expectProduct(r2.body, { name: 'renamed', price: 6.5, description: '', stock: 0 });
      expect((await req(base, 'GET', `/products/${p.id}`)).body).toEqual(r2.body);

      const empty = await req(base, 'PATCH', `/products/${p.id}`, {});
      expect(empty.status).toBe(200);
      expectProduct(empty.body, { name: 'renamed', price: 6.5, description: '', stock: 0 });
      expectError(await req(base, 'PATCH', `/products/${p.id + 100_000}`, { price: 1 }), 404, 'not_found');
      expectError(await req(base, 'PATCH', `/products/${p.id}`, { price: -1 }), 400, 'validation_failed');
      expectError(await req(base, 'PATCH', `/products/${p.id}`, { name: null }), 400, 'validation_failed');
      expectError(await req(base, 'PATCH', `/products/${p.id}`, '{'), 400, 'invalid_json');
      // The failed attempts changed nothing.
      expect((await req(base, 'GET', `/products/${p.id}`)).body).toEqual(empty.body);
    });

    it('PUT /products/{id} replaces: omitted optionals reset to defaults -> 200; 404 for a missing row', async () => {
      const p = await create({ name: 'put-me', price: 5, description: 'will be reset', stock: 9 });
      const r = await req(base, 'PUT', `/products/${p.id}`, { name: 'replaced', price: 7 });
      expect(r.status).toBe(200);
      expectJson(r);
      expectProduct(r.body, { name: 'replaced', price: 7, description: '', stock: 0 });
      expect(r.body.id).toBe(p.id);
      expect(r.body.created_at).toBe(p.created_at);
      expect((await req(base, 'GET', `/products/${p.id}`)).body).toEqual(r.body);

      const r2 = await req(base, 'PUT', `/products/${p.id}`, { name: 'again', price: 8, description: 'd', stock: 1 });
      expectProduct(r2.body, { name: 'again', price: 8, description: 'd', stock: 1 });

      expectError(await req(base, 'PUT', `/products/${p.id + 100_000}`, { name: 'x', price: 1 }), 404, 'not_found');
      // PUT needs the required fields.
      expectError(await req(base, 'PUT', `/products/${p.id}`, { price: 1 }), 400, 'validation_failed');
      expectError(await req(base, 'PUT', `/products/${p.id}`, { name: 'x' }), 400, 'validation_failed');
    });

    it('DELETE /products/{id} -> 204 with no body, then 404', async () => {
      const p = await create({ name: 'delete-me', price: 1 });
      const r = await req(base, 'DELETE', `/products/${p.id}`);
      expect(r.status).toBe(204);
      expect(r.text).toBe('');
      // RFC 9110: a 204 carries no Content-Length.
      expect(r.headers.get('content-length')).toBeNull();
      expectError(await req(base, 'GET', `/products/${p.id}`), 404, 'not_found');
      expectError(await req(base, 'DELETE', `/products/${p.id}`), 404, 'not_found');
      expectError(await req(base, 'PATCH', `/products/${p.id}`, { price: 2 }), 404, 'not_found');
      expectError(await req(base, 'PUT', `/products/${p.id}`, { name: 'x', price: 2 }), 404, 'not_found');
    });

    it('never reuses an id, even the highest one after it is deleted (AUTOINCREMENT)', async () => {
      const p = await create({ name: 'last', price: 1 });
      expect((await req(base, 'DELETE', `/products/${p.id}`)).status).toBe(204);
      const q = await create({ name: 'next', price: 1 });
      expect(q.id).toBeGreaterThan(p.id);
    });
  });
});
