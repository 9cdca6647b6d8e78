// Point-in-time restore, as docs/deploy-cloud-run.md tells an operator to run it: the real server replicates to
// fake-gcs-server; writes confirmed in the bucket (Prefer: durability=replicated), the time noted, more writes, then
// `litestream restore -timestamp <noted time>` with the CLI: only the first writes are in the restored file.
// Litestream 0.5.18 picks the LTX files whose timestamp (the sync that cut them, kept in the object's metadata on
// GCS, millisecond precision) is before the one asked for.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LITESTREAM_BIN, missingTools } from './helpers/gcs.js';
import { readDb, restoreWithCli, useReplica } from './helpers/replica.js';
import { req, tempDir } from './helpers/server.js';

const skip = missingTools();
const replicated = { Prefer: 'durability=replicated' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits past the next whole second and returns it as RFC 3339 (what `-timestamp` parses), then waits past it too. */
async function noteSecondBoundary(): Promise<string> {
  const next = Math.floor(Date.now() / 1000) * 1000 + 1000;
  await sleep(next - Date.now() + 50);
  const noted = new Date(next).toISOString().replace(/\.\d{3}Z$/, 'Z');
  await sleep(1000);
  return noted;
}

describe.skipIf(skip)('point-in-time restore (litestream restore -timestamp) from the emulated bucket', () => {
  const replica = useReplica('pitr-test', { printOutputOnFailure: true });

  it('restoring to a time noted between two groups of replicated writes brings back the first group only', async () => {
    const url = 'gs://pitr-test/db';
    const s = await replica.start({ env: replica.env(url) });
    const before: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await req(s.url, 'POST', '/products', { name: `before-${i}`, price: i }, replicated);
      expect(r.status).toBe(201);
      before.push(r.body.id);
    }
    expect((await req(s.url, 'POST', '/counters/pitr/increment', { by: 10 }, replicated)).body.value).toBe(10);

    const noted = await noteSecondBoundary();

    for (let i = 0; i < 5; i++) expect((await req(s.url, 'POST', '/products', { name: `after-${i}`, price: i }, replicated)).status).toBe(201);
    expect((await req(s.url, 'PATCH', `/products/${before[0]}`, { name: 'changed-after' }, replicated)).status).toBe(200);
    expect((await req(s.url, 'POST', '/counters/pitr/increment', { by: 5 }, replicated)).body.value).toBe(15);

    // The plan first (-dry-run), as the docs suggest, then the restore itself; the server keeps running meanwhile.
    const out = path.join(tempDir('pitr-'), 'app.db');
    const env = { ...process.env, STORAGE_EMULATOR_HOST: replica.gcs.host };
    const plan = spawnSync(LITESTREAM_BIN!, ['restore', '-dry-run', '-timestamp', noted, '-o', out, url], { env, encoding: 'utf8' });
    expect(plan.status, plan.stderr).toBe(0);
    const r = spawnSync(LITESTREAM_BIN!, ['restore', '-timestamp', noted, '-integrity-check', 'full', '-o', out, url], { env, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const atNoted = readDb(out);
    expect(atNoted.integrity).toBe('ok');
    expect([...atNoted.products.values()].map((p) => p.name).sort()).toEqual(before.map((_, i) => `before-${i}`).sort());
    expect(atNoted.counters.get('pitr')).toBe(10);

    // Without -timestamp: everything, as the server has it now.
    const latest = readDb((await restoreWithCli(replica.gcs, url)).dbPath);
    expect(latest.products.size).toBe(10);
    expect(latest.products.get(before[0]!)?.name).toBe('changed-after');
    expect(latest.counters.get('pitr')).toBe(15);

    // A time before the replica existed is refused, not answered with an empty database.
    const tooEarly = spawnSync(LITESTREAM_BIN!, ['restore', '-timestamp', '2000-01-01T00:00:00Z', '-o', path.join(tempDir('pitr-'), 'x.db'), url], { env, encoding: 'utf8' });
    expect(tooEarly.status).not.toBe(0);
    console.log(`PITR: restored to ${noted}: ${atNoted.products.size} of ${latest.products.size} products; too early: ${(tooEarly.stderr || tooEarly.stdout).trim().split('\n').at(-1)}`);
    expect(await s.stop()).toBe(0);
  });
});
