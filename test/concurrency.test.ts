// Concurrent writers: the one-writer design must neither lose nor duplicate a write, and must really batch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, metric, req, startServer, type Running } from './helpers/server.js';

afterAll(killAll);

describe('concurrent writes', () => {
  let s: Running;
  beforeAll(async () => {
    s = await startServer();
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('20 concurrent clients x 50 increments on one counter give exactly 1,000, with no non-2xx', async () => {
    const values: number[] = [];
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        for (let i = 0; i < 50; i++) {
          const r = await req(s.url, 'POST', '/counters/hits/increment');
          if (r.status === 200) values.push(r.body.value);
          else failures.push(`${r.status} ${r.text}`);
        }
      }),
    );
    expect(failures).toEqual([]);
    const counter = await req(s.url, 'GET', '/counters/hits');
    expect(counter.body).toEqual({ name: 'hits', value: 1000 });
    // Each increment saw its own value right after it: every value from 1 to 1,000 exactly once.
    expect(values.sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
  });

  it('200 concurrent creates all succeed with distinct ids, each readable afterwards', async () => {
    const rs = await Promise.all(
      Array.from({ length: 200 }, (_, i) => req(s.url, 'POST', '/products', { name: `bulk-${i}`, price: i, stock: i })),
    );
    expect(rs.map((r) => r.status).filter((st) => st !== 201)).toEqual([]);
    const ids = rs.map((r) => r.body.id as number);
    expect(new Set(ids).size).toBe(200);
    for (const [i, r] of rs.entries()) {
      expect(r.body).toMatchObject({ name: `bulk-${i}`, price: i, stock: i });
      expect(r.headers.get('location')).toBe(`/products/${r.body.id}`);
    }
    const reads = await Promise.all(ids.map((id) => req(s.url, 'GET', `/products/${id}`)));
    reads.forEach((r, i) => expect(r.body).toEqual(rs[i]!.body));
  });

  it('really batches: mean writer batch size under concurrency is > 1 (from /metrics)', async () => {
    const sum0 = await metric(s.url, 'writer_batch_size_sum');
    const count0 = await metric(s.url, 'writer_batch_size_count');
    const batches0 = await metric(s.url, 'writer_batches_total');
    const commands0 = await metric(s.url, 'writer_commands_total');
    // Three waves of 200 writes sent at once: requests that arrive while a batch commits ride in the next one.
    const statuses: number[] = [];
    for (let wave = 0; wave < 3; wave++) {
      const rs = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          i % 2 ? req(s.url, 'POST', '/counters/batched/increment') : req(s.url, 'POST', '/products', { name: 'b', price: 1 }),
        ),
      );
      statuses.push(...rs.map((r) => r.status));
    }
    expect(statuses.filter((st) => st !== 200 && st !== 201)).toEqual([]);
    const commands = (await metric(s.url, 'writer_batch_size_sum')) - sum0;
    const batches = (await metric(s.url, 'writer_batch_size_count')) - count0;
    expect(commands).toBe(600);
    expect((await metric(s.url, 'writer_commands_total')) - commands0).toBe(600);
    expect((await metric(s.url, 'writer_batches_total')) - batches0).toBe(batches);
    const mean = commands / batches;
    console.log(`mean batch size over ${batches} batches: ${mean.toFixed(2)}`);
    expect(mean).toBeGreaterThan(1);
  });
});
