// MAX_BODY_BYTES, per reader mode: the exact cap passes, one byte over is 413 payload_too_large with
// Connection: close, answered as soon as a declared length or a chunked body passes the cap; a client leaving
// halfway through its body upsets nothing. test/lingering-close.test.ts covers what happens to the rest of the body.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError, READER_MODES } from './helpers/api.js';
import { rawConnect, rawRequest } from './helpers/raw-http.js';
import { killAll, metric, req, startServer, type Running } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

afterAll(killAll);

describe.each(READER_MODES)('API with READERS=%i (%s)', (readers, _mode) => {
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
});
