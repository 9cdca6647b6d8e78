// The writer lease (src/replication/lease.ts) against a real fake-gcs-server through the official client: who may
// acquire, when a takeover is allowed (on the contender's own clock only), that a stale holder can neither renew
// nor release over a new one, and, for contrast, that the same writes without the generation precondition clobber.
import { performance } from 'node:perf_hooks';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseConflictError, leaseLocation, LeaseUnknownError, WriterLease, type LeaseBody, type LostReason } from '../src/replication/lease.js';
import { loadConfig } from '../src/shared/config.js';
import { FAKE_GCS_BIN, startGcs, stopAllGcs, type Gcs } from './helpers/gcs.js';
import { setTimeout as sleep } from 'node:timers/promises';

const missing = FAKE_GCS_BIN ? '' : 'fake-gcs-server not installed: go install github.com/fsouza/fake-gcs-server@v1.56.1';
if (missing && process.env.CI === 'true') throw new Error(`CI=true: ${missing}`);

const TTL = 600;
const MARGIN = 120; // the default, TTL / 5
const RENEW = 150;
const BUCKET = 'lease-test';

/** Polls tryAcquire until it succeeds; fails after `ms`. */
async function acquireWithin(l: WriterLease, ms: number) {
  const deadline = performance.now() + ms;
  for (;;) {
    const r = await l.tryAcquire();
    if (r.acquired) return r;
    if (performance.now() > deadline) throw new Error(`not acquired within ${ms} ms: ${JSON.stringify(r)}`);
    await sleep(30);
  }
}

