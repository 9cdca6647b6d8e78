// Another process holding SQLite's write lock (Litestream after a checkpoint, an operator's sqlite3 shell)
// must cost clients latency only, never an error.
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killAll, metric, req, startServer, type Reply, type Running } from './helpers/server.js';

const HOLD_MS = 1500;

afterAll(killAll);

interface Timed {
  reply: Reply;
  at: number;
}

/**
 * Holds BEGIN IMMEDIATE on the server's database for HOLD_MS from this process while `during` sends requests.
 * better-sqlite3 is synchronous, but BEGIN and COMMIT each return at once: the lock is held across event-loop
 * turns and released from a timer, so the HTTP replies are received meanwhile.
 */
async function withWriteLock<T>(dbPath: string, during: () => Promise<T>): Promise<{ result: T; releaseAt: number }> {
  const other = new Database(dbPath, { timeout: 5000 });
  try {
    other.exec('BEGIN IMMEDIATE');
    let releaseAt = 0;
    const released = new Promise<void>((resolve) =>
      setTimeout(() => {
        releaseAt = performance.now();
        other.exec('COMMIT');
        resolve();
      }, HOLD_MS),
    );
    const result = await during();
    await released;
    return { result, releaseAt };
  } finally {
    if (other.inTransaction) other.exec('ROLLBACK');
    other.close();
  }
}

function burst(url: string, counter: string): Promise<Timed>[] {
  return Array.from({ length: 20 }, (_, i) =>
    (i % 2 ? req(url, 'POST', `/counters/${counter}/increment`) : req(url, 'POST', '/products', { name: `locked-${i}`, price: i })).then(
      (reply) => ({ reply, at: performance.now() }),
    ),
  );
}

describe('another connection holds the write lock for 1.5 s', () => {
  let s: Running | undefined;
  afterEach(async () => {
    await s?.stop();
    s = undefined;
  });

  const run = async (busyTimeoutMs: number) => {
    s = await startServer({ env: { SQLITE_BUSY_TIMEOUT_MS: String(busyTimeoutMs) } });
    const url = s.url;
    expect((await req(url, 'POST', '/products', { name: 'before', price: 1 })).status).toBe(201);
    const retries0 = await metric(url, 'sqlite_busy_retries_total');

    const { result, releaseAt } = await withWriteLock(s.dbPath, async () => {
      const writes = burst(url, 'locked');
      // Reads never wait for the write lock (WAL): answered while it is still held.
      const read = await req(url, 'GET', '/products?limit=5');
      const readAt = performance.now();
      return { writes: await Promise.all(writes), read, readAt };
    });

    expect(result.read.status).toBe(200);
    expect(result.readAt).toBeLessThan(releaseAt);
    const statuses = result.writes.map((w) => w.reply.status);
    expect(statuses.filter((st) => st !== 200 && st !== 201)).toEqual([]);
    // Nothing could commit while the lock was held.
    for (const w of result.writes) expect(w.at).toBeGreaterThanOrEqual(releaseAt);

    const retries = (await metric(url, 'sqlite_busy_retries_total')) - retries0;
    console.log(`busy_timeout ${busyTimeoutMs} ms: ${retries} whole-batch retries`);
    if (busyTimeoutMs < HOLD_MS) expect(retries).toBeGreaterThan(0);
    else expect(retries).toBe(0);

    // Every write was applied exactly once.
    expect((await req(url, 'GET', '/counters/locked')).body).toEqual({ name: 'locked', value: 10 });
    for (const w of result.writes.filter((x) => x.reply.status === 201)) {
      expect((await req(url, 'GET', `/products/${w.reply.body.id}`)).body).toEqual(w.reply.body);
    }
    expect(await s.stop()).toBe(0);
  };

  it('SQLITE_BUSY_TIMEOUT_MS=200: the batch is retried with backoff after busy_timeout expires; all writes 2xx after release', () =>
    run(200));
  it('SQLITE_BUSY_TIMEOUT_MS=5000 (default): the lock is waited out within busy_timeout; all writes 2xx after release', () =>
    run(5000));
});
