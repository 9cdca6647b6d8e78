// Cold start after a restore, ~100 MB: does Litestream continue the replica's chain, or upload the database again?
// Everything between Litestream and fake-gcs-server goes through a proxy that counts request bytes, so "bytes
// uploaded" is what crossed the wire. Three cold starts on one replica, each from a fresh directory, as the server
// does them (restore -> open + migrate -> supervisor.start(), whose first POST /sync must succeed):
//   baseline   the resume point cannot be used (the restored file is touched), so Litestream snapshots: the old way
//   resume     the resume point (src/replication/resume-point.ts): Litestream continues the chain
//   resume 2, 3  again, restoring a chain that now holds resume points and the files after them
// Each then stays up 60 s with no writes, then takes writes, stops, and a fresh `litestream restore
// -integrity-check full` must give exactly the rows the instance had.
// The replica is minutes old, so a level that has no file yet past TXID 1 (the first full snapshot) gets one at the
// next start: L1 at the baseline, L2 at resume 1, L3 at resume 2 (each a one-time ~100 MB compaction that a
// long-lived replica has long done). Resume 3 shows the steady state: every level already past the snapshot; its
// minute still compacts the writes the previous instances made just before stopping (~0.4 MB each here).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { LitestreamSupervisor } from '../src/replication/index.js';
import { loadConfig } from '../src/shared/config.js';
import { MIGRATIONS } from '../src/shared/db/migrations.js';
import { migrate, openWriter } from '../src/shared/db/open.js';
import { freePort, LITESTREAM_BIN, missingTools, startGcs, stopAllGcs, type Gcs } from './helpers/gcs.js';
import { startLatencyProxy, type LatencyProxy } from './helpers/latency-proxy.js';
import { buildLargeDb } from './helpers/large-db.js';
import { tempDir } from './helpers/server.js';

const skip = missingTools();

