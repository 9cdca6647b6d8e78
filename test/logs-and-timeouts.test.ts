// Access log (one pino-format line per request, or per error by default; request id echoed, never the body), writer batch summaries at
// debug, and the timeout on pending responses that uWS's idle timeout does not give.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { ENTRY, killAll, req, startServer, tempDir } from './helpers/server.js';
import { logLines, waitFor } from './helpers/wait.js';

afterAll(killAll);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

describe('access log', () => {
  it('logs one line per request with id, method, route, status and duration; echoes X-Request-Id; never logs bodies', async () => {
    const s = await startServer({ env: { LOG_LEVEL: 'debug', ACCESS_LOG: 'all' } });
    const secret = 'SECRET-BODY-7f3a';
    const created = await req(s.url, 'POST', '/products', { name: secret, price: 1 }, { 'X-Request-Id': 'client-id-1' });
    expect(created.status).toBe(201);
    expect(created.headers.get('x-request-id')).toBe('client-id-1');
    // An id that cannot be echoed as is (a quote) is replaced by a generated one.
    const bad = await req(s.url, 'GET', '/products/999999', undefined, { 'X-Request-Id': 'evil"id' });
    expect(bad.status).toBe(404);
    const generated = bad.headers.get('x-request-id')!;
    expect(generated).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
    const other = await req(s.url, 'DELETE', '/healthz');
    expect(other.headers.get('x-request-id')).not.toBe(generated);

    const lines = await waitFor(() => {
      const l = logLines(s, 'request');
      return l.length >= 3 ? l : null;
    }, 'three access log lines');
    expect(lines[0]).toMatchObject({ level: 30, component: 'http', reqId: 'client-id-1', method: 'POST', route: 'POST /products', status: 201 });
    expect(lines[1]).toMatchObject({ reqId: generated, method: 'GET', route: 'GET /products/:id', status: 404 });
    // A route registered for any method logs the method that was sent.
    expect(lines[2]).toMatchObject({ method: 'DELETE', route: 'ANY /healthz', status: 405 });
    for (const l of lines) {
      expect(typeof l.ms).toBe('number');
      expect(Date.parse(l.time as string)).not.toBeNaN();
    }
    expect(s.output()).not.toContain(secret);
    // Writer batch summaries at debug.
    expect(logLines(s, 'batch committed')[0]).toMatchObject({ thread: 'writer', commands: 1, busyRetries: 0 });
    expect(await s.stop()).toBe(0);
  });

  it('by default (ACCESS_LOG=errors) logs only the requests answered with a status >= 400', async () => {
    const s = await startServer();
    expect((await req(s.url, 'POST', '/products', { name: 'lamp', price: 1 })).status).toBe(201);
    expect((await req(s.url, 'GET', '/products/1')).status).toBe(200);
    expect((await req(s.url, 'GET', '/products/999999', undefined, { 'X-Request-Id': 'missing-1' })).status).toBe(404);
    expect((await req(s.url, 'POST', '/products', { name: '' })).status).toBe(400);
    expect((await req(s.url, 'GET', '/healthz')).status).toBe(200);
    expect(await s.stop()).toBe(0);
    const lines = logLines(s, 'request');
    expect(lines.map((l) => [l.route, l.status])).toEqual([
      ['GET /products/:id', 404],
      ['POST /products', 400],
    ]);
    expect(lines[0]).toMatchObject({ reqId: 'missing-1', method: 'GET', component: 'http' });
  });

  it('is off with ACCESS_LOG=0, while the other info lines stay', async () => {
    const s = await startServer({ env: { ACCESS_LOG: '0' } });
    expect((await req(s.url, 'GET', '/healthz')).headers.get('x-request-id')).toBeTruthy();
    expect((await req(s.url, 'GET', '/products/999999')).status).toBe(404);
    expect(await s.stop()).toBe(0);
    expect(logLines(s, 'request')).toHaveLength(0);
    expect(logLines(s, 'shutdown complete')).toHaveLength(1);
  });

  it('is off above info', async () => {
    // No info lines means no "listening" line either: take a free port and poll it.
    const port = await freePort();
    const s = spawn(process.execPath, [ENTRY], {
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DB_PATH: path.join(tempDir(), 'app.db'), LOG_LEVEL: 'warn' },
    });
    let out = '';
    s.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise((resolve) => s.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false), 'the server to answer');
      expect((await req(`http://127.0.0.1:${port}`, 'GET', '/products/1')).status).toBe(404);
    } finally {
      s.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(out).not.toContain('"msg":"request"');
  });
});

describe('pending responses time out (REQUEST_TIMEOUT_MS)', () => {
  it('answers 503 request_timeout with Retry-After, keeps serving, and the slow write still commits', async () => {
    const s = await startServer({ env: { REQUEST_TIMEOUT_MS: '300', TEST_WRITER_DELAY_MS: '1500' } });
    const t0 = performance.now();
    const r = await req(s.url, 'POST', '/counters/slow/increment');
    const ms = performance.now() - t0;
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('request_timeout');
    expect(r.headers.get('retry-after')).toBe('1');
    expect(ms).toBeGreaterThanOrEqual(280);
    expect(ms).toBeLessThan(1400);
    expect((await req(s.url, 'GET', '/healthz')).status).toBe(200);
    // The outcome was unknown to the client; the write itself was not cancelled.
    await waitFor(async () => (await req(s.url, 'GET', '/counters/slow')).status === 200, 'the slow write to commit');
    expect((await req(s.url, 'GET', '/counters/slow')).body).toEqual({ name: 'slow', value: 1 });
    expect(await s.stop()).toBe(0);
  });
});
