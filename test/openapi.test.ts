// /openapi.json is generated from the zod schemas; it must describe exactly the routes the server registers.
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, req, startServer } from './helpers/server.js';
import { logLines } from './helpers/wait.js';

afterAll(killAll);

describe('OpenAPI document', () => {
  it('lists every registered route and nothing else, with bodies, parameters and error shapes', async () => {
    const s = await startServer({ env: { LOG_LEVEL: 'debug' } });
    const r = await req(s.url, 'GET', '/openapi.json');
    expect(r.status).toBe(200);
    const doc = r.body;
    expect(doc.openapi).toBe('3.1.0');

    const registered = (logLines(s, 'routes registered')[0]?.routes as string[]).slice().sort();
    const documented: string[] = [];
    for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
      for (const method of Object.keys(item)) {
        if (method === 'parameters') continue;
        documented.push(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`);
      }
    }
    expect(documented.sort()).toEqual(registered);
    expect(registered.length).toBeGreaterThanOrEqual(11);

    // Bodies come from the same schemas the server validates with.
    const create = doc.paths['/products'].post.requestBody.content['application/json'].schema;
    expect(create).toMatchObject({ type: 'object', required: ['name', 'price'], additionalProperties: false });
    expect(create.properties.name).toMatchObject({ type: 'string', minLength: 1, maxLength: 200 });
    expect(doc.paths['/products/{id}'].parameters[0]).toMatchObject({ name: 'id', in: 'path', required: true });
    expect(doc.paths['/products/{id}'].delete.responses['404'].content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/Error',
    });
    // Prefer: durability (issue 15) on every write, its 504 and 400s, and Preference-Applied on the 2xx.
    const writes = [doc.paths['/products'].post, doc.paths['/products/{id}'].put, doc.paths['/products/{id}'].patch, doc.paths['/products/{id}'].delete, doc.paths['/counters/{name}/increment'].post];
    for (const op of writes) {
      expect(op.parameters.map((p: { name: string }) => p.name)).toContain('Prefer');
      expect(op.responses['504'].description).toMatch(/replication_timeout/);
      expect(op.responses['400'].description).toMatch(/durability_unavailable/);
      const ok = op.responses['201'] ?? op.responses['200'] ?? op.responses['204'];
      expect(ok.headers['Preference-Applied']).toBeDefined();
    }
    // The probe aliases (Cloud Run reserves some paths ending in z at its front end), /metrics' 401, writes' 507.
    for (const p of ['/health', '/healthz', '/ready', '/readyz']) expect(doc.paths[p].get.responses['200']).toBeDefined();
    expect(doc.paths['/metrics'].get.responses['401'].description).toMatch(/unauthorized/);
    for (const op of writes) expect(op.responses['507'].description).toMatch(/insufficient_storage/);
    expect(Object.keys(doc.components.schemas).sort()).toEqual(['Counter', 'Error', 'Product', 'ProductPage']);

    // A real response conforms to the documented Product shape (required keys, no extras).
    const p = (await req(s.url, 'POST', '/products', { name: 'doc', price: 2 })).body;
    const product = doc.components.schemas.Product;
    expect(Object.keys(p).sort()).toEqual(Object.keys(product.properties).sort());
    expect(product.required.slice().sort()).toEqual(Object.keys(p).sort());
    expect(await s.stop()).toBe(0);
  });
});
