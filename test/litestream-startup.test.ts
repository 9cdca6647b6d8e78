// Start-up with REPLICA_URL: empty bucket (fresh start), existing local database, replica present (restore),
// and the replica unreadable (unreachable, credentials refused, no bucket): a clear error, a non-zero exit,
// and never an empty database created where a replica may exist.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, missingTools, startGcs } from './helpers/gcs.js';
import { allProducts, readDb, replicaEnv, restoreWithCli, useReplica } from './helpers/replica.js';
import { req, runToExit, tempDir, type Running } from './helpers/server.js';
import { logLines, waitFor } from './helpers/wait.js';

describe('replication settings are validated before anything starts', () => {
  it.each([
    ['gcs://bucket/db', 'use gs://'],
    ['s3://bucket/db', 'must be gs://bucket/path or file:///absolute/dir'],
    ['gs://', 'must be gs://bucket/path'],
  ])('REPLICA_URL=%s exits 2 naming the variable', async (value, message) => {
    const dbPath = path.join(tempDir(), 'app.db');
    const { code, output } = await runToExit({ DB_PATH: dbPath, REPLICA_URL: value });
    expect(code).toBe(2);
    expect(output).toContain('REPLICA_URL');
    expect(output).toContain(message);
    expect(fs.existsSync(dbPath)).toBe(false);
  });

  it.each([
    ['LITESTREAM_SYNC_INTERVAL', 'often'],
    ['LITESTREAM_METRICS_ADDR', '0.0.0.0:9090'],
    ['LITESTREAM_STOP_TIMEOUT_MS', '-1'],
  ])('%s=%s exits 2 naming the variable', async (name, value) => {
    const { code, output } = await runToExit({ DB_PATH: path.join(tempDir(), 'app.db'), REPLICA_URL: 'file:///tmp/x', [name]: value });
    expect(code).toBe(2);
    expect(output).toContain(name);
  });

  it('a missing litestream binary fails start-up with an install hint, before the database exists', async () => {
    const dbPath = path.join(tempDir(), 'app.db');
    const { code, output } = await runToExit({ DB_PATH: dbPath, REPLICA_URL: 'file:///tmp/nowhere', LITESTREAM_BIN: '/nonexistent/litestream' });
    expect(code).toBe(1);
    expect(output).toContain('go install github.com/benbjohnson/litestream/cmd/litestream@');
    expect(fs.existsSync(dbPath)).toBe(false);
  });
});

const skip = missingTools();

