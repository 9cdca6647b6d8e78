// A refused body must still let the client read its answer (issue 11 point 2), and SIGTERM must not wait on an
// upload that stalled (issue 13 point 4). Closing while the body still arrives resets the connection, and clients
// that send before they read (Python's http.client, Node's fetch, a raw write-then-read) lost the 413.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawConnect } from './helpers/raw-http.js';
import { killAll, startServer, type Running } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

afterAll(killAll);

const MiB = 1024 * 1024;

function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

function expect413(status: number, body: string): void {
  expect(status).toBe(413);
  expect(JSON.parse(body).error.code).toBe('payload_too_large');
}

/** Python's http.client sends the whole body before it reads anything. */
function pythonPost(port: number, bytes: number): Promise<string> {
  const script = [
    'import http.client, json, sys',
    `c = http.client.HTTPConnection('127.0.0.1', ${port}, timeout=20)`,
    `c.request('POST', '/products', body=b'x' * ${bytes}, headers={'Content-Type': 'application/json'})`,
    'r = c.getresponse()',
    "print(json.dumps({'status': r.status, 'body': r.read().decode()}))",
  ].join('\n');
  return new Promise((resolve, reject) => {
    const p = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (out += b.toString()));
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`python exited ${code}: ${out}`))));
  });
}

/** A raw client that writes head and 1.2 MB of body in one write, and only then reads. */
async function rawWriteThenRead(port: number, bytes = 1_200_000) {
  const c = await rawConnect(port);
  try {
    c.write(Buffer.concat([Buffer.from(`POST /products HTTP/1.1\r\nHost: x\r\nContent-Length: ${bytes}\r\n\r\n`), Buffer.alloc(bytes, 120)]));
    return await c.response(15_000);
  } finally {
    c.destroy();
  }
}

describe('413 that the client can read (MAX_BODY_BYTES=65536, the default)', () => {
  let s: Running;
  beforeAll(async () => {
    s = await startServer();
  });
  afterAll(async () => {
    await s?.stop();
  });

  it.each([1, 3, 10])("Node's fetch with a %i MiB body gets the 413 JSON", async (mib) => {
    const r = await fetch(`${s.url}/products`, { method: 'POST', body: Buffer.alloc(mib * MiB, 120), headers: { 'Content-Type': 'application/json' } });
    expect(r.headers.get('connection')).toBe('close');
    expect413(r.status, await r.text());
  });

  it("Python's http.client with a 3 MiB body gets the 413 JSON", async () => {
    const r = JSON.parse(await pythonPost(s.port, 3 * MiB)) as { status: number; body: string };
    expect413(r.status, r.body);
  });

  it('a raw client writing 1.2 MB in one write before reading gets the 413 JSON', async () => {
    const r = await rawWriteThenRead(s.port);
    expect413(r.status, r.body);
    expect(r.headers.connection).toBe('close');
  });

  it('a request pipelined behind a refused body is never routed: the connection closes', async () => {
    const c = await rawConnect(s.port);
    try {
      const body = Buffer.alloc(200_000, 120);
      const follower = 'POST /counters/after-413/increment HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n';
      c.write(Buffer.concat([Buffer.from(`POST /products HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`), body, Buffer.from(follower)]));
      await c.closed;
    } finally {
      c.destroy();
    }
    const counter = await fetch(`${s.url}/counters/after-413`);
    expect(counter.status).toBe(404);
  });

  it('memory stays flat while 50 clients send 3 MiB bodies at once', async () => {
    const before = rssKb(s.proc.pid!);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssKb(s.proc.pid!))), 20);
    try {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? rawWriteThenRead(s.port, 3 * MiB) : pythonPost(s.port, 3 * MiB).then((o) => JSON.parse(o)))),
      );
      for (const r of results) expect413(r.status, r.body);
    } finally {
      clearInterval(sampler);
    }
    console.log(`50 x 3 MiB refused: RSS ${Math.round(before / 1024)} -> peak ${Math.round(peak / 1024)} MB`);
    // Buffering the bodies would take 150 MB; discarding them costs uWS's read buffer and little else.
    expect(peak - before).toBeLessThan(40 * 1024);
  });
});

describe('lingering is bounded (LINGER_TIMEOUT_MS=800)', () => {
  it('a client that announces 10 MiB and stalls gets the 413 at once and is closed at the bound', async () => {
    const s = await startServer({ env: { LINGER_TIMEOUT_MS: '800' } });
    try {
      const c = await rawConnect(s.port);
      const t0 = performance.now();
      c.write(`POST /products HTTP/1.1\r\nHost: x\r\nContent-Length: ${10 * MiB}\r\n\r\n{"name":"x"`);
      await waitFor(() => c.received().includes('payload_too_large'), 'the 413 to arrive', 700);
      expect(c.received()).toMatch(/^HTTP\/1\.1 413 [^\r]*\r\n[\s\S]*Connection: close\r\n/);
      await c.closed;
      const ms = performance.now() - t0;
      expect(ms).toBeGreaterThan(700);
      expect(ms).toBeLessThan(3000);
    } finally {
      await s.stop();
    }
  });
});

describe('SIGTERM with a stalled upload (issue 13 point 4)', () => {
  it('answers the stalled request 503 and exits 0 well inside SHUTDOWN_TIMEOUT_MS', async () => {
    const s = await startServer();
    const c = await rawConnect(s.port);
    try {
      c.write('POST /products HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n{"name":"half');
      // Let the server route it and start waiting for the rest of the body.
      await new Promise((r) => setTimeout(r, 200));
      const t0 = performance.now();
      s.proc.kill('SIGTERM');
      const code = await s.exited;
      const ms = performance.now() - t0;
      await c.closed;
      expect(code).toBe(0);
      expect(ms).toBeLessThan(2000);
      expect(c.received()).toMatch(/^HTTP\/1\.1 503 /);
      expect(c.received()).toContain('"code":"unavailable"');
      expect(s.output()).not.toContain('did not finish in time');
    } finally {
      c.destroy();
    }
  });
});
