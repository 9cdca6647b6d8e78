// The HTTP contract, endpoint by endpoint and status by status, against the real built server.
// The whole suite runs once per reader mode: inline reads on the main thread, and a piscina pool.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionRefused, rawConnect, rawRequest, type RawConn } from './helpers/raw-http.js';
import { killAll, metric, req, startServer, type Reply, type Running } from './helpers/server.js';
import { logLines, waitFor, waitForOutput } from './helpers/wait.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

function expectJson(r: { headers: Headers }): void {
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  expect(r.headers.get('x-content-type-options')).toBe('nosniff');
}

/** Every error is {"error": {"code", "message", "details"?}} with the catalogue's status. */
function expectError(r: Reply, status: number, code: string): void {
  expect({ status: r.status, body: r.body }).toMatchObject({ status, body: { error: { code } } });
  expectJson(r);
  expect(Object.keys(r.body)).toEqual(['error']);
  const e = r.body.error as Record<string, unknown>;
  expect(typeof e.message).toBe('string');
  expect((e.message as string).length).toBeGreaterThan(0);
  for (const k of Object.keys(e)) expect(['code', 'message', 'details']).toContain(k);
  if (code === 'validation_failed') {
    expect(Array.isArray(e.details)).toBe(true);
    expect((e.details as unknown[]).length).toBeGreaterThan(0);
  } else if (e.details !== undefined) {
    expect(Array.isArray(e.details)).toBe(true);
  }
}

function expectProduct(p: any, want: { name: string; price: number; description?: string; stock?: number }): void {
  expect(Object.keys(p).sort()).toEqual(['created_at', 'description', 'id', 'name', 'price', 'stock', 'updated_at']);
  expect(Number.isSafeInteger(p.id) && p.id > 0).toBe(true);
  expect(p).toMatchObject({ name: want.name, price: want.price, description: want.description ?? '', stock: want.stock ?? 0 });
  expect(p.created_at).toMatch(ISO);
  expect(p.updated_at).toMatch(ISO);
  expect(Number.isNaN(Date.parse(p.created_at))).toBe(false);
  expect(p.updated_at >= p.created_at).toBe(true);
}

afterAll(killAll);

