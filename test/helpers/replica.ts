// Replication test helpers: a describe-block fixture (emulator, bucket, servers cleaned up), a server environment
// that replicates to the emulator, restores with the litestream CLI, reads a restored database directly, and a
// write load that records what was acknowledged and when.
import { spawn } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { Gcs } from './gcs.js';
import { LITESTREAM_BIN, startGcs, stopAllGcs } from './gcs.js';
import { killAll, req, startServer, tempDir, type Running, type StartOptions } from './server.js';
import { logLines } from './wait.js';

export interface ReplicaFixture {
  /** The emulator, started (with the fixture's bucket created) in beforeAll. */
  readonly gcs: Gcs;
  /** replicaEnv() on this fixture's emulator. */
  env(url: string, extra?: Record<string, string>): Record<string, string>;
  /** startServer(), remembered so that afterEach kills it and its Litestream, however the test left it. */
  start(opts?: StartOptions): Promise<Running>;
}

/**
 * Call inside a describe block: starts an emulator and creates `bucket` before all its tests; after each test
 * kills every Litestream the test's servers started (a server killed with SIGKILL cannot) and then the
 * servers; after all, stops every server and emulator still running. With `printOutputOnFailure`, a failed
 * test prints the last 40 lines of the last server it started.
 */
export function useReplica(bucket: string, opts: { printOutputOnFailure?: boolean } = {}): ReplicaFixture {
  let gcs: Gcs | undefined;
  let started: Running[] = [];
  beforeAll(async () => {
    gcs = await startGcs();
    await gcs.createBucket(bucket);
  });
  afterEach(async (ctx) => {
    const servers = started;
    started = [];
    const last = servers.at(-1);
    if (opts.printOutputOnFailure && ctx.task.result?.state === 'fail' && last) {
      console.log(`--- server output (last 40 lines) ---\n${last.output().split('\n').slice(-40).join('\n')}`);
    }
    for (const s of servers) killLitestreams(s);
    await Promise.all(servers.map((s) => s.stop('SIGKILL')));
  });
  afterAll(async () => {
    await killAll();
    await stopAllGcs();
  });
  const fixture: ReplicaFixture = {
    get gcs() {
      if (!gcs) throw new Error('useReplica: the emulator is started in beforeAll');
      return gcs;
    },
    env: (url, extra) => replicaEnv(fixture.gcs, url, extra),
    async start(startOpts) {
      const s = await startServer(startOpts);
      started.push(s);
      return s;
    },
  };
  return fixture;
}

/** Server env for replicating to `url` on the emulator (metrics listener off: tests run side by side). */
export function replicaEnv(gcs: Gcs, url: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    REPLICA_URL: url,
    STORAGE_EMULATOR_HOST: gcs.host,
    LITESTREAM_BIN: LITESTREAM_BIN!,
    LITESTREAM_METRICS_ADDR: 'off',
    ...extra,
  };
}

/** `litestream restore -o <fresh dir>/app.db <url>`, as an operator would. */
export async function restoreWithCli(gcs: Gcs, url: string): Promise<{ dbPath: string; ms: number; output: string }> {
  const dbPath = path.join(tempDir('restored-'), 'app.db');
  const t0 = performance.now();
  const proc = spawn(LITESTREAM_BIN!, ['restore', '-o', dbPath, url], {
    env: { ...process.env, STORAGE_EMULATOR_HOST: gcs.host },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (b: Buffer) => (output += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => proc.on('close', resolve));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`litestream restore exited ${code}:\n${output}`);
  return { dbPath, ms: Math.round(performance.now() - t0), output };
}

export interface DbContents {
  integrity: string;
  products: Map<number, Record<string, unknown>>;
  counters: Map<string, number>;
}

/** Reads a database file directly (read-only): integrity check, every product, every counter. */
export function readDb(dbPath: string): DbContents {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const integrity = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
    const products = new Map<number, Record<string, unknown>>();
    for (const row of db.prepare('SELECT * FROM products').all() as Record<string, unknown>[]) products.set(row.id as number, row);
    const counters = new Map<string, number>();
    for (const row of db.prepare('SELECT name, value FROM counters').all() as { name: string; value: number }[]) counters.set(row.name, row.value);
    return { integrity, products, counters };
  } finally {
    db.close();
  }
}