/** Not spawnSync: the counting proxy lives in this process and must keep forwarding meanwhile. */
async function run(bin: string, args: string[]): Promise<{ code: number | null; output: string }> {
  const p = spawn(bin, args, { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  p.stdout.on('data', (b: Buffer) => (output += b.toString()));
  p.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
  const code = await new Promise<number | null>((resolve) => p.on('close', resolve));
  clearTimeout(timer);
  return { code, output };
}
const TARGET_BYTES = 100 * 1024 * 1024;
const BUCKET = 'cold-start';
const URL_ = `gs://${BUCKET}/db`;
// npm test watches 20 s after each cold start; the soak (SOAK=1) the full minute.
const QUIET_MS = Number(process.env.COLD_START_QUIET_MS ?? (process.env.SOAK === '1' ? 60_000 : 20_000));

describe.skipIf(skip)('cold start after a restore (~100 MB)', () => {
  let gcs: Gcs;
  let proxy: LatencyProxy;
  afterAll(async () => {
    await proxy?.close();
    await stopAllGcs();
  });

  function supervisor(dbPath: string, lines: Record<string, unknown>[]) {
    const config = loadConfig({
      DB_PATH: dbPath,
      REPLICA_URL: URL_,
      LITESTREAM_BIN: LITESTREAM_BIN!,
      LITESTREAM_METRICS_ADDR: 'off',
      LITESTREAM_START_TIMEOUT_MS: '60000',
    });
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    return { config, sup: new LitestreamSupervisor(config.replication!, dbPath, pino({ level: 'info' }, sink), 'info') };
  }

  /** Object name -> size, under the replica's path (fake-gcs-server's JSON API). */
  async function objects(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    let token = '';
    do {
      const r = await fetch(`http://127.0.0.1:${gcs.port}/storage/v1/b/${BUCKET}/o?prefix=db/&pageToken=${token}`);
      const j = (await r.json()) as { items?: { name: string; size: string }[]; nextPageToken?: string };
      for (const o of j.items ?? []) out.set(o.name, Number(o.size));
      token = j.nextPageToken ?? '';
    } while (token);
    return out;
  }

  function contentHash(db: Database.Database): { rows: number; sha: string } {
    const h = crypto.createHash('sha256');
    let rows = 0;
    for (const r of db.prepare('SELECT * FROM products ORDER BY id').iterate()) {
      h.update(JSON.stringify(r));
      rows++;
    }
    for (const r of db.prepare('SELECT * FROM counters ORDER BY name').iterate()) h.update(JSON.stringify(r));
    return { rows, sha: h.digest('hex').slice(0, 16) };
  }

  function writeSome(db: Database.Database, tag: string, n: number): void {
    const insert = db.prepare('INSERT INTO products (name, price, description, stock) VALUES (?, ?, ?, ?)');
    db.transaction(() => {
      for (let i = 0; i < n; i++) insert.run(`${tag}-${i}`, i, crypto.randomBytes(300).toString('base64'), i % 7);
      db.prepare('UPDATE products SET stock = stock + 1 WHERE id % 997 = 0').run();
      db.prepare("INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1").run(tag);
    })();
  }

  async function coldStart(mode: 'baseline' | 'resume', tag: string) {
    const dbPath = path.join(tempDir('cold-'), 'app.db');
    const lines: Record<string, unknown>[] = [];
    const { config, sup } = supervisor(dbPath, lines);
    const before = await objects();
    const bytes0 = proxy.bytesUp;
    const t0 = performance.now();
    const restored = await sup.prepareDatabase({ keepLocal: false, atLeastTxid: null });
    expect(restored.action).toBe('restored');
    const restoreMs = performance.now() - t0;
    if (mode === 'baseline') fs.utimesSync(dbPath, new Date(), new Date()); // the resume point refuses a changed file
    const db = openWriter(config); // the writer's connection: open + migrate (up to date: writes nothing)
    migrate(db, MIGRATIONS);
    await sup.start(); // resolves after the first POST /sync succeeded
    const readyMs = performance.now() - t0;
    const firstSyncBytes = proxy.bytesUp - bytes0;
    await new Promise((r) => setTimeout(r, Math.max(0, QUIET_MS - (performance.now() - t0))));
    const quietBytes = proxy.bytesUp - bytes0;
    const after = await objects();
    const added = [...after].filter(([name, size]) => before.get(name) !== size);
    const l0Bytes = added.filter(([n]) => n.startsWith('db/ltx/0/')).reduce((n, [, size]) => n + size, 0);
    const compactedBytes = added.filter(([n]) => !n.startsWith('db/ltx/0/')).reduce((n, [, size]) => n + size, 0);
    const largestAdded = Math.max(0, ...added.map(([, size]) => size));
    // What this instance uploaded of its own: files whose TXID range starts after the one it restored. The rest are
    // compactions of earlier instances' files (the origin's snapshot, the baseline's re-upload) up the levels, which
    // Litestream runs on wall-clock boundaries (L2 every 5 minutes): whether one falls inside this minute is luck.
    const restoredTxid = BigInt(`0x${restored.action === 'restored' ? restored.txid : '0'}`);
    const own = added.filter(([n]) => BigInt(`0x${/(\w{16})-\w{16}\.ltx$/.exec(n)?.[1] ?? '0'}`) > restoredTxid);
    const ownBytes = own.reduce((n, [, size]) => n + size, 0);
    const largestOwn = Math.max(0, ...own.map(([, size]) => size));

    // Writes after the cold start, then the final upload, then a restore elsewhere must give the same rows.
    writeSome(db, tag, 500);
    await sup.sync({ timeoutMs: 30_000 });
    const expected = contentHash(db);
    await sup.stop({ timeoutMs: 15_000 });
    db.close();
    const check = path.join(tempDir('check-'), 'app.db');
    const r = await run(LITESTREAM_BIN!, ['restore', '-integrity-check', 'full', '-o', check, URL_]);
    expect(r.code, r.output).toBe(0);
    const restoredDb = new Database(check, { readonly: true });
    const got = contentHash(restoredDb);
    const integrity = restoredDb.pragma('integrity_check', { simple: true });
    restoredDb.close();

    const resumed = lines.some((l) => l.msg === 'resuming the replica after the restore: no new snapshot');
    const row = {
      mode,
      resumed,
      restoreMs: Math.round(restoreMs),
      readyMs: Math.round(readyMs),
      firstSyncMiB: +(firstSyncBytes / 1048576).toFixed(2),
      quietMinuteMiB: +(quietBytes / 1048576).toFixed(2),
      objectsAddedInQuietMinute: added.map(([n, s]) => `${n.replace('db/ltx/', '')} ${s}`).join(', '),
      l0AddedMiB: +(l0Bytes / 1048576).toFixed(3),
      compactionsAddedMiB: +(compactedBytes / 1048576).toFixed(3),
      rowsExpected: expected.rows,
      rowsRestored: got.rows,
      sameContent: expected.sha === got.sha,
      integrity,
    };
    console.log(JSON.stringify(row));
    return { ...row, quietBytes, firstSyncBytes, l0Bytes, largestAdded, ownBytes, largestOwn };
  }

  it('restore + resume: ready in < 3 s, < 1% of the database uploaded in the first minute, later writes restore exactly', async () => {
    // Everything through the counting proxy, restores and upload sessions included: the emulator's public host is the
    // proxy (it serves reads only to its public host, and names it in the upload session URLs it hands out).
    const gcsPort = await freePort();
    proxy = await startLatencyProxy(gcsPort, 0, { hostRewrite: false });
    gcs = await startGcs({ port: gcsPort, publicHost: proxy.host });
    await gcs.createBucket(BUCKET);
    process.env.STORAGE_EMULATOR_HOST = proxy.host; // the supervisor and the CLI pass our environment to Litestream

    // The first instance: a ~100 MB database of incompressible rows, replicated (a full snapshot), then a few writes.
    const dbPath = path.join(tempDir('cold-origin-'), 'app.db');
    buildLargeDb(dbPath, TARGET_BYTES);
    const dbBytes = fs.statSync(dbPath).size;
    const { config, sup } = supervisor(dbPath, []);
    const db = openWriter(config);
    await sup.start();
    writeSome(db, 'origin', 100);
    await sup.sync({ timeoutMs: 30_000 });
    await sup.stop({ timeoutMs: 15_000 });
    db.close();
    console.log(`origin: database ${(dbBytes / 1048576).toFixed(1)} MiB replicated; objects: ${[...(await objects()).keys()].length}`);

    const baseline = await coldStart('baseline', 'b1');
    const resume = await coldStart('resume', 'r1');
    const resume2 = await coldStart('resume', 'r2');
    const resume3 = await coldStart('resume', 'r3');

    expect(baseline.resumed).toBe(false);
    expect(baseline.quietBytes).toBeGreaterThan(0.9 * dbBytes); // the old way: the whole database again
    for (const r of [baseline, resume, resume2, resume3]) {
      expect(r.sameContent).toBe(true);
      expect(r.integrity).toBe('ok');
    }
    for (const r of [resume, resume2, resume3]) {
      expect(r.resumed).toBe(true);
      expect(r.firstSyncBytes).toBeLessThan(0.01 * dbBytes);
    }
    // Steady state: nothing like a copy of the database of its own. What the minute may also upload is Litestream
    // compacting earlier instances' files up the levels (L1 every 30 s, L2 every 5 minutes, on wall-clock
    // boundaries), which includes the baseline's full re-upload: it is counted in quietMinuteMiB, not judged here.
    for (const r of [resume, resume2, resume3]) {
      expect(r.l0Bytes).toBeLessThan(1000);
      expect(r.largestOwn).toBeLessThan(0.01 * dbBytes);
      expect(r.ownBytes).toBeLessThan(0.02 * dbBytes);
    }
  }, 900_000);
});
