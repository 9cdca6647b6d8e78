// Shutdown under load: SIGTERM mid-burst must lose no acknowledged write and exit 0 within Cloud Run's 10 s;
// a second signal exits at once. Per reader mode, draining: requests on open keep-alive connections get 503
// unavailable with Connection: close, /readyz 503, the listen socket closes, and the write in flight still commits.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { READER_MODES } from './helpers/api.js';
import { connectionRefused, rawConnect, rawRequest, type RawConn } from './helpers/raw-http.js';
import { killAll, metric, req, startServer, type Running } from './helpers/server.js';
import { logLines, waitFor, waitForOutput } from './helpers/wait.js';

afterAll(killAll);

type Outcome = 'refused' | 'unknown';

/** Sorts a failed fetch: a refused connection never reached the server; anything else may or may not have. */
function classify(err: unknown): Outcome {
  const code = (err as { cause?: { code?: string } }).cause?.code;
  return code === 'ECONNREFUSED' ? 'refused' : 'unknown';
}

interface Tally {
  products: Map<number, unknown>;
  increments: number[];
  /** Writes answered 503 (unavailable/overloaded): refused before they were queued, so never applied. */
  rejected503: { create: number; increment: number };
  refused: { create: number; increment: number };
  /** Connection broke after the request may have been sent: applied or not, the client cannot tell. */
  unknown: { create: number; increment: number };
  unexpected: string[];
}