describe.each([
  [0, 'inline reads on the main thread'],
  [2, 'a piscina reader pool'],
] as const)('API with READERS=%i (%s)', (readers, _mode) => {
  let s: Running;
  let base: string;
  const create = async (body: Record<string, unknown>) => {
    const r = await req(base, 'POST', '/products', body);
    expect(r.status).toBe(201);
    return r.body;
  };

  beforeAll(async () => {
    s = await startServer({ env: { READERS: String(readers) } });
    base = s.url;
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('runs in the requested reader mode', () => {
    expect(logLines(s, 'readers ready')[0]).toMatchObject({ readers, mode: readers === 0 ? 'inline' : 'pool' });
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

  describe('counters', () => {
    it('POST /counters/{name}/increment: no body adds 1, {"by": n} adds n; a missing counter starts at 0', async () => {
      const name = `c-${readers}`;
      const first = await req(base, 'POST', `/counters/${name}/increment`);
      expect(first.status).toBe(200);
      expectJson(first);
      expect(first.body).toEqual({ name, value: 1 });
      expect((await req(base, 'POST', `/counters/${name}/increment`, { by: 5 })).body).toEqual({ name, value: 6 });
      expect((await req(base, 'POST', `/counters/${name}/increment`, {})).body).toEqual({ name, value: 7 });
      expect((await req(base, 'POST', `/counters/${name}/increment`, { by: -10 })).body).toEqual({ name, value: -3 });
      expect((await req(base, 'POST', `/counters/${name}/increment`, { by: 1_000_000_000 })).body).toEqual({
        name,
        value: 999_999_997,
      });
      expect((await req(base, 'POST', `/counters/${name}/increment`, { by: -1_000_000_000 })).body).toEqual({ name, value: -3 });
      const fresh = await req(base, 'POST', `/counters/fresh-${readers}/increment`, { by: 42 });
      expect(fresh.body).toEqual({ name: `fresh-${readers}`, value: 42 });
    });

    it('GET /counters/{name} -> 200 {name, value}, 404 not_found when it never existed', async () => {
      const name = `A.z_0-9.${readers}`;
      await req(base, 'POST', `/counters/${name}/increment`, { by: 3 });
      const r = await req(base, 'GET', `/counters/${name}`);
      expect(r.status).toBe(200);
      expectJson(r);
      expect(r.body).toEqual({ name, value: 3 });
      expectError(await req(base, 'GET', `/counters/never-${readers}`), 404, 'not_found');
    });

    it('accepts a 64-character name', async () => {
      const name = 'n'.repeat(63) + String(readers);
      expect((await req(base, 'POST', `/counters/${name}/increment`)).body).toEqual({ name, value: 1 });
      expect((await req(base, 'GET', `/counters/${name}`)).status).toBe(200);
    });

    it.each([
      ['|by| over 1e9', { by: 1_000_000_001 }],
      ['by under -1e9', { by: -1_000_000_001 }],
      ['a fractional by', { by: 1.5 }],
      ['by as a string', { by: '2' }],
      ['an unknown field', { by: 1, extra: true }],
    ])('increment with %s -> 400 validation_failed (and nothing changes)', async (_what, body) => {
      const name = `v-${readers}`;
      await req(base, 'POST', `/counters/${name}/increment`, { by: 10 });
      const before = (await req(base, 'GET', `/counters/${name}`)).body.value;
      expectError(await req(base, 'POST', `/counters/${name}/increment`, body), 400, 'validation_failed');
      expect((await req(base, 'GET', `/counters/${name}`)).body.value).toBe(before);
    });

    it('increment with malformed JSON -> 400 invalid_json', async () => {
      expectError(await req(base, 'POST', '/counters/j/increment', '{"by":'), 400, 'invalid_json');
    });

    it.each(['bad!name', 'a%20b', 'n'.repeat(65), 'caf%C3%A9', 'a*b'])('a bad counter name %j -> 400 validation_failed', async (name) => {
      expectError(await req(base, 'POST', `/counters/${name}/increment`), 400, 'validation_failed');
      expectError(await req(base, 'GET', `/counters/${name}`), 400, 'validation_failed');
    });
  });

  describe('operations', () => {
    it('GET /healthz -> 200', async () => {
      const r = await req(base, 'GET', '/healthz');
      expect(r.status).toBe(200);
      expectJson(r);
    });

    it('GET /readyz -> 200 once started', async () => {
      const r = await req(base, 'GET', '/readyz');
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ status: 'ready' });
    });

    it('GET /metrics -> Prometheus text with the writer, SQLite and HTTP metrics', async () => {
      await req(base, 'POST', '/counters/metrics/increment');
      const r = await fetch(base + '/metrics');
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await r.text();
      for (const [name, type] of [
        ['writer_batches_total', 'counter'],
        ['writer_commands_total', 'counter'],
        ['writer_batch_size', 'histogram'],
        ['writer_commit_seconds', 'histogram'],
        ['writer_queue_depth', 'gauge'],
        ['sqlite_busy_retries_total', 'counter'],
        ['http_requests_total', 'counter'],
        ['http_request_duration_seconds', 'histogram'],
      ]) {
        expect(text).toContain(`# TYPE ${name} ${type}\n`);
      }
      expect(text).toMatch(/^writer_batch_size_bucket\{le="\+Inf"\} [1-9]\d*$/m);
      expect(text).toMatch(/^writer_commit_seconds_count [1-9]\d*$/m);
      expect(text).toMatch(/^sqlite_busy_retries_total \d+$/m);
      expect(text).toMatch(/^writer_queue_depth \d+$/m);
      expect(text).toMatch(/^http_request_duration_seconds_bucket\{le="[^"]+",route="[^"]+"\} \d+$/m);
      expect(await metric(base, 'http_requests_total', 'route="POST /counters/:name/increment",status="200"')).toBeGreaterThan(0);
      expect(await metric(base, 'writer_batches_total')).toBeGreaterThan(0);
      expect(await metric(base, 'writer_commands_total')).toBeGreaterThan(0);
    });

    it('counts responses by route and status in http_requests_total', async () => {
      const label = 'route="GET /products/:id",status="404"';
      const before = await metric(base, 'http_requests_total', label);
      await req(base, 'GET', '/products/987654321');
      await req(base, 'GET', '/products/987654322');
      expect(await metric(base, 'http_requests_total', label)).toBe(before + 2);
    });
  });

  describe('routing errors', () => {
    it.each(['/nope', '/products/1/extra', '/counters', '/counters/x/decrement', '/'])('GET %s -> 404 not_found', async (path) => {
      expectError(await req(base, 'GET', path), 404, 'not_found');
    });

    it.each([
      ['PUT', '/products', 'GET, HEAD, POST'],
      ['DELETE', '/products', 'GET, HEAD, POST'],
      ['POST', '/products/1', 'GET, HEAD, PUT, PATCH, DELETE'],
      ['POST', '/counters/x', 'GET, HEAD'],
      ['GET', '/counters/x/increment', 'POST'],
      ['POST', '/healthz', 'GET, HEAD'],
      ['DELETE', '/metrics', 'GET, HEAD'],
    ])('%s %s -> 405 method_not_allowed with Allow', async (method, path, allow) => {
      const r = await req(base, method, path, method === 'GET' || method === 'DELETE' ? undefined : {});
      expectError(r, 405, 'method_not_allowed');
      const got = (r.headers.get('allow') ?? '').split(',').map((m) => m.trim()).sort();
      expect(got).toEqual(allow.split(', ').sort());
    });

    it('an error answered before the body is read leaves the keep-alive connection usable', async () => {
      const c = await rawConnect(s.port);
      try {
        for (const [method, path, status] of [
          ['POST', '/nope', 404],
          ['PATCH', '/products/abc', 400],
          ['PUT', '/products', 405],
        ] as const) {
          c.write(rawRequest(method, path, JSON.stringify({ name: 'x', price: 1, description: 'y'.repeat(300) })));
          expect((await c.response()).status).toBe(status);
          c.write(rawRequest('GET', '/healthz'));
          const next = await c.response();
          expect(next.status).toBe(200);
          expect(next.json()).toMatchObject({ status: 'ok' });
        }
        expect(c.isClosed()).toBe(false);
      } finally {
        c.destroy();
      }
    });

  });

  describe('payload_too_large (MAX_BODY_BYTES=1024)', () => {
    let small: Running;
    beforeAll(async () => {
      small = await startServer({ env: { READERS: String(readers), MAX_BODY_BYTES: '1024', LINGER_TIMEOUT_MS: '1000' } });
    });
    afterAll(async () => {
      await small?.stop();
    });

    /** A valid create body of exactly n bytes. */
    const bodyOf = (n: number) => {
      const skeleton = JSON.stringify({ name: 'big', price: 1, description: '' });
      return JSON.stringify({ name: 'big', price: 1, description: 'd'.repeat(n - skeleton.length) });
    };

    it('a body of exactly MAX_BODY_BYTES is accepted', async () => {
      const body = bodyOf(1024);
      expect(Buffer.byteLength(body)).toBe(1024);
      expect((await req(small.url, 'POST', '/products', body)).status).toBe(201);
    });

    it('one byte over -> 413 payload_too_large with Connection: close', async () => {
      const body = bodyOf(1025);
      expect(Buffer.byteLength(body)).toBe(1025);
      const r = await req(small.url, 'POST', '/products', body);
      expectError(r, 413, 'payload_too_large');
      expect(r.headers.get('connection')).toBe('close');
      const inc = await req(small.url, 'POST', '/counters/big/increment', JSON.stringify({ by: 1, pad: 'x'.repeat(2000) }));
      expectError(inc, 413, 'payload_too_large');
    });

    it('answers as soon as a declared Content-Length passes the cap, without waiting for the body, then closes', async () => {
      const c = await rawConnect(small.port);
      try {
        c.write(rawRequest('POST', '/products', '{"name":"x","price":1,"description":"', { 'Content-Length': '100000' }));
        // The answer is sent whole at once; its last chunk only once the body is over, which it never is here,
        // so the connection closes at the linger bound (LINGER_TIMEOUT_MS=1000) without it.
        await waitFor(() => c.received().includes('"code":"payload_too_large"'), 'the 413', 900);
        expect(c.received()).toMatch(/^HTTP\/1\.1 413 [^\r]*\r\n[\s\S]*Connection: close\r\n/);
        await c.closed;
      } finally {
        c.destroy();
      }
    });

    it('answers as soon as a chunked body passes the cap (no Content-Length), then closes', async () => {
      const c = await rawConnect(small.port);
      try {
        c.write(rawRequest('POST', '/products', '', { 'Transfer-Encoding': 'chunked' }));
        const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
        c.write(chunk('{"name":"x","price":1,"description":"' + 'd'.repeat(500)));
        c.write(chunk('d'.repeat(600)));
        // The terminating chunk is never sent: the reply must not wait for it.
        await waitFor(() => c.received().includes('"code":"payload_too_large"'), 'the 413', 900);
        expect(c.received()).toMatch(/^HTTP\/1\.1 413 [^\r]*\r\n[\s\S]*Connection: close\r\n/);
        await c.closed;
      } finally {
        c.destroy();
      }
    });

    it('a client that disconnects halfway through its body does not upset the server', async () => {
      const c = await rawConnect(small.port);
      c.write(rawRequest('POST', '/products', '{"name":"half', { 'Content-Length': '500' }));
      await waitFor(async () => (await metric(small.url, 'http_requests_total', 'route="POST /products",status="201"')) >= 1, 'metrics');
      c.destroy();
      await waitFor(
        async () => (await metric(small.url, 'http_requests_total', 'route="POST /products",status="499"')) === 1,
        'the aborted upload to be recorded',
      );
      expect(small.proc.exitCode).toBeNull();
    });

    it('the server keeps serving other connections afterwards', async () => {
      expect((await req(small.url, 'GET', '/healthz')).status).toBe(200);
    });
  });

  describe('overloaded (WRITE_QUEUE_MAX=1, slow writer)', () => {
    let slow: Running;
    beforeAll(async () => {
      slow = await startServer({ env: { READERS: String(readers), WRITE_QUEUE_MAX: '1', TEST_WRITER_DELAY_MS: '300' } });
    });
    afterAll(async () => {
      await slow?.stop();
    });

    it('past the write queue bound, writes get 503 overloaded with Retry-After; the rest succeed', async () => {
      const rs = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          i % 2 === 0 ? req(slow.url, 'POST', '/counters/ov/increment') : req(slow.url, 'POST', '/products', { name: `ov-${i}`, price: 1 }),
        ),
      );
      const ok = rs.filter((r) => r.status === 200 || r.status === 201);
      const over = rs.filter((r) => r.status === 503);
      expect(ok.length + over.length).toBe(20);
      expect(ok.length).toBeGreaterThanOrEqual(1);
      expect(over.length).toBeGreaterThanOrEqual(1);
      for (const r of over) {
        expectError(r, 503, 'overloaded');
        expect(r.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
      }
      // A refused increment was not applied.
      const okIncrements = rs.filter((r, i) => i % 2 === 0 && r.status === 200).length;
      const counter = await req(slow.url, 'GET', '/counters/ov');
      expect(counter.status === 404 ? 0 : counter.body.value).toBe(okIncrements);
      expect(await metric(slow.url, 'overloaded_rejections_total')).toBe(over.length);
      // Reads are not bounded by the write queue.
      expect((await req(slow.url, 'GET', '/products?limit=1')).status).toBe(200);
    });

    it('a client that disconnects while its write waits does not upset the server; the accepted write still commits', async () => {
      await waitFor(async () => (await metric(slow.url, 'writer_queue_depth')) === 0, 'the write queue to empty');
      const c = await rawConnect(slow.port);
      c.write(rawRequest('POST', '/counters/aborted/increment', JSON.stringify({ by: 2 })));
      await waitFor(async () => (await metric(slow.url, 'writer_queue_depth')) === 1, 'the write to be queued');
      c.destroy();
      await waitFor(async () => (await metric(slow.url, 'writer_queue_depth')) === 0, 'the write to be answered');
      expect(await metric(slow.url, 'http_requests_total', 'route="POST /counters/:name/increment",status="499"')).toBe(1);
      expect(slow.proc.exitCode).toBeNull();
      expect((await req(slow.url, 'GET', '/counters/aborted')).body).toEqual({ name: 'aborted', value: 2 });
      expect((await req(slow.url, 'POST', '/counters/aborted/increment')).body).toEqual({ name: 'aborted', value: 3 });
    });
  });

  describe.runIf(readers > 0)('read queue bound (READ_QUEUE_MAX=1)', () => {
    let r1: Running;
    beforeAll(async () => {
      r1 = await startServer({ env: { READERS: String(readers), READ_QUEUE_MAX: '1' } });
      for (let i = 0; i < 100; i++) await req(r1.url, 'POST', '/products', { name: `rq-${i}`, price: i, description: 'x'.repeat(500) });
    });
    afterAll(async () => {
      await r1?.stop();
    });

    it('past READ_QUEUE_MAX reads in flight, reads get 503 overloaded with Retry-After; the rest 200', async () => {
      const rs = await Promise.all(Array.from({ length: 50 }, () => req(r1.url, 'GET', '/products?limit=100')));
      const ok = rs.filter((r) => r.status === 200);
      const over = rs.filter((r) => r.status === 503);
      expect(ok.length + over.length).toBe(50);
      expect(ok.length).toBeGreaterThanOrEqual(1);
      expect(over.length).toBeGreaterThanOrEqual(1);
      for (const r of over) {
        expectError(r, 503, 'overloaded');
        expect(r.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
      }
      for (const r of ok) expect(r.body.items).toHaveLength(100);
    });
  });

  describe('draining (SIGTERM with a write in flight)', () => {
    let d: Running;
    const conns: RawConn[] = [];
    beforeAll(async () => {
      d = await startServer({ env: { READERS: String(readers), TEST_WRITER_DELAY_MS: '2500' } });
    });
    afterAll(async () => {
      for (const c of conns) c.destroy();
      await d?.stop('SIGKILL');
    });

    it('answers new requests on open connections with 503 unavailable + Connection: close, /readyz 503, and still commits the in-flight write', async () => {
      // Keep-alive connections opened (and proven live) before the signal.
      const open = async () => {
        const c = await rawConnect(d.port);
        conns.push(c);
        c.write(rawRequest('GET', '/healthz'));
        expect((await c.response()).status).toBe(200);
        expect(c.isClosed()).toBe(false);
        return c;
      };
      const [ready, read, write, health, inflight] = await Promise.all([open(), open(), open(), open(), open()]);

      inflight.write(rawRequest('POST', '/products', JSON.stringify({ name: 'in-flight', price: 1 })));
      await waitFor(async () => (await metric(d.url, 'writer_queue_depth')) === 1, 'the write to be queued');
      const inflightReply = inflight.response(15_000);

      d.proc.kill('SIGTERM');
      await waitForOutput(d, /"msg":"draining"/);

      ready!.write(rawRequest('GET', '/readyz'));
      const rz = await ready!.response();
      expect(rz.status).toBe(503);
      expect(rz.json()).toMatchObject({ status: 'draining' });

      read!.write(rawRequest('GET', '/products/1'));
      const rr = await read!.response();
      expect(rr.status).toBe(503);
      expect(rr.json()).toMatchObject({ error: { code: 'unavailable' } });
      expect(rr.headers.connection).toBe('close');
      expect(rr.headers['x-content-type-options']).toBe('nosniff');
      await read!.closed;

      write!.write(rawRequest('POST', '/counters/late/increment'));
      const wr = await write!.response();
      expect(wr.status).toBe(503);
      expect(wr.json()).toMatchObject({ error: { code: 'unavailable' } });
      expect(wr.headers.connection).toBe('close');
      await write!.closed;

      health!.write(rawRequest('GET', '/healthz'));
      expect((await health!.response()).status).toBe(200);

      // The listen socket is closed: a new connection is refused.
      expect(await connectionRefused(d.port)).toBe(true);

      // The write accepted before the signal is answered with its result, not dropped.
      const ir = await inflightReply;
      expect(ir.status).toBe(201);
      expect(ir.json()).toMatchObject({ name: 'in-flight' });
      expect(await d.exited).toBe(0);
    });
  });
});