describe.skipIf(missing)('writer lease in Cloud Storage (fake-gcs-server)', () => {
  let gcs: Gcs;
  let storage: Storage;
  let n = 0;
  /** A fresh replica path per test, so tests do not see each other's lease. */
  const url = () => `gs://${BUCKET}/db${++n}`;
  const lease = (replicaUrl: string, owner: string, onLost?: (r: LostReason) => void) =>
    new WriterLease({ replicaUrl, owner, ttlMs: TTL, renewMs: RENEW, storage, onLost });
  const rawFile = (replicaUrl: string) => storage.bucket(BUCKET).file(leaseLocation(replicaUrl).object);
  const rawSave = (replicaUrl: string, body: LeaseBody, ifGenerationMatch?: string) =>
    rawFile(replicaUrl).save(JSON.stringify(body), {
      resumable: false,
      ...(ifGenerationMatch === undefined ? {} : { preconditionOpts: { ifGenerationMatch: Number(ifGenerationMatch) } }),
    });

  beforeAll(async () => {
    gcs = await startGcs();
    await gcs.createBucket(BUCKET);
    storage = new Storage({ apiEndpoint: `http://${gcs.host}`, projectId: 'test', retryOptions: { autoRetry: false } });
  });
  afterAll(stopAllGcs);

  it('lives at <replica path>/lease.json, beside ltx/', () => {
    expect(leaseLocation('gs://b-1/app/db')).toEqual({ bucket: 'b-1', object: 'app/db/lease.json' });
    expect(leaseLocation('gs://b-1/app/db/')).toEqual({ bucket: 'b-1', object: 'app/db/lease.json' });
    expect(() => leaseLocation('file:///tmp/x')).toThrow(/gs:\/\//);
  });

  it('is created when absent, with epoch 1, and read back with its generation', async () => {
    const u = url();
    const a = lease(u, 'a');
    expect(await a.read()).toBeNull();
    const t0 = performance.now();
    const r = await a.tryAcquire();
    expect(r).toMatchObject({ acquired: true, epoch: 1 });
    expect(a.held).toBe(true);
    expect(a.validUntil).toBeGreaterThan(t0 + TTL - MARGIN - 1);
    expect(a.validUntil).toBeLessThanOrEqual(performance.now() + TTL - MARGIN);
    expect(await a.read()).toEqual({ generation: r.acquired && r.generation, body: { epoch: 1, owner: 'a', released: false, lastTxid: null } });
    expect(await gcs.list(BUCKET, `db${n}/`)).toEqual([`db${n}/lease.json`]);
  });

  it('cannot be taken by a second contender while the holder renews (2.5 x TTL of polling)', async () => {
    const u = url();
    const a = lease(u, 'a');
    const b = lease(u, 'b');
    expect((await a.tryAcquire()).acquired).toBe(true);
    a.start();
    const until = performance.now() + 2.5 * TTL;
    let polls = 0;
    while (performance.now() < until) {
      const r = await b.tryAcquire();
      expect(r).toMatchObject({ acquired: false, reason: 'held', holder: { owner: 'a', epoch: 1 } });
      polls++;
      await sleep(40);
    }
    expect(polls).toBeGreaterThan(10);
    expect(a.held).toBe(true);
    expect((await a.read())!.body.epoch).toBe(1); // renewals keep the epoch
    await a.release('1');
  });

  it('is taken over only after its generation stayed unchanged for TTL + margin on the contender clock; epoch + 1', async () => {
    const u = url();
    const a = lease(u, 'a');
    const b = lease(u, 'b');
    await a.tryAcquire(); // then a "dies": no renewals, no release
    const first = await b.tryAcquire();
    const seenAt = performance.now();
    expect(first).toMatchObject({ acquired: false, reason: 'held' });
    expect(first.acquired === false && first.waitMs).toBeGreaterThan(TTL + MARGIN - 50);
    const r = await acquireWithin(b, 3 * TTL);
    // b's first observation came after the object was written, so this bounds the wait from below.
    expect(performance.now() - seenAt).toBeGreaterThanOrEqual(TTL + MARGIN - 5);
    expect(r).toMatchObject({ acquired: true, epoch: 2 });
    expect((await b.read())!.body).toEqual({ epoch: 2, owner: 'b', released: false, lastTxid: null });
  });

  it('is taken over at once after a release, which carries lastTxid; epochs keep increasing', async () => {
    const u = url();
    const a = lease(u, 'a');
    const b = lease(u, 'b');
    const c = lease(u, 'c');
    await a.tryAcquire();
    await a.release('00000000000000ff');
    expect(a.held).toBe(false);
    expect((await b.read())!.body).toEqual({ epoch: 1, owner: 'a', released: true, lastTxid: '00000000000000ff' });
    expect(await b.tryAcquire()).toMatchObject({ acquired: true, epoch: 2 });
    await b.release('0000000000000100');
    expect(await c.tryAcquire()).toMatchObject({ acquired: true, epoch: 3 });
    expect(await a.tryAcquire()).toMatchObject({ acquired: false, holder: { owner: 'c', epoch: 3 } });
  });

  it('a renewal after someone else took over gets 412: LeaseConflictError and onLost("superseded")', async () => {
    const u = url();
    const lost: LostReason[] = [];
    const a = lease(u, 'a', (r) => lost.push(r));
    await a.tryAcquire();
    const cur = (await a.read())!;
    await rawSave(u, { epoch: 2, owner: 'b', released: false, lastTxid: null }, cur.generation); // b's takeover
    await expect(a.renew()).rejects.toBeInstanceOf(LeaseConflictError);
    expect(a.held).toBe(false);
    expect(lost).toEqual(['superseded']);
    expect((await a.read())!.body.owner).toBe('b'); // untouched
  });

  it('a renewal whose answer was lost but which landed is recognised (own owner and epoch): no false loss', async () => {
    const u = url();
    const lost: LostReason[] = [];
    const a = lease(u, 'a', (r) => lost.push(r));
    await a.tryAcquire();
    // a's renewal reached the bucket but its answer did not reach a: the object moved on with a's own body.
    await rawSave(u, { epoch: 1, owner: 'a', released: false, lastTxid: null }, (await a.read())!.generation);
    await a.renew(); // 412, then adopts the generation and renews from it
    expect(a.held).toBe(true);
    expect(lost).toEqual([]);
    expect((await a.read())!.body).toEqual({ epoch: 1, owner: 'a', released: false, lastTxid: null });
    await a.release(null); // and the holder's generation is the current one
    expect((await a.read())!.body.released).toBe(true);
  });

  it('renews on its own every LEASE_RENEW_MS after start(), and not after stop()', async () => {
    const u = url();
    const a = lease(u, 'a');
    await a.tryAcquire();
    const g0 = (await a.read())!.generation;
    a.start();
    await sleep(3 * RENEW + 60);
    a.stop();
    await sleep(100); // a renewal already in flight at stop() may still land
    const g1 = (await a.read())!.generation;
    expect(g1).not.toBe(g0);
    await sleep(3 * RENEW);
    expect((await a.read())!.generation).toBe(g1);
  });

  it("a stale holder's release does not clobber the new holder (412), where an unconditional write would", async () => {
    const u = url();
    // a's process is paused (its clock, as it sees it, stands still), so it still believes it holds the lease when
    // it wakes and releases; only the precondition stands between it and b's lease.
    const a = new WriterLease({ replicaUrl: u, owner: 'a', ttlMs: TTL, renewMs: RENEW, storage, now: () => 0 });
    const b = lease(u, 'b');
    await a.tryAcquire();
    await acquireWithin(b, 3 * TTL); // b takes over after TTL + margin
    expect(a.held).toBe(true);
    await expect(a.release('0000000000000001')).rejects.toBeInstanceOf(LeaseConflictError);
    expect((await b.read())!.body).toEqual({ epoch: 2, owner: 'b', released: false, lastTxid: null });
    // Without the precondition the same release lands and tells every standby it may take over from b.
    await rawSave(u, { epoch: 1, owner: 'a', released: true, lastTxid: '0000000000000001' });
    expect((await b.read())!.body).toMatchObject({ owner: 'a', released: true });
  });

  it('without ifGenerationMatch a takeover clobbers a live holder; with it, the same write gets 412', async () => {
    const u = url();
    const a = lease(u, 'a');
    await a.tryAcquire();
    const seen = (await a.read())!.generation;
    await a.renew(); // the holder moved on since `seen`
    const late = { epoch: 2, owner: 'b', released: false, lastTxid: null };
    await expect(rawSave(u, late, seen)).rejects.toMatchObject({ code: 412 });
    await expect(rawSave(u, late, '0')).rejects.toMatchObject({ code: 412 }); // create-only also refuses
    expect((await a.read())!.body.owner).toBe('a');
    await rawSave(u, late); // unconditional: succeeds, a is silently overwritten
    expect((await a.read())!.body.owner).toBe('b');
  });

  it('when the bucket is unreachable the lease ages on the local clock: LeaseUnknownError, then onLost("expired")', async () => {
    const own = await startGcs();
    await own.createBucket(BUCKET);
    const s = new Storage({ apiEndpoint: `http://${own.host}`, projectId: 'test', retryOptions: { autoRetry: false } });
    const lost: LostReason[] = [];
    // The holder's clock is ours to move, so stopping the emulator may take as long as it takes under load.
    let clock = 1000;
    const a = new WriterLease({ replicaUrl: url(), owner: 'a', ttlMs: TTL, renewMs: RENEW, storage: s, now: () => clock, onLost: (r) => lost.push(r) });
    await a.tryAcquire();
    expect(a.validUntil).toBe(1000 + TTL - MARGIN);
    await own.stop();
    clock += 100;
    const err = await a.renew().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseUnknownError);
    expect((err as LeaseUnknownError).status).toBe('ECONNREFUSED');
    expect(a.held).toBe(true); // unknown is not lost: the holder keeps its validity until validUntil
    expect(a.validUntil).toBe(1000 + TTL - MARGIN);
    expect(lost).toEqual([]);
    clock = a.validUntil; // no renewal came through: the expiry timer (not a renewal) declares the loss
    await sleep(TTL);
    expect(lost).toEqual(['expired']);
    expect(a.held).toBe(false);
    expect(a.validUntil).toBe(0);
  });
});

describe('lease settings', () => {
  const base = { REPLICA_URL: 'gs://bkt/app/db' };
  it('default to a renewal every 3 s and a 15 s TTL', () => {
    expect(loadConfig(base).replication).toMatchObject({ leaseRenewMs: 3000, leaseTtlMs: 15_000 });
  });
  it('refuse a renewal interval above half the TTL, naming both variables', () => {
    expect(() => loadConfig({ ...base, LEASE_RENEW_MS: '8000' })).toThrow(/LEASE_RENEW_MS=8000 must be at most half of LEASE_TTL_MS=15000/);
    expect(loadConfig({ ...base, LEASE_RENEW_MS: '300', LEASE_TTL_MS: '600' }).replication).toMatchObject({ leaseRenewMs: 300, leaseTtlMs: 600 });
    expect(() => loadConfig({ ...base, LEASE_TTL_MS: 'abc' })).toThrow(/LEASE_TTL_MS/);
  });
});