describe.skipIf(skip)('start-up against the replica', () => {
  const replica = useReplica('startup-test');
  let s: Running | undefined;

  it('empty bucket (first deploy): starts with a new database and replicates it', async () => {
    const url = 'gs://startup-test/first';
    s = await replica.start({ env: replica.env(url) });
    expect(logLines(s, 'replica is empty: starting with a new database')).toHaveLength(1);
    expect((await req(s.url, 'POST', '/products', { name: 'first', price: 1 })).status).toBe(201);
    expect(await s.stop()).toBe(0);
    expect(readDb((await restoreWithCli(replica.gcs, url)).dbPath).products.size).toBe(1);
  });

  it('existing local database: not restored over, and replication carries on from it', async () => {
    const url = 'gs://startup-test/local';
    s = await replica.start({ env: replica.env(url) });
    const { dbPath } = s;
    expect((await req(s.url, 'POST', '/products', { name: 'one', price: 1 })).status).toBe(201);
    expect(await s.stop()).toBe(0);

    s = await replica.start({ dbPath, env: replica.env(url) });
    expect(logLines(s, 'local database exists: not restoring')).toHaveLength(1);
    expect(logLines(s, 'restoring the database from the replica')).toHaveLength(0);
    expect((await req(s.url, 'POST', '/products', { name: 'two', price: 2 })).status).toBe(201);
    expect((await allProducts(s.url)).size).toBe(2);
    expect(await s.stop()).toBe(0);
    const db = readDb((await restoreWithCli(replica.gcs, url)).dbPath);
    expect(db.integrity).toBe('ok');
    expect([...db.products.values()].map((p) => p.name).sort()).toEqual(['one', 'two']);
  });

  it('replica present, no local database (scale to zero, new instance): restores, then serves and replicates; three generations', async () => {
    const url = 'gs://startup-test/generations';
    // Generation 1 writes and stops.
    s = await replica.start({ env: replica.env(url) });
    for (let i = 0; i < 50; i++) expect((await req(s.url, 'POST', '/products', { name: `g1-${i}`, price: i })).status).toBe(201);
    expect((await req(s.url, 'POST', '/counters/gen/increment', { by: 10 })).status).toBe(200);
    expect(await s.stop()).toBe(0);

    // Generation 2 starts on a fresh disk: restore, then more writes.
    const t0 = performance.now();
    s = await replica.start({ env: replica.env(url) });
    await waitFor(async () => (await req(s!.url, 'GET', '/readyz')).status === 200, '/readyz 200');
    const readyMs = performance.now() - t0;
    const restored = logLines(s, 'database restored from the replica')[0];
    console.log(`restore on start (small db): restore ${String(restored?.ms)} ms, process start -> /readyz 200 ${readyMs.toFixed(0)} ms`);
    expect(restored).toBeDefined();
    expect((await allProducts(s.url)).size).toBe(50);
    for (let i = 0; i < 20; i++) expect((await req(s.url, 'POST', '/products', { name: `g2-${i}`, price: i })).status).toBe(201);
    expect((await req(s.url, 'POST', '/counters/gen/increment', { by: 5 })).status).toBe(200);
    expect(await s.stop()).toBe(0);

    // Generation 3 sees both.
    s = await replica.start({ env: replica.env(url) });
    const products = await allProducts(s.url);
    expect(products.size).toBe(70);
    expect((await req(s.url, 'GET', '/counters/gen')).body.value).toBe(15);
  });

  it('replica unreachable (emulator gone): clear error, non-zero exit, no database created', async () => {
    // A replica existed; now nothing answers on that port.
    const gone = await startGcs();
    await gone.createBucket('gone-bucket');
    const url = 'gs://gone-bucket/db';
    s = await replica.start({ env: replicaEnv(gone, url) });
    expect((await req(s.url, 'POST', '/products', { name: 'precious', price: 1 })).status).toBe(201);
    expect(await s.stop()).toBe(0);
    await gone.stop();

    const dbPath = path.join(tempDir(), 'app.db');
    const t0 = performance.now();
    const { code, output } = await runToExit({ DB_PATH: dbPath, ...replicaEnv(gone, url, { LITESTREAM_CONNECT_TIMEOUT_MS: '2000' }) });
    console.log(`unreachable replica: exit ${code} after ${(performance.now() - t0).toFixed(0)} ms`);
    expect(code).toBe(1);
    expect(output).toContain(`replica ${url} did not answer within 2000 ms`);
    expect(output).not.toMatch(/"msg":"listening"/);
    expect(fs.existsSync(dbPath)).toBe(false);
  });

  it('wrong port (never a GCS there): the same clear failure', async () => {
    const dbPath = path.join(tempDir(), 'app.db');
    const port = await freePort();
    const env = replica.env('gs://startup-test/x', { STORAGE_EMULATOR_HOST: `127.0.0.1:${port}`, LITESTREAM_CONNECT_TIMEOUT_MS: '1500' });
    const { code, output } = await runToExit({ DB_PATH: dbPath, ...env });
    expect(code).toBe(1);
    expect(output).toContain('did not answer within 1500 ms');
    expect(fs.existsSync(dbPath)).toBe(false);
  });

  it('credentials refused (403 on every request): clear error at once, non-zero exit, no database created', async () => {
    const forbidden = http.createServer((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: { code: 403, message: 'app@p.iam.gserviceaccount.com does not have storage.objects.list access to the Google Cloud Storage bucket.', errors: [{ reason: 'forbidden', message: 'forbidden', domain: 'global' }] },
        }),
      );
    });
    await new Promise<void>((r) => forbidden.listen(0, '127.0.0.1', r));
    try {
      const port = (forbidden.address() as { port: number }).port;
      const dbPath = path.join(tempDir(), 'app.db');
      const t0 = performance.now();
      const { code, output } = await runToExit({ DB_PATH: dbPath, ...replica.env('gs://startup-test/db', { STORAGE_EMULATOR_HOST: `127.0.0.1:${port}` }) });
      const ms = performance.now() - t0;
      expect(code).toBe(1);
      expect(output).toContain('cannot read replica gs://startup-test/db');
      expect(output).toContain('Error 403');
      expect(ms).toBeLessThan(10_000);
      expect(fs.existsSync(dbPath)).toBe(false);
    } finally {
      forbidden.close();
    }
  });

  it('bucket does not exist: clear error, non-zero exit', async () => {
    const dbPath = path.join(tempDir(), 'app.db');
    const { code, output } = await runToExit({ DB_PATH: dbPath, ...replica.env('gs://no-such-bucket/db') });
    expect(code).toBe(1);
    expect(output).toContain("bucket doesn't exist");
    expect(fs.existsSync(dbPath)).toBe(false);
  });

  it('existing local database but the replica is unreachable: the first sync fails start-up (never ready unreplicated)', async () => {
    const url = 'gs://startup-test/local-unreachable';
    s = await replica.start({ env: replica.env(url) });
    const { dbPath } = s;
    expect(await s.stop()).toBe(0);
    const port = await freePort();
    const env = replica.env(url, { STORAGE_EMULATOR_HOST: `127.0.0.1:${port}`, LITESTREAM_START_TIMEOUT_MS: '3000', LITESTREAM_CONNECT_TIMEOUT_MS: '2000' });
    const { code, output } = await runToExit({ DB_PATH: dbPath, ...env });
    expect(code).toBe(1);
    expect(output).toMatch(/first sync to gs:\/\/startup-test\/local-unreachable failed|did not answer within/);
    expect(output).not.toMatch(/"msg":"listening"/);
    // The Litestream it started is gone too.
    const started = output.split('\n').filter((l) => l.includes('"litestream started"'));
    for (const line of started) {
      const pid = (JSON.parse(line) as { litestreamPid: number }).litestreamPid;
      expect(() => process.kill(pid, 0)).toThrow();
    }
  });
});
