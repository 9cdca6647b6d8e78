// The supervisor on its own, against real Litestream: the control-socket sync protocol (one request in flight,
// later callers ride the next pass) and a stop that stays inside its budget when the replica is unreachable.
import path from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/shared/config.js';
import { LitestreamSupervisor } from '../src/replication/index.js';
import { LITESTREAM_BIN, missingTools, startGcs, stopAllGcs, type Gcs } from './helpers/gcs.js';
import { isAlive, readDb, restoreWithCli } from './helpers/replica.js';
import { tempDir } from './helpers/server.js';

const skip = missingTools();

describe.skipIf(skip)('LitestreamSupervisor', () => {
  let gcs: Gcs;
  let sup: LitestreamSupervisor | undefined;
  let db: Database.Database | undefined;
  beforeAll(async () => {
    gcs = await startGcs();
    await gcs.createBucket('supervisor-test');
  });
  afterEach(async () => {
    await sup?.stop({ timeoutMs: 3000 }).catch(() => {});
    db?.close();
    sup = db = undefined;
  });
  afterAll(stopAllGcs);

  /** A database written by this test directly (as the writer thread would), replicated by a supervisor. */
  async function setUp(url: string, emulatorHost = gcs.host) {
    const dbPath = path.join(tempDir(), 'app.db');
    process.env.STORAGE_EMULATOR_HOST = emulatorHost; // the supervisor passes our environment to Litestream
    const config = loadConfig({ DB_PATH: dbPath, REPLICA_URL: url, LITESTREAM_BIN: LITESTREAM_BIN!, LITESTREAM_METRICS_ADDR: 'off' });
    db = new Database(dbPath);
    db.pragma('journal_mode = WAL');
    db.pragma('wal_autocheckpoint = 0');
    db.exec('CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL, stock INTEGER NOT NULL DEFAULT 0); CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)');
    sup = new LitestreamSupervisor(config.replication!, dbPath, pino({ level: 'silent' }), 'info');
    await sup.start();
    return { dbPath, insert: db.prepare('INSERT INTO products (name, price) VALUES (?, ?)') };
  }

  it('sync(): concurrent callers share passes (at most one request in flight), and each returns after its commit is in the replica', async () => {
    const url = 'gs://supervisor-test/coalesce';
    const { insert } = await setUp(url);
    const before = sup!.syncPasses;
    // 50 "commits", each followed by a sync, all at once.
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => {
        insert.run(`c-${i}`, i);
        return sup!.sync({ timeoutMs: 5000 });
      }),
    );
    const passes = sup!.syncPasses - before;
    console.log(`50 concurrent sync() calls -> ${passes} POST /sync passes; replicated txid ${results.at(-1)!.replicatedTxid}`);
    // The first call starts a pass; everyone arriving while it runs rides the one after.
    expect(passes).toBe(2);
    for (const r of results) expect(r.replicatedTxid).toBeGreaterThanOrEqual(r.txid);
    // Everything committed before the last sync returned is in the replica, before any shutdown.
    const restored = readDb((await restoreWithCli(gcs, url)).dbPath);
    expect(restored.products.size).toBe(50);
  });

  it('stop() with the replica gone stays within its budget, kills Litestream, and reports the failed upload', async () => {
    const gone = await startGcs();
    await gone.createBucket('vanishing');
    const { insert } = await setUp('gs://vanishing/db', gone.host);
    insert.run('late', 1);
    await gone.stop();
    const pid = sup!.pid!;
    const t0 = performance.now();
    await expect(sup!.stop({ timeoutMs: 2500 })).rejects.toThrow(/final upload to gs:\/\/vanishing\/db failed/);
    const ms = performance.now() - t0;
    console.log(`stop() with the replica unreachable: rejected after ${ms.toFixed(0)} ms (budget 2500)`);
    expect(ms).toBeLessThan(3500);
    expect(isAlive(pid)).toBe(false);
    sup = undefined;
  });
});
