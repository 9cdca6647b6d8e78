// A full database volume (Cloud Run's in-memory volume at its sizeLimit, or DB_MAX_BYTES): SQLite answers
// SQLITE_FULL, and the server answers writes 507 insufficient_storage (never 500), stores nothing of them, keeps
// answering reads, says so in /readyz (200, storage: full) and in metrics, and takes writes again once space is
// freed. Real server, real SQLite files: a PRAGMA max_page_count cap (DB_MAX_BYTES), and, where this process may
// mount one (root), a real 2 MiB tmpfs filled up by another file.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchFailureCode, toAppError } from '../src/shared/errors.js';
import { TransactionLost } from '../src/writer/batch.js';
import { expectError } from './helpers/api.js';
import { killAll, metric, req, startServer, type Reply, type Running } from './helpers/server.js';
import { logLines, waitFor } from './helpers/wait.js';

afterAll(killAll);

const product = (n: number) => ({ name: `p-${n}`, price: n, description: `${n}-`.padEnd(2000, 'x') });

/** Creates products until one answers something other than 201 (at most `max`); returns the ids created and that answer. */
async function fillUp(url: string, max: number): Promise<{ ids: number[]; refusal: Reply }> {
  const ids: number[] = [];
  for (let n = 0; n < max; n++) {
    const r = await req(url, 'POST', '/products', product(n));
    if (r.status !== 201) return { ids, refusal: r };
    ids.push(r.body.id);
  }
  throw new Error(`still not full after ${max} creates`);
}

/** What a full volume must look like from outside: reads fine, /readyz 200 with storage full, counted. */
async function expectFullButReadable(s: Running, ids: number[]): Promise<void> {
  expect((await req(s.url, 'GET', `/products/${ids[0]}`)).status).toBe(200);
  expect((await req(s.url, 'GET', '/products?limit=5')).status).toBe(200);
  for (const p of ['/readyz', '/ready']) expect(await req(s.url, 'GET', p)).toMatchObject({ status: 200, body: { status: 'ready', storage: 'full' } });
  expect(await metric(s.url, 'sqlite_full_writes_total')).toBeGreaterThanOrEqual(1);
  expect(await metric(s.url, 'sqlite_storage_full')).toBe(1);
  expect(logLines(s, 'database storage is full (SQLITE_FULL): writes answer 507 insufficient_storage until space is freed; reads still work')).toHaveLength(1);
}

/** Every product the API holds, by id (the refused creates must not be among them). */
async function storedIds(url: string): Promise<number[]> {
  const out: number[] = [];
  for (let after = 0; ; ) {
    const page = (await req(url, 'GET', `/products?limit=100&after=${after}`)).body.items as { id: number }[];
    out.push(...page.map((p) => p.id));
    if (page.length < 100) return out;
    after = page.at(-1)!.id;
  }
}

describe('SQLITE_FULL in the error catalogue', () => {
  it('maps to 507 insufficient_storage for a command, and for a batch whether COMMIT threw it or a statement rolled the transaction back', () => {
    const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    expect(toAppError(full).toWire()).toMatchObject({ code: 'insufficient_storage' });
    expect(toAppError(full).status).toBe(507);
    expect(batchFailureCode(full)).toBe('insufficient_storage');
    expect(batchFailureCode(new TransactionLost(full))).toBe('insufficient_storage');
    const io = Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_WRITE' });
    expect(batchFailureCode(new TransactionLost(io))).toBe('internal');
    expect(batchFailureCode(new Error('x'))).toBe('internal');
  });
});

