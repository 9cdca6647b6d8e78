// The operational endpoints (/healthz, /readyz, /metrics) and routing errors (404, 405, keep-alive after an early
// error), against the real built server, once per reader mode (test/helpers/api.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError, expectJson, READER_MODES, serverPerSuite } from './helpers/api.js';
import { rawConnect, rawRequest } from './helpers/raw-http.js';
import { killAll, metric, req } from './helpers/server.js';
import { logLines } from './helpers/wait.js';

afterAll(killAll);

describe.each(READER_MODES)('API with READERS=%i (%s)', (readers, _mode) => {
  const server = serverPerSuite(readers);
  let base: string;
  beforeAll(() => {
    base = server.s.url;
  });

  it('runs in the requested reader mode', () => {
    expect(logLines(server.s, 'readers ready')[0]).toMatchObject({ readers, mode: readers === 0 ? 'inline' : 'pool' });
  });

  describe('operations', () => {
    it('GET /healthz -> 200', async () => {
      const r = await req(base, 'GET', '/healthz');
      expect(r.status).toBe(200);
      expectJson(r);
    });

    it('GET /readyz -> 200 once started, storage ok', async () => {
      const r = await req(base, 'GET', '/readyz');
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ status: 'ready', storage: 'ok' });
    });

    it('GET /health and /ready answer as /healthz and /readyz (paths Cloud Run\'s front end does not reserve); HEAD too', async () => {
      for (const [alias, original] of [
        ['/health', '/healthz'],
        ['/ready', '/readyz'],
      ] as const) {
        const [a, o] = [await req(base, 'GET', alias), await req(base, 'GET', original)];
        expect({ status: a.status, body: a.body }).toEqual({ status: o.status, body: o.body });
        expectJson(a);
        const head = await fetch(base + alias, { method: 'HEAD' });
        expect(head.status).toBe(200);
        expect(await head.text()).toBe('');
      }
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
      const c = await rawConnect(server.s.port);
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
});
