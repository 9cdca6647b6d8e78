// Edge cases that used to change, duplicate or hide data (issue 13, points 1-3 and 9-11): ids near 2^53, bodies
// that are not UTF-8 JSON, Idempotency-Key bytes, HEAD, percent-encoded path segments, PATCH {} and huge errors.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { issueDetails, MAX_ISSUES } from '../src/http/schemas.js';
import { rawConnect, rawRequest } from './helpers/raw-http.js';
import { killAll, req, startServer, tempDir, type Running } from './helpers/server.js';

afterAll(killAll);

/** Sends `body` as exact bytes (fetch would re-encode a string); `type` null sends no Content-Type. */
async function sendBytes(s: Running, method: string, url: string, body: Buffer, type: string | null = 'application/json', headers: Record<string, string> = {}) {
  const conn = await rawConnect(s.port);
  const h: Record<string, string> = { Host: 'localhost', 'Content-Length': String(body.length), ...headers };
  if (type !== null) h['Content-Type'] = type;
  const head = `${method} ${url} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  conn.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  const r = await conn.response();
  conn.destroy();
  return { status: r.status, headers: r.headers, body: r.body ? r.json() : undefined };
}

/** A request head written byte for byte (latin1), for header bytes no client library would send. */
async function rawHead(s: Running, head: string) {
  const conn = await rawConnect(s.port);
  conn.write(Buffer.from(head, 'latin1'));
  try {
    const r = await conn.response();
    // uWS's own answers are HTML pages, not JSON.
    return { status: r.status, body: r.by === 'server' && r.body ? r.json() : undefined, closed: conn.closed };
  } finally {
    conn.destroy();
  }
}

describe('ids near 2^53 (DATA_FILE)', () => {
  it('a create that cannot get a safe id fails with 507 and stores nothing; every stored row answers by its id', async () => {
    const dir = tempDir('near-max-');
    const file = path.join(dir, 'data.json');
    fs.writeFileSync(file, JSON.stringify({ products: [{ id: 9007199254740990, name: 'near max', price: 1 }] }));
    const dbPath = path.join(dir, 'app.db');
    const s = await startServer({ dbPath, env: { DATA_FILE: file } });

    const first = await req(s.url, 'POST', '/products', { name: 'last safe', price: 1 });
    expect(first.status).toBe(201);
    expect(first.body.id).toBe(9007199254740991);
    expect(first.headers.get('location')).toBe('/products/9007199254740991');
    for (let i = 0; i < 3; i++) {
      const r = await req(s.url, 'POST', '/products', { name: 'one too many', price: 1 });
      expect(r.status).toBe(507);
      expect(r.body.error.code).toBe('id_space_exhausted');
    }
    // What SQLite holds is exactly what was acknowledged, and each row answers GET and DELETE by its id.
    const db = new Database(dbPath, { readonly: true });
    const ids = db.prepare('SELECT id FROM products ORDER BY id').safeIntegers(true).pluck().all();
    db.close();
    expect(ids).toEqual([9007199254740990n, 9007199254740991n]);
    const page = await req(s.url, 'GET', '/products?after=9007199254740989');
    expect(page.body.items.map((p: { id: number }) => p.id)).toEqual([9007199254740990, 9007199254740991]);
    expect((await req(s.url, 'GET', '/products/9007199254740991')).body.name).toBe('last safe');
    expect((await req(s.url, 'DELETE', '/products/9007199254740991')).status).toBe(204);
    expect(await s.stop()).toBe(0);
  });
});

describe('HTTP edge cases', () => {
  let s: Running;
  beforeAll(async () => {
    s = await startServer();
  });
  afterAll(async () => {
    await s.stop();
  });

  it('refuses bodies that are not well-formed UTF-8 with the byte offset, and stores none of them', async () => {
    const cases: [string, Buffer, number][] = [
      ['Latin-1 byte', Buffer.from('{"name":"caf\xe9","price":1}', 'latin1'), 12],
      ['CESU-8 surrogate', Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('","price":1}')]), 9],
      ['overlong /', Buffer.concat([Buffer.from('{"name":"a'), Buffer.from([0xc0, 0xaf]), Buffer.from('","price":1}')]), 10],
      ['truncated at the end', Buffer.concat([Buffer.from('{"name":"a","price":1}'), Buffer.from([0xe2, 0x82])]), 22],
    ];
    for (const [what, body, offset] of cases) {
      const r = await sendBytes(s, 'POST', '/products', body);
      expect({ what, status: r.status, code: r.body?.error.code }).toEqual({ what, status: 400, code: 'invalid_json' });
      expect(r.body.error.message).toContain(`byte offset ${offset}`);
    }
    expect((await req(s.url, 'GET', '/products?limit=100')).body.items.filter((p: { name: string }) => p.name.startsWith('caf'))).toEqual([]);
    const ok = await sendBytes(s, 'POST', '/products', Buffer.from('{"name":"café €𝄞","price":1}'));
    expect(ok.status).toBe(201);
    expect(ok.body.name).toBe('café €𝄞');
  });

  it('reads bodies as JSON only when Content-Type says JSON (or says nothing): 415 otherwise', async () => {
    const body = Buffer.from('{"name":"typed","price":1}');
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'application/json; charset=iso-8859-1', 'application/jsonx']) {
      const r = await sendBytes(s, 'POST', '/products', body, type);
      expect({ type, status: r.status, code: r.body?.error.code }).toEqual({ type, status: 415, code: 'unsupported_media_type' });
    }
    for (const type of [null, 'application/json', 'Application/JSON; Charset="UTF-8"', 'application/merge-patch+json', 'application/json;charset=utf-8']) {
      expect({ type, status: (await sendBytes(s, 'POST', '/products', body, type)).status }).toEqual({ type, status: 201 });
    }
    // PUT, PATCH and increment check it too; an increment with no body needs no type, whatever is sent.
    expect((await sendBytes(s, 'PATCH', '/products/1', Buffer.from('{"price":2}'), 'text/plain')).status).toBe(415);
    expect((await sendBytes(s, 'POST', '/counters/typed/increment', Buffer.from('{"by":2}'), 'text/plain')).status).toBe(415);
    expect((await sendBytes(s, 'POST', '/counters/typed/increment', Buffer.alloc(0), null)).body).toEqual({ name: 'typed', value: 1 });
    expect((await sendBytes(s, 'POST', '/counters/typed/increment', Buffer.alloc(0), 'application/x-www-form-urlencoded')).body).toEqual({
      name: 'typed',
      value: 2,
    });
    // The connection stays usable after a 415 (the body was read before the answer).
    const conn = await rawConnect(s.port);
    conn.write(rawRequest('POST', '/products', '{"name":"x","price":1}', { 'Content-Type': 'text/plain' }) + rawRequest('GET', '/healthz'));
    expect((await conn.response()).status).toBe(415);
    expect((await conn.response()).status).toBe(200);
    conn.destroy();
  });

  it('refuses an Idempotency-Key with bytes outside printable ASCII, or sent twice, and runs nothing', async () => {
    const head = (key: string) => `POST /counters/idem/increment HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n${key}\r\n`;
    const refused = async (key: string) => {
      const r = await rawHead(s, head(key));
      expect({ key, status: r.status, code: r.body?.error?.code }).toEqual({ key, status: 400, code: 'validation_failed' });
      return r;
    };
    await refused('Idempotency-Key: \xc3\xa9\r\n'); // é as UTF-8: uWS trims both bytes, leaving an empty key
    await refused('Idempotency-Key: \xc3\xa9\r\n');
    await refused('Idempotency-Key: zz\xe9ab\r\n');
    await refused('Idempotency-Key: zz\xc3\xa9ab\r\n');
    await refused('Idempotency-Key: a\x7fb\r\n');
    await refused('Idempotency-Key:\r\n');
    const twice = await refused('Idempotency-Key: a\r\nIdempotency-Key: b\r\n');
    expect(JSON.stringify(twice.body)).toContain('more than one');
    // A control byte or NUL: uWS itself answers 400 (no JSON) and closes the connection.
    for (const key of ['Idempotency-Key: a\x01b\r\n', 'Idempotency-Key: a\x00b\r\n']) {
      const r = await rawHead(s, head(key));
      expect(r.status).toBe(400);
      await r.closed;
    }
    // None of them ran: the counter was never created.
    expect((await req(s.url, 'GET', '/counters/idem')).status).toBe(404);
  });

  it('answers HEAD wherever GET is: same status and headers, no body', async () => {
    const p = (await req(s.url, 'POST', '/products', { name: 'head', price: 3 })).body;
    for (const url of [`/products/${p.id}`, '/products?limit=2', '/products/99999999', '/products/x', '/healthz', '/readyz', '/openapi.json', '/counters/nope']) {
      const get = await req(s.url, 'GET', url);
      const head = await new Promise<http.IncomingMessage & { bodyBytes: number }>((resolve, reject) => {
        const r = http.request(`${s.url}${url}`, { method: 'HEAD' }, (res) => {
          let n = 0;
          res.on('data', (b: Buffer) => (n += b.length));
          res.on('end', () => resolve(Object.assign(res, { bodyBytes: n })));
        });
        r.on('error', reject);
        r.end();
      });
      expect({ url, status: head.statusCode }).toEqual({ url, status: get.status });
      expect(head.headers['content-length']).toBe(String(Buffer.byteLength(get.text)));
      expect(head.headers['content-type']).toBe(get.headers.get('content-type') ?? undefined);
      expect(head.bodyBytes).toBe(0);
    }
    // On the wire: nothing follows HEAD's head; the next pipelined response starts right after it.
    const conn = await rawConnect(s.port);
    const chunks: Buffer[] = [];
    conn.socket.on('data', (b: Buffer) => chunks.push(b));
    conn.write(rawRequest('HEAD', `/products/${p.id}`) + rawRequest('GET', '/healthz'));
    await new Promise((r) => setTimeout(r, 300));
    conn.destroy();
    const wire = Buffer.concat(chunks).toString('latin1');
    const firstEnd = wire.indexOf('\r\n\r\n') + 4;
    expect(wire.slice(0, 15)).toBe('HTTP/1.1 200 OK');
    expect(wire.slice(firstEnd, firstEnd + 15)).toBe('HTTP/1.1 200 OK');
    expect(wire.endsWith('{"status":"ok"}')).toBe(true);
    // 405 lists HEAD with GET.
    expect((await req(s.url, 'DELETE', '/healthz')).headers.get('allow')).toBe('GET, HEAD');
  });

  it('percent-decodes path parameters once; refuses %2F, malformed escapes, and "." / ".." as counter names', async () => {
    const p = (await req(s.url, 'POST', '/products', { name: 'encoded', price: 1 })).body;
    const encodedId = [...String(p.id)].map((c) => `%3${c}`).join('');
    expect((await req(s.url, 'GET', `/products/${encodedId}`)).body.id).toBe(p.id);
    expect((await req(s.url, 'POST', '/counters/a%2Eb/increment')).body).toEqual({ name: 'a.b', value: 1 });
    expect((await req(s.url, 'GET', '/counters/a.b')).body).toEqual({ name: 'a.b', value: 1 });
    expect((await req(s.url, 'GET', '/counters/a%2eb')).body).toEqual({ name: 'a.b', value: 1 });
    for (const url of ['/counters/a%2Fb', '/counters/a%2fb/increment', '/counters/%zz', '/counters/a%2', '/counters/%C3', '/products/%3']) {
      const method = url.endsWith('/increment') ? 'POST' : 'GET';
      const r = await req(s.url, method, url);
      expect({ url, status: r.status, code: r.body?.error.code }).toEqual({ url, status: 400, code: 'validation_failed' });
    }
    // Dot-segments, sent as is (raw socket: fetch would remove them) or encoded.
    for (const name of ['.', '..', '%2E', '%2e%2E']) {
      const r = await rawHead(s, `POST /counters/${name}/increment HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
      expect({ name, status: r.status }).toEqual({ name, status: 400 });
    }
  });

  it('PATCH {} leaves updated_at alone; a body of thousands of unknown keys gets a short error', async () => {
    const p = (await req(s.url, 'POST', '/products', { name: 'still', price: 1 })).body;
    await new Promise((r) => setTimeout(r, 5));
    const patched = await req(s.url, 'PATCH', `/products/${p.id}`, {});
    expect(patched.status).toBe(200);
    expect(patched.body).toEqual(p);
    expect((await req(s.url, 'GET', `/products/${p.id}`)).body.updated_at).toBe(p.updated_at);
    expect((await req(s.url, 'PATCH', '/products/99999999', {})).status).toBe(404);

    const huge: Record<string, number> = {};
    for (let i = 0; i < 2500; i++) huge[`unknown_key_${i}`] = 1;
    const r = await req(s.url, 'POST', '/products', huge);
    expect(r.status).toBe(400);
    expect(r.text.length).toBeLessThan(4096);
    expect(r.text).toContain('and 2490 more');
  });
});

describe('issueDetails', () => {
  it(`lists at most ${MAX_ISSUES} issues and counts the rest`, () => {
    const r = z.array(z.string()).safeParse(Array.from({ length: 50 }, (_, i) => i));
    expect(r.success).toBe(false);
    const details = issueDetails(r.error!, 'body');
    expect(details.length).toBe(MAX_ISSUES + 1);
    expect(details.at(-1)).toEqual({ path: 'body', message: '30 more issues not listed' });
  });
});