/** PIDs of the Litestream processes a server started (from its "litestream started" log lines). */
export function litestreamPids(s: Running): number[] {
  return logLines(s, 'litestream started').map((l) => l.litestreamPid as number);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A server killed with SIGKILL cannot stop its Litestream: the test does it. */
export function killLitestreams(s: Running | undefined): void {
  if (!s) return;
  for (const pid of litestreamPids(s)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}

export interface Acked {
  /** Product id -> the body the API answered, and when. */
  products: Map<number, { body: Record<string, unknown>; at: number }>;
  /** Acknowledged increments of counter `name`: the value each answer carried, and when. */
  increments: { value: number; at: number }[];
  /** 503 answers by error code (refused before being applied). */
  refused: Record<string, number>;
  /** Requests whose outcome the client never learned (connection broke): applied or not. */
  unknown: { create: number; increment: number };
  other: string[];
}

export function newAcked(): Acked {
  return { products: new Map(), increments: [], refused: {}, unknown: { create: 0, increment: 0 }, other: [] };
}

/**
 * Runs `concurrency` clients; client i makes creates (and every `incrementEvery`-th request an increment of
 * `counter`) until `stop()` returns true or `total` requests were made. Records every answer in `acked`.
 * A client ends at its first failed connection, or at its first 503 unless `keepGoingOn503`.
 */
export async function writeLoad(
  url: string,
  acked: Acked,
  opts: {
    total: number;
    concurrency: number;
    counter: string;
    incrementEvery: number;
    stop?: () => boolean;
    keepGoingOn503?: boolean;
    /** Sent with every request (e.g. Prefer). */
    headers?: Record<string, string>;
  },
): Promise<void> {
  let next = 0;
  const client = async () => {
    for (;;) {
      if (opts.stop?.()) return;
      const n = next++;
      if (n >= opts.total) return;
      const kind = n % opts.incrementEvery === opts.incrementEvery - 1 ? 'increment' : 'create';
      try {
        const r =
          kind === 'create'
            ? await req(url, 'POST', '/products', { name: `p-${n}`, price: n % 1000, description: 'x'.repeat(n % 200), stock: n % 7 }, opts.headers)
            : await req(url, 'POST', `/counters/${opts.counter}/increment`, undefined, opts.headers);
        const at = performance.now();
        if (kind === 'create' && r.status === 201) acked.products.set(r.body.id, { body: r.body, at });
        else if (kind === 'increment' && r.status === 200) acked.increments.push({ value: r.body.value, at });
        else if (r.status === 503) {
          const code = String(r.body?.error?.code);
          acked.refused[code] = (acked.refused[code] ?? 0) + 1;
          if (!opts.keepGoingOn503) return;
          await new Promise((res) => setTimeout(res, 20));
        } else {
          acked.other.push(`${kind}: ${r.status} ${r.text.slice(0, 200)}`);
          return;
        }
      } catch {
        acked.unknown[kind]++;
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, client));
}

/** Every acknowledged write acked at or before `cutoff` (performance.now() time) is in `db`, as acknowledged. */
export function missingAcked(db: DbContents, acked: Acked, counter: string, cutoff = Infinity): { products: number[]; counterShort: number } {
  const products: number[] = [];
  for (const [id, { body, at }] of acked.products) {
    if (at > cutoff) continue;
    const row = db.products.get(id);
    if (!row || row.name !== body.name || row.price !== body.price || row.stock !== body.stock) products.push(id);
  }
  // Increments are acknowledged with the value they produced: the counter must be at least the highest acked value.
  const before = acked.increments.filter((i) => i.at <= cutoff);
  const highest = Math.max(0, ...before.map((i) => i.value));
  const stored = db.counters.get(counter) ?? 0;
  return { products, counterShort: Math.max(0, highest - stored) };
}

/** Pages through GET /products (for checks through the API). */
export async function allProducts(url: string): Promise<Map<number, Record<string, unknown>>> {
  const out = new Map<number, Record<string, unknown>>();
  for (let after = 0; ; ) {
    const page = await req(url, 'GET', `/products?limit=100&after=${after}`);
    if (page.status !== 200) throw new Error(`GET /products: ${page.status} ${page.text}`);
    for (const p of page.body.items) out.set(p.id, p);
    if (page.body.items.length < 100) return out;
    after = page.body.items.at(-1).id;
  }
}
