// One batch = one transaction with a SAVEPOINT per command: a command that fails (not found, a CHECK
// constraint) fails alone and everything else in the same batch commits.
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, metric, req, startServer, type Reply, type Running } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

const MAX = 9007199254740991; // the counters.value CHECK bound (Number.MAX_SAFE_INTEGER)

afterAll(killAll);

describe('batch isolation', () => {
  let s: Running;
  beforeAll(async () => {
    // The writer sleeps before each batch, so everything sent meanwhile queues up for the next one.
    s = await startServer({ env: { TEST_WRITER_DELAY_MS: '600' } });
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('failing commands get their own error while the rest of the same batch commits', async () => {
    const target = await req(s.url, 'POST', '/products', { name: 'target', price: 1 });
    expect(target.status).toBe(201);
    // Put a counter 5 below the CHECK bound from another connection: reaching it through the API (|by| <= 1e9) would take millions of calls.
    const side = new Database(s.dbPath, { timeout: 5000 });
    try {
      side.exec(`INSERT INTO counters (name, value) VALUES ('edge', ${MAX - 5})`);
    } finally {
      side.close();
    }

    const sum0 = await metric(s.url, 'writer_batch_size_sum');
    const count0 = await metric(s.url, 'writer_batch_size_count');
    const le8 = await metric(s.url, 'writer_batch_size_bucket', 'le="8"');
    const le16 = await metric(s.url, 'writer_batch_size_bucket', 'le="16"');
    const fallbacks0 = await metric(s.url, 'writer_batch_fallbacks_total');

    // A first write occupies the writer (it sleeps 600 ms before committing it)...
    const blocker = req(s.url, 'POST', '/counters/blocker/increment');
    await waitFor(async () => (await metric(s.url, 'writer_queue_depth')) === 1, 'the blocker to be queued');
    await new Promise((r) => setTimeout(r, 50));

    // ...so these eleven all queue up behind it and ride in the next batch together.
    const missing = target.body.id + 1_000_000;
    const sent: [string, Promise<Reply>][] = [
      ['create 0', req(s.url, 'POST', '/products', { name: 'iso-0', price: 10 })],
      ['patch missing', req(s.url, 'PATCH', `/products/${missing}`, { price: 2 })],
      ['create 1', req(s.url, 'POST', '/products', { name: 'iso-1', price: 11 })],
      ['put missing', req(s.url, 'PUT', `/products/${missing}`, { name: 'x', price: 2 })],
      ['inc +3', req(s.url, 'POST', '/counters/edge/increment', { by: 3 })],
      ['create 2', req(s.url, 'POST', '/products', { name: 'iso-2', price: 12 })],
      ['inc +10 overflows', req(s.url, 'POST', '/counters/edge/increment', { by: 10 })],
      ['delete missing', req(s.url, 'DELETE', `/products/${missing}`)],
      ['patch target', req(s.url, 'PATCH', `/products/${target.body.id}`, { stock: 4 })],
      ['inc +1', req(s.url, 'POST', '/counters/edge/increment', { by: 1 })],
      ['create 3', req(s.url, 'POST', '/products', { name: 'iso-3', price: 13 })],
    ];
    const replies = Object.fromEntries(await Promise.all(sent.map(async ([k, p]) => [k, await p] as const)));
    expect((await blocker).status).toBe(200);

    const statusOf = (k: string) => `${k}: ${replies[k]!.status} ${replies[k]!.body?.error?.code ?? ''}`.trim();
    expect(Object.keys(replies).map(statusOf)).toEqual([
      'create 0: 201',
      'patch missing: 404 not_found',
      'create 1: 201',
      'put missing: 404 not_found',
      'inc +3: 200',
      'create 2: 201',
      // The CHECK constraint is a conflict with the stored data (errors.ts maps SQLITE_CONSTRAINT_* to 409).
      'inc +10 overflows: 409 conflict',
      'delete missing: 404 not_found',
      'patch target: 200',
      'inc +1: 200',
      'create 3: 201',
    ]);

    // They really shared one transaction: two batches in all (the blocker's, then one of 11).
    expect((await metric(s.url, 'writer_batch_size_sum')) - sum0).toBe(12);
    expect((await metric(s.url, 'writer_batch_size_count')) - count0).toBe(2);
    const in9to16 =
      (await metric(s.url, 'writer_batch_size_bucket', 'le="16"')) - le16 - ((await metric(s.url, 'writer_batch_size_bucket', 'le="8"')) - le8);
    expect(in9to16).toBe(1);
    // The 11 ran first without savepoints (optimistic), met the failing patch, and ran again with one per command;
    // the blocker's batch, with nothing failing, did not fall back.
    expect((await metric(s.url, 'writer_batch_fallbacks_total')) - fallbacks0).toBe(1);

    // Everything that succeeded is stored; the failed increment left no trace.
    for (const k of ['create 0', 'create 1', 'create 2', 'create 3']) {
      const r = await req(s.url, 'GET', `/products/${replies[k]!.body.id}`);
      expect(r.status).toBe(200);
      expect(r.body).toEqual(replies[k]!.body);
    }
    expect((await req(s.url, 'GET', `/products/${target.body.id}`)).body).toMatchObject({ stock: 4, name: 'target' });
    expect((await req(s.url, 'GET', '/counters/edge')).body).toEqual({ name: 'edge', value: MAX - 1 });
    const incs = [replies['inc +3']!.body.value, replies['inc +1']!.body.value].sort((a, b) => a - b);
    // Whichever ran first, each saw the value right after itself, and neither saw the rolled-back +10.
    expect([
      [MAX - 2, MAX - 1],
      [MAX - 4, MAX - 1],
    ]).toContainEqual(incs);
    expect((await req(s.url, 'GET', `/products/${missing}`)).status).toBe(404);
  });
});
