// A follower forwards every write to the writer (src/follower/forward.ts). Real writer servers on loopback, a TCP
// proxy that counts connections, raw servers that capture or break requests, and a stand-in for the GCE metadata
// server that google-auth-library (unmodified) fetches ID tokens from. Nothing of ours is mocked.
import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WriterForwarder, type ForwardRequest, type ForwardResponse } from '../src/follower/forward.js';
import { AppError } from '../src/shared/errors.js';
import { killAll, req, startServer, tempDir, type Running } from './helpers/server.js';

afterAll(killAll);

function fwdReq(method: string, pathAndQuery: string, body?: unknown, headers: Array<[string, string]> = []): ForwardRequest {
  const withType: Array<[string, string]> =
    body === undefined || headers.some(([n]) => n.toLowerCase() === 'content-type') ? headers : [['Content-Type', 'application/json'], ...headers];
  return {
    method,
    pathAndQuery,
    headers: withType,
    body: body === undefined ? null : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
  };
}

const header = (r: ForwardResponse, name: string): string[] =>
  r.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
const json = (r: ForwardResponse): any => JSON.parse(r.body.toString());

/** The AppError a forward rejected with, and how long it took. */
async function failure(p: Promise<unknown>): Promise<{ err: AppError; ms: number }> {
  const t0 = performance.now();
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return { err: err as AppError, ms: performance.now() - t0 };
  }
  throw new Error('the forward resolved; it should have failed');
}

/** Every product with this name, read back from the writer itself (keyset pages). */
async function productsNamed(base: string, name: string): Promise<any[]> {
  const found: any[] = [];
  for (let after = 0; ; ) {
    const page = (await req(base, 'GET', `/products?limit=100&after=${after}`)).body.items as any[];
    if (page.length === 0) return found;
    found.push(...page.filter((p) => p.name === name));
    after = page[page.length - 1].id;
  }
}

interface Proxy {
  url: string;
  connections(): number;
  close(): Promise<void>;
}

/** A TCP proxy to `port` that counts the connections made through it (the forwarder's connections to the writer). */
async function countingProxy(port: number): Promise<Proxy> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    count++;
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    connections: () => count,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