describe('SIGTERM during a write burst', () => {
  let s: Running | undefined;
  afterEach(async () => {
    await s?.stop('SIGKILL');
    s = undefined;
  });

  it.each([
    // 100 ms per batch leaves a backlog of queued writes for the drain to flush.
    { writerDelayMs: 0 },
    { writerDelayMs: 100 },
  ])('TEST_WRITER_DELAY_MS=$writerDelayMs: loses no acknowledged write, answers or refuses everything else explicitly, and exits 0 within 10 s', async ({ writerDelayMs }) => {
    s = await startServer({ env: { TEST_WRITER_DELAY_MS: String(writerDelayMs) } });
    const { url, dbPath } = s;
    const t: Tally = {
      products: new Map(),
      increments: [],
      rejected503: { create: 0, increment: 0 },
      refused: { create: 0, increment: 0 },
      unknown: { create: 0, increment: 0 },
      unexpected: [],
    };

    // 50 clients, each creating and incrementing in a loop until the server stops answering.
    const client = async (c: number) => {
      for (let i = 0; ; i++) {
        const kind = i % 2 === 0 ? 'create' : 'increment';
        try {
          const r =
            kind === 'create'
              ? await req(url, 'POST', '/products', { name: `burst-${c}-${i}`, price: i })
              : await req(url, 'POST', '/counters/burst/increment');
          if (r.status === 201 && kind === 'create') t.products.set(r.body.id, r.body);
          else if (r.status === 200 && kind === 'increment') t.increments.push(r.body.value);
          else if (r.status === 503 && ['unavailable', 'overloaded'].includes(r.body?.error?.code)) {
            t.rejected503[kind]++;
            return;
          } else {
            t.unexpected.push(`${kind}: ${r.status} ${r.text}`);
            return;
          }
        } catch (err) {
          t[classify(err)][kind]++;
          return;
        }
      }
    };
    const clients = Array.from({ length: 50 }, (_, c) => client(c));

    await waitFor(() => t.products.size + t.increments.length >= 500, 'the burst to get going', 30_000);
    const t0 = performance.now();
    s.proc.kill('SIGTERM');
    const code = await s.exited;
    const exitMs = performance.now() - t0;
    await Promise.all(clients);

    const complete = logLines(s, 'shutdown complete')[0];
    console.log(
      `writer delay ${writerDelayMs} ms: SIGTERM -> exit ${code} in ${exitMs.toFixed(0)} ms (server-reported drain ${String(complete?.ms)} ms); ` +
        `acked ${t.products.size} creates + ${t.increments.length} increments; 503 ${JSON.stringify(t.rejected503)}; ` +
        `refused ${JSON.stringify(t.refused)}; unknown ${JSON.stringify(t.unknown)}`,
    );
    expect(code).toBe(0);
    expect(exitMs).toBeLessThan(10_000);
    expect(complete).toMatchObject({ failed: [] });
    expect(t.unexpected).toEqual([]);
    expect(t.products.size + t.increments.length).toBeGreaterThanOrEqual(500);

    // Restart on the same file and read everything back.
    s = await startServer({ dbPath });
    const stored = new Map<number, unknown>();
    for (let after = 0; ; ) {
      const page = await req(s.url, 'GET', `/products?limit=100&after=${after}`);
      expect(page.status).toBe(200);
      for (const p of page.body.items) stored.set(p.id, p);
      if (page.body.items.length < 100) break;
      after = page.body.items.at(-1).id;
    }
    // Every acknowledged create is there, exactly as acknowledged.
    const missing = [...t.products.keys()].filter((id) => !stored.has(id));
    expect(missing).toEqual([]);
    for (const [id, body] of t.products) expect(stored.get(id)).toEqual(body);
    // Anything else stored can only be a create whose connection broke mid-request.
    expect(stored.size - t.products.size).toBeGreaterThanOrEqual(0);
    expect(stored.size - t.products.size).toBeLessThanOrEqual(t.unknown.create);

    // The counter holds every acknowledged increment, plus at most the ones whose outcome the client never learned.
    const counter = await req(s.url, 'GET', '/counters/burst');
    const value = counter.status === 404 ? 0 : (counter.body.value as number);
    console.log(
      `after restart: ${stored.size} products stored (${stored.size - t.products.size} unacknowledged), ` +
        `counter ${value} (${value - t.increments.length} unacknowledged)`,
    );
    expect(value).toBeGreaterThanOrEqual(t.increments.length);
    expect(value).toBeLessThanOrEqual(t.increments.length + t.unknown.increment);
    // Acknowledged increments saw distinct values, none beyond what is stored.
    expect(new Set(t.increments).size).toBe(t.increments.length);
    expect(Math.max(0, ...t.increments)).toBeLessThanOrEqual(value);
    // Stronger, and what the drain promises: a write is only applied if it was accepted before the drain began, and
    // every such write is answered before connections close. So a broken connection means "not applied", and
    // the database holds exactly the acknowledged writes, no more.
    expect(stored.size).toBe(t.products.size);
    expect(value).toBe(t.increments.length);
  });

  it('SIGINT drains the same way and exits 0', async () => {
    s = await startServer();
    expect((await req(s.url, 'POST', '/counters/int/increment')).status).toBe(200);
    expect(await s.stop('SIGINT')).toBe(0);
    expect(logLines(s, 'shutdown complete')[0]).toMatchObject({ failed: [] });
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('a second signal (%s) during a slow drain exits at once with a non-zero code', async (second) => {
    s = await startServer({ env: { TEST_WRITER_DELAY_MS: '4000' } });
    const pending = req(s.url, 'POST', '/counters/slow/increment').catch((err: unknown) => err);
    await waitFor(async () => (await metric(s!.url, 'writer_queue_depth')) === 1, 'the write to be queued');
    s.proc.kill('SIGTERM');
    await waitForOutput(s, /"msg":"draining"/);
    const t0 = performance.now();
    s.proc.kill(second);
    const code = await s.exited;
    const ms = performance.now() - t0;
    console.log(`second signal ${second} -> exit ${code} in ${ms.toFixed(0)} ms`);
    expect(code).not.toBe(0);
    // Well before the writer's 4 s sleep would have let the drain finish.
    expect(ms).toBeLessThan(2500);
    expect(s.output()).toMatch(/second signal/);
    // The write was never acknowledged.
    const r = await pending;
    expect((r as { status?: number }).status ?? 0).not.toBe(200);
  });

  it('a drain that outlasts SHUTDOWN_TIMEOUT_MS exits non-zero and logs that it did not finish', async () => {
    s = await startServer({ env: { TEST_WRITER_DELAY_MS: '5000', SHUTDOWN_TIMEOUT_MS: '500' } });
    const pending = req(s.url, 'POST', '/counters/stuck/increment').catch((err: unknown) => err);
    await waitFor(async () => (await metric(s!.url, 'writer_queue_depth')) === 1, 'the write to be queued');
    const t0 = performance.now();
    s.proc.kill('SIGTERM');
    const code = await s.exited;
    const ms = performance.now() - t0;
    console.log(`drain past SHUTDOWN_TIMEOUT_MS=500 -> exit ${code} in ${ms.toFixed(0)} ms`);
    expect(code).not.toBe(0);
    expect(typeof code).toBe('number');
    expect(ms).toBeLessThan(3000);
    // An error-or-worse log line explains the failed drain; no "shutdown complete" claims success.
    const lines = s.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(lines.some((l) => l.level >= 50 && /shutdown|drain/i.test(l.msg))).toBe(true);
    expect(logLines(s, 'shutdown complete')).toEqual([]);
    expect((((await pending) as { status?: number }).status ?? 0)).not.toBe(200);
  });
});

describe.each(READER_MODES)('API with READERS=%i (%s)', (readers, _mode) => {
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