describe('SQLITE_FULL: DB_MAX_BYTES (PRAGMA max_page_count)', () => {
  it('a create past the cap is 507 insufficient_storage and stores nothing; reads work; /readyz says storage full; after deletes, writes work again', async () => {
    const s = await startServer({ env: { DB_MAX_BYTES: String(320 * 1024), READERS: '0' } });
    const { ids, refusal } = await fillUp(s.url, 1000);
    expect(ids.length).toBeGreaterThan(10);
    expectError(refusal, 507, 'insufficient_storage');
    expect(refusal.body.error.message).toMatch(/storage is full/);

    // A burst at a full database: one or more group-committed batches, every answer a 507, none a 500.
    const burst = await Promise.all(Array.from({ length: 24 }, (_, i) => req(s.url, 'POST', '/products', product(10_000 + i))));
    expect(burst.map((r) => r.status)).toEqual(burst.map(() => 507));
    // An Idempotency-Key's 507 is not stored (5xx never is): the same request runs again once there is room.
    const keyed = await req(s.url, 'POST', '/products', product(20_000), { 'Idempotency-Key': 'full-1' });
    expectError(keyed, 507, 'insufficient_storage');
    expect(await storedIds(s.url)).toEqual(ids);
    await expectFullButReadable(s, ids);
    // Updates that need no new page still commit (a counter increment, a patch in place).
    expect((await req(s.url, 'PATCH', `/products/${ids[0]}`, { stock: 5 })).status).toBe(200);

    // Free space: deleted rows' pages go to SQLite's free list, and later inserts reuse them.
    for (const id of ids.slice(0, Math.ceil(ids.length / 2))) expect((await req(s.url, 'DELETE', `/products/${id}`)).status).toBe(204);
    const again = await req(s.url, 'POST', '/products', product(20_000), { 'Idempotency-Key': 'full-1' });
    expect(again.status).toBe(201);
    expect(await req(s.url, 'GET', '/readyz')).toMatchObject({ status: 200, body: { storage: 'ok' } });
    expect(await metric(s.url, 'sqlite_storage_full')).toBe(0);
    expect(logLines(s, 'database storage has room again: writes commit')).toHaveLength(1);
    expect(await s.stop()).toBe(0);
  });
});

/** A 2 MiB tmpfs (what Cloud Run's in-memory volume is), or why not: mounting needs root (CAP_SYS_ADMIN). */
function mountTmpfs(): { dir: string; skip: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sqlite-api-tmpfs-'));
  if (process.getuid?.() !== 0) return { dir, skip: 'not root: cannot mount a tmpfs' };
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0777', 'tmpfs', dir], { encoding: 'utf8' });
  return { dir, skip: r.status === 0 ? '' : `mount -t tmpfs failed: ${(r.stderr || r.error?.message || '').trim()}` };
}

const tmpfs = mountTmpfs();
if (tmpfs.skip) console.warn(`SKIPPED (real full volume): ${tmpfs.skip}`);

describe.skipIf(tmpfs.skip)('SQLITE_FULL: a real full volume (2 MiB tmpfs)', () => {
  let s: Running | undefined;
  beforeAll(() => fs.mkdirSync(path.join(tmpfs.dir, 'data')));
  afterAll(async () => {
    await s?.stop('SIGKILL');
    spawnSync('umount', [tmpfs.dir]);
    fs.rmSync(tmpfs.dir, { recursive: true, force: true });
  });

  it('writes that cannot get space are 507 (whole batches, or a statement), reads and /readyz work, and writes resume once a file is removed', async () => {
    const dbPath = path.join(tmpfs.dir, 'data', 'app.db');
    s = await startServer({ dbPath, env: { READERS: '0' } });
    // Another file takes all but ~400 KB of the volume, as Litestream's local files or the WAL could.
    const { bavail, bsize } = fs.statfsSync(tmpfs.dir);
    const filler = path.join(tmpfs.dir, 'filler');
    fs.writeFileSync(filler, Buffer.alloc(Math.max(0, bavail * bsize - 400 * 1024)));

    const { ids, refusal } = await fillUp(s.url, 2000);
    expect(ids.length).toBeGreaterThan(0);
    expectError(refusal, 507, 'insufficient_storage');
    const burst = await Promise.all(Array.from({ length: 16 }, (_, i) => req(s!.url, 'POST', '/products', product(10_000 + i))));
    expect(burst.filter((r) => r.status !== 507).map((r) => `${r.status} ${r.text}`)).toEqual([]);
    expect(await storedIds(s.url)).toEqual(ids);
    await expectFullButReadable(s, ids);
    const batches = logLines(s, 'write batch failed; none of it committed');
    for (const b of batches) expect(b.code).toBe('insufficient_storage');
    console.log(`real tmpfs full after ${ids.length} creates: ${batches.length} whole batches rolled back with SQLITE_FULL, the rest refused per statement`);

    fs.rmSync(filler);
    await waitFor(async () => (await req(s!.url, 'POST', '/products', product(30_000))).status === 201, 'a create to succeed after the filler is removed', 10_000, 100);
    expect(await req(s.url, 'GET', '/readyz')).toMatchObject({ status: 200, body: { storage: 'ok' } });
    expect(logLines(s, 'request failed with an internal error')).toEqual([]);
    expect(await s.stop()).toBe(0);
  });
});