async function listen(server: http.Server | net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

async function closeServer(server: http.Server | net.Server): Promise<void> {
  if (server instanceof http.Server) server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

describe('forwarding to a real writer', () => {
  let writer: Running;
  let proxy: Proxy;
  let fw: WriterForwarder;

  beforeAll(async () => {
    writer = await startServer({ env: { READERS: '0' } });
    proxy = await countingProxy(writer.port);
    fw = new WriterForwarder({ writerUrl: proxy.url, timeoutMs: 5000, connections: 2 });
  });
  afterAll(async () => {
    await fw?.close();
    await proxy?.close();
    await writer?.stop();
  });

  it('POST /products: the writer 201, its headers and body come back unchanged', async () => {
    const r = await fw.forward(fwdReq('POST', '/products', { name: 'lamp', price: 19.5, stock: 3 }, [['X-Request-Id', 'fwd-create-1']]));
    expect(r.status).toBe(201);
    const product = json(r);
    expect(product).toMatchObject({ name: 'lamp', price: 19.5, stock: 3 });
    expect(header(r, 'Location')).toEqual([`/products/${product.id}`]);
    expect(header(r, 'Content-Type')).toEqual(['application/json']);
    expect(header(r, 'X-Request-Id')).toEqual(['fwd-create-1']);
    // The body is byte for byte what the writer stores and serves for that product.
    expect(r.body.toString()).toBe((await req(writer.url, 'GET', `/products/${product.id}`)).text);
    // Same header fields, in the same order and spelling, as the writer gives a client directly; the body is whole,
    // so no framing field is handed back.
    const direct = await req(writer.url, 'POST', '/products', { name: 'lamp', price: 19.5, stock: 3 });
    const directNames = [...direct.headers.keys()].filter((n) => n !== 'content-length');
    expect(r.headers.map(([n]) => n.toLowerCase()).sort()).toEqual(directNames.sort());
    expect(r.headers.some(([n]) => /^(content-length|connection|keep-alive|transfer-encoding)$/i.test(n))).toBe(false);
  });

  it('a 404 and a 400 validation_failed come back unchanged', async () => {
    for (const [method, path, body] of [
      ['PATCH', '/products/987654', { stock: 1 }],
      ['POST', '/products', { price: -1 }],
      ['POST', '/products', '{"name": '],
    ] as const) {
      const r = await fw.forward(fwdReq(method, path, body));
      const direct = await req(writer.url, method, path, body);
      expect(r.status).toBe(direct.status);
      expect(r.body.toString()).toBe(direct.text);
    }
    const missing = await fw.forward(fwdReq('DELETE', '/products/987654'));
    expect(missing.status).toBe(404);
    expect(json(missing).error.code).toBe('not_found');
    const invalid = await fw.forward(fwdReq('POST', '/products', { price: -1 }));
    expect(invalid.status).toBe(400);
    expect(json(invalid).error).toMatchObject({ code: 'validation_failed' });
  });

  it('a write without a body (an increment, a DELETE) goes through', async () => {
    const inc = await fw.forward(fwdReq('POST', '/counters/no-body/increment'));
    expect({ status: inc.status, body: json(inc) }).toEqual({ status: 200, body: { name: 'no-body', value: 1 } });
    const created = json(await fw.forward(fwdReq('POST', '/products', { name: 'to-delete', price: 1 })));
    const del = await fw.forward(fwdReq('DELETE', `/products/${created.id}`));
    expect(del.status).toBe(204);
    expect(del.body.length).toBe(0);
    expect((await req(writer.url, 'GET', `/products/${created.id}`)).status).toBe(404);
  });

  it('Idempotency-Key is passed through: the same key twice gives one product, the same id', async () => {
    const name = `idem-${Date.now()}`;
    const send = () => fw.forward(fwdReq('POST', '/products', { name, price: 3 }, [['Idempotency-Key', `key-${name}`]]));
    const first = await send();
    const second = await send();
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(json(second).id).toBe(json(first).id);
    expect(second.body.toString()).toBe(first.body.toString());
    expect(await productsNamed(writer.url, name)).toHaveLength(1);
  });

  it('Prefer is passed through: durability=replicated on a writer without REPLICA_URL is its 400 durability_unavailable', async () => {
    const r = await fw.forward(fwdReq('POST', '/products', { name: 'durable', price: 1 }, [['Prefer', 'durability=replicated']]));
    expect(r.status).toBe(400);
    expect(json(r).error.code).toBe('durability_unavailable');
  });

  it('X-Request-Id is passed through (the writer echoes it, also on an error)', async () => {
    const ok = await fw.forward(fwdReq('POST', '/counters/rid/increment', undefined, [['X-Request-Id', 'follower-abc-123']]));
    expect(header(ok, 'X-Request-Id')).toEqual(['follower-abc-123']);
    const bad = await fw.forward(fwdReq('POST', '/products', {}, [['X-Request-Id', 'follower-abc-124']]));
    expect(bad.status).toBe(400);
    expect(header(bad, 'X-Request-Id')).toEqual(['follower-abc-124']);
  });

  it('keep-alive: 200 sequential forwards use one connection; 60 concurrent ones at most `connections`', async () => {
    const own = await countingProxy(writer.port);
    const seq = new WriterForwarder({ writerUrl: own.url, timeoutMs: 5000, connections: 2 });
    try {
      for (let i = 0; i < 200; i++) expect((await seq.forward(fwdReq('POST', '/counters/seq/increment'))).status).toBe(200);
      expect(own.connections()).toBe(1);
    } finally {
      await seq.close();
      await own.close();
    }

    const wide = await countingProxy(writer.port);
    const par = new WriterForwarder({ writerUrl: wide.url, timeoutMs: 10_000, connections: 3 });
    try {
      const replies = await Promise.all(Array.from({ length: 60 }, () => par.forward(fwdReq('POST', '/counters/par/increment'))));
      expect(replies.every((r) => r.status === 200)).toBe(true);
      expect(replies.map((r) => json(r).value).sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
      expect(wide.connections()).toBeGreaterThanOrEqual(1);
      expect(wide.connections()).toBeLessThanOrEqual(3);
    } finally {
      await par.close();
      await wide.close();
    }
  });

  it('after close(): new forwards are refused with 503 unavailable', async () => {
    const f = new WriterForwarder({ writerUrl: writer.url, timeoutMs: 5000, connections: 1 });
    const pending = f.forward(fwdReq('POST', '/counters/closing/increment'));
    const closed = f.close();
    expect((await pending).status).toBe(200); // a forward in flight finishes
    await closed;
    const { err } = await failure(f.forward(fwdReq('POST', '/counters/closing/increment')));
    expect(err.code).toBe('unavailable');
  });
});

describe('headers: what is passed through and what is dropped', () => {
  let seen: { rawHeaders: string[]; body: string } | undefined;
  let port = 0;
  const server = http.createServer((rq, rs) => {
    const chunks: Buffer[] = [];
    rq.on('data', (c: Buffer) => chunks.push(c));
    rq.on('end', () => {
      seen = { rawHeaders: rq.rawHeaders, body: Buffer.concat(chunks).toString() };
      // A flat [name, value, name, value, ...] list: repeated fields stay repeated.
      rs.writeHead(418, [
        'X-End', 'kept',
        'Set-Cookie', 'a=1',
        'Set-Cookie', 'b=2',
        'Connection', 'X-Hop-Res',
        'X-Hop-Res', 'listed in Connection',
        'Keep-Alive', 'timeout=5',
        'Proxy-Authenticate', 'Basic',
        'Content-Type', 'text/plain',
      ]);
      rs.end('short and stout');
    });
  });
  beforeAll(async () => {
    port = await listen(server);
  });
  afterAll(() => closeServer(server));

  it('end-to-end request fields pass as they are; hop-by-hop ones, Host, Expect and a stale Content-Length do not', async () => {
    const f = new WriterForwarder({ writerUrl: `http://127.0.0.1:${port}/base/`, timeoutMs: 5000, connections: 1 });
    try {
      const body = '{"name":"x","price":1}';
      const r = await f.forward({
        method: 'PATCH',
        pathAndQuery: '/products/7?dry=1',
        body: Buffer.from(body),
        headers: [
          ['Content-Type', 'application/merge-patch+json'],
          ['Accept', 'application/json'],
          ['Idempotency-Key', 'k-1'],
          ['Prefer', 'durability=replicated'],
          ['X-Request-Id', 'rid-1'],
          ['If-Match', '"v3"'],
          ['If-None-Match', '*'],
          ['Authorization', 'Bearer client-token'],
          ['X-Forwarded-For', '203.0.113.7'],
          ['X-Dup', 'one'],
          ['X-Dup', 'two'],
          ['Connection', 'keep-alive, X-Hop-Req'],
          ['X-Hop-Req', 'listed in Connection'],
          ['Keep-Alive', 'timeout=5'],
          ['TE', 'trailers'],
          ['Trailer', 'X-Checksum'],
          ['Upgrade', 'h2c'],
          ['Proxy-Authorization', 'Basic Zm9vOmJhcg=='],
          ['Proxy-Connection', 'keep-alive'],
          ['Host', 'follower.example'],
          ['Expect', '100-continue'],
          ['Content-Length', '999'],
          ['Transfer-Encoding', 'chunked'],
        ],
      });
      const pairs: Array<[string, string]> = [];
      for (let i = 0; i < seen!.rawHeaders.length; i += 2) pairs.push([seen!.rawHeaders[i]!.toLowerCase(), seen!.rawHeaders[i + 1]!]);
      const got = (n: string) => pairs.filter(([k]) => k === n).map(([, v]) => v);
      expect(seen!.body).toBe(body);
      for (const [n, v] of [
        ['content-type', 'application/merge-patch+json'],
        ['accept', 'application/json'],
        ['idempotency-key', 'k-1'],
        ['prefer', 'durability=replicated'],
        ['x-request-id', 'rid-1'],
        ['if-match', '"v3"'],
        ['if-none-match', '*'],
        ['authorization', 'Bearer client-token'], // no audience: the client's own credentials pass
        ['x-forwarded-for', '203.0.113.7'],
        ['host', `127.0.0.1:${port}`],
        ['content-length', String(body.length)],
      ]) {
        expect(got(n!), n).toEqual([v]);
      }
      expect(got('x-dup')).toEqual(['one', 'two']);
      for (const n of ['x-hop-req', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-connection', 'expect', 'transfer-encoding']) {
        expect(got(n), n).toEqual([]);
      }
      expect(got('connection')).toEqual(['keep-alive']); // this hop's own, from Node's agent

      expect(r.status).toBe(418);
      expect(r.body.toString()).toBe('short and stout');
      const names = r.headers.map(([n]) => n.toLowerCase());
      expect(names).not.toContain('connection');
      expect(names).not.toContain('x-hop-res');
      expect(names).not.toContain('keep-alive');
      expect(names).not.toContain('proxy-authenticate');
      expect(names).not.toContain('content-length');
      expect(header(r, 'X-End')).toEqual(['kept']);
      expect(header(r, 'Set-Cookie')).toEqual(['a=1', 'b=2']);
      expect(header(r, 'Content-Type')).toEqual(['text/plain']);
    } finally {
      await f.close();
    }
  });
});

describe('the writer is down, frozen, or drops the connection', () => {
  let writer: Running | undefined;
  afterEach(() => {
    // A frozen writer must never outlive its test, whatever failed.
    if (writer?.proc.pid !== undefined && writer.proc.exitCode === null) process.kill(writer.proc.pid, 'SIGCONT');
  });
  afterAll(() => writer?.stop());

  it('frozen (SIGSTOP): writer_timeout 504 after ~timeoutMs; a retry with the same Idempotency-Key is safe', async () => {
    writer = await startServer({ env: { READERS: '0' } });
    const f = new WriterForwarder({ writerUrl: writer.url, timeoutMs: 800, connections: 2 });
    try {
      expect((await f.forward(fwdReq('POST', '/counters/warm/increment'))).status).toBe(200);
      const send = () => f.forward(fwdReq('POST', '/products', { name: 'frozen', price: 1 }, [['Idempotency-Key', 'frozen-1']]));
      process.kill(writer.proc.pid!, 'SIGSTOP');
      let timedOut: { err: AppError; ms: number };
      try {
        timedOut = await failure(send());
      } finally {
        process.kill(writer.proc.pid!, 'SIGCONT');
      }
      expect(timedOut.err.code).toBe('writer_timeout');
      expect(timedOut.err.status).toBe(504);
      expect(timedOut.err.details).toEqual([{ timeoutMs: 800, requestSent: true }]);
      expect(timedOut.ms).toBeGreaterThanOrEqual(790);
      expect(timedOut.ms).toBeLessThan(2000);
      // The request reached the writer's socket before it froze: it may have been applied once it woke up. The
      // retry the error asks for gives one product either way.
      const retry = await send();
      expect(retry.status).toBe(201);
      expect(await productsNamed(writer.url, 'frozen')).toHaveLength(1);
    } finally {
      await f.close();
    }
  });

  it('stopped (port closed): writer_unreachable 502 at once', async () => {
    writer ??= await startServer({ env: { READERS: '0' } });
    const f = new WriterForwarder({ writerUrl: writer.url, timeoutMs: 5000, connections: 2 });
    try {
      expect((await f.forward(fwdReq('POST', '/counters/before-stop/increment'))).status).toBe(200);
      await writer.stop();
      const { err, ms } = await failure(f.forward(fwdReq('POST', '/counters/after-stop/increment')));
      expect(err.code).toBe('writer_unreachable');
      expect(err.status).toBe(502);
      expect(err.details).toEqual([{ reason: 'connect_failed', code: 'ECONNREFUSED' }]);
      expect(err.cause).toBeInstanceOf(Error);
      expect(ms).toBeLessThan(500);
    } finally {
      await f.close();
    }
  });

  it('a reset before the answer, or in the middle of it: writer_unreachable, never a retry', async () => {
    let requests = 0;
    let mode: 'reset' | 'half' = 'reset';
    const server = net.createServer((s) => {
      s.on('error', () => {});
      s.once('data', () => {
        requests++;
        if (mode === 'reset') s.resetAndDestroy();
        else s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it');
      });
    });
    const port = await listen(server);
    const f = new WriterForwarder({ writerUrl: `http://127.0.0.1:${port}`, timeoutMs: 5000, connections: 2 });
    try {
      const reset = await failure(f.forward(fwdReq('POST', '/products', { name: 'r', price: 1 })));
      expect(reset.err.code).toBe('writer_unreachable');
      expect(reset.err.details).toEqual([{ reason: 'connection_reset', code: 'ECONNRESET' }]);
      expect(requests).toBe(1);
      mode = 'half';
      const half = await failure(f.forward(fwdReq('POST', '/products', { name: 'h', price: 1 })));
      expect(half.err.code).toBe('writer_unreachable');
      expect(half.err.details).toMatchObject([{ reason: 'response_interrupted' }]);
      expect(requests).toBe(2);
    } finally {
      await f.close();
      await closeServer(server);
    }
  });

  it('bad options are refused with a TypeError naming the option', () => {
    expect(() => new WriterForwarder({ writerUrl: 'gs://bucket', timeoutMs: 1, connections: 1 })).toThrow(/writerUrl/);
    expect(() => new WriterForwarder({ writerUrl: 'http://w', timeoutMs: 0, connections: 1 })).toThrow(/timeoutMs/);
    expect(() => new WriterForwarder({ writerUrl: 'http://w', timeoutMs: 1, connections: 0 })).toThrow(/connections/);
    expect(() => new WriterForwarder({ writerUrl: 'http://w', timeoutMs: 1, connections: 1, audience: '' })).toThrow(/audience/);
  });
});

describe('audience: a Google ID token from the metadata server replaces the client Authorization', () => {
  const AUDIENCE = 'https://writer-abc123-ew.a.run.app';
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  // Shaped like a real ID token: google-auth-library reads `exp` to know how long to cache it.
  const TOKEN = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 3600 })}.c2lnbmF0dXJl`;
  const identityCalls: URLSearchParams[] = [];
  const metadata = http.createServer((rq, rs) => {
    const url = new URL(rq.url!, 'http://metadata');
    if (rq.headers['metadata-flavor'] !== 'Google') {
      rs.writeHead(403).end('missing Metadata-Flavor');
      return;
    }
    const reply = (status: number, body: string) => rs.writeHead(status, { 'Metadata-Flavor': 'Google', 'Content-Type': 'text/plain' }).end(body);
    if (url.pathname === '/computeMetadata/v1/instance') return reply(200, '{}'); // the "are we on GCE" probe
    if (url.pathname === '/computeMetadata/v1/project/project-id') return reply(200, 'forward-test');
    if (url.pathname === '/computeMetadata/v1/instance/service-accounts/default/identity') {
      identityCalls.push(url.searchParams);
      const audience = url.searchParams.get('audience');
      if (audience === AUDIENCE) return reply(200, TOKEN);
      if (audience === 'https://slow.example') return; // never answers
      return reply(403, 'this service account may not mint tokens for that audience');
    }
    reply(404, 'not found');
  });
  let target: http.Server;
  const seenAuth: string[][] = [];
  let targetUrl = '';
  const saved = { ...process.env };

  beforeAll(async () => {
    const metadataPort = await listen(metadata);
    // google-auth-library reads these when it looks for credentials: no key file, no gcloud config, the metadata
    // server at our port. Vitest runs each test file in its own process, so this changes no other file's env.
    process.env.GCE_METADATA_HOST = `127.0.0.1:${metadataPort}`;
    process.env.CLOUDSDK_CONFIG = tempDir('gcloud-config-');
    process.env.GOOGLE_CLOUD_PROJECT = 'forward-test';
    delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    delete process.env.METADATA_SERVER_DETECTION;
    target = http.createServer((rq, rs) => {
      rq.resume();
      rq.on('end', () => {
        const auth: string[] = [];
        for (let i = 0; i < rq.rawHeaders.length; i += 2) if (rq.rawHeaders[i]!.toLowerCase() === 'authorization') auth.push(rq.rawHeaders[i + 1]!);
        seenAuth.push(auth);
        rs.writeHead(201, { 'Content-Type': 'application/json' }).end('{"ok":true}');
      });
    });
    targetUrl = `http://127.0.0.1:${await listen(target)}`;
  });
  afterAll(async () => {
    for (const k of ['GCE_METADATA_HOST', 'CLOUDSDK_CONFIG', 'GOOGLE_CLOUD_PROJECT', 'GOOGLE_APPLICATION_CREDENTIALS', 'METADATA_SERVER_DETECTION']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await closeServer(target);
    await closeServer(metadata);
  });

  it('every forward carries Bearer <the ID token>, not the client own; the token is fetched once', async () => {
    const f = new WriterForwarder({ writerUrl: targetUrl, timeoutMs: 5000, connections: 2, audience: AUDIENCE });
    try {
      // Arriving together, before any token exists: they share one fetch.
      const first = await Promise.all(
        Array.from({ length: 5 }, () => f.forward(fwdReq('POST', '/products', { name: 'a', price: 1 }, [['Authorization', 'Bearer client-own']]))),
      );
      for (let i = 0; i < 3; i++) first.push(await f.forward(fwdReq('POST', '/counters/c/increment', undefined, [['authorization', 'Basic dXNlcjpwYXNz']])));
      expect(first.map((r) => r.status)).toEqual(Array(8).fill(201));
      expect(seenAuth).toEqual(Array(8).fill([`Bearer ${TOKEN}`]));
      expect(identityCalls).toHaveLength(1);
      expect(identityCalls[0]!.get('audience')).toBe(AUDIENCE);
      expect(identityCalls[0]!.get('format')).toBe('full');
    } finally {
      await f.close();
    }
  });

  it('no token (refused, or not within the timeout): writer_unreachable with the reason, nothing sent', async () => {
    const before = seenAuth.length;
    const denied = new WriterForwarder({ writerUrl: targetUrl, timeoutMs: 5000, connections: 1, audience: 'https://denied.example' });
    const slow = new WriterForwarder({ writerUrl: targetUrl, timeoutMs: 600, connections: 1, audience: 'https://slow.example' });
    try {
      const refused = await failure(denied.forward(fwdReq('POST', '/products', { name: 'a', price: 1 })));
      expect(refused.err.code).toBe('writer_unreachable');
      expect(refused.err.details).toMatchObject([{ reason: 'id_token_failed', message: expect.stringMatching(/ID token/) }]);
      const late = await failure(slow.forward(fwdReq('POST', '/products', { name: 'a', price: 1 })));
      expect(late.err.code).toBe('writer_unreachable');
      expect(late.err.details).toMatchObject([{ reason: 'id_token_failed', message: expect.stringMatching(/600 ms/) }]);
      expect(late.ms).toBeGreaterThanOrEqual(590);
      expect(late.ms).toBeLessThan(1500);
      // The hung fetch is given up with its forward: the next forward asks again rather than wait behind it.
      const again = await failure(slow.forward(fwdReq('POST', '/products', { name: 'a', price: 1 })));
      expect(again.err.code).toBe('writer_unreachable');
      expect(identityCalls.filter((q) => q.get('audience') === 'https://slow.example')).toHaveLength(2);
      expect(seenAuth.length).toBe(before);
    } finally {
      await Promise.all([denied.close(), slow.close()]);
    }
  });
});
