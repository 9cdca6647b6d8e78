// The queue bounds, per reader mode, small and quick: past WRITE_QUEUE_MAX (a slow writer) and READ_QUEUE_MAX
// (a pool of readers), requests get 503 overloaded with Retry-After and nothing refused is applied; a client
// leaving while its write waits upsets nothing. test/overload.test.ts is the same promise under real load.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError, READER_MODES } from './helpers/api.js';
import { rawConnect, rawRequest } from './helpers/raw-http.js';
import { killAll, metric, req, startServer, type Running } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

afterAll(killAll);

describe.each(READER_MODES)('API with READERS=%i (%s)', (readers, _mode) => {
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
});
