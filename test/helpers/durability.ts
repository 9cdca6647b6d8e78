// One durability run, shared by test/durability.test.ts and the soak test: clients write for a while, the server
// and its Litestream are killed with SIGKILL right after a burst of acknowledgements, and the replica is restored
// with the litestream CLI and compared with what was acknowledged.
import { killLitestreams, litestreamPids, missingAcked, newAcked, readDb, restoreWithCli, writeLoad, type Acked, type ReplicaFixture } from './replica.js';
import { waitFor } from './wait.js';

export interface KillRun {
  acked: Acked;
  /** Acknowledged writes (creates + increments). */
  writes: number;
  missing: { products: number[]; counterShort: number };
  integrity: string;
  restoredProducts: number;
}

export async function killAndRestore(
  replica: ReplicaFixture,
  url: string,
  opts: { durability: 'local' | 'replicated'; env?: Record<string, string>; loadMs: number; concurrency: number },
): Promise<KillRun> {
  const s = await replica.start({ env: replica.env(url, opts.env) });
  const [lsPid] = litestreamPids(s);
  const acked = newAcked();
  let stop = false;
  const t0 = performance.now();
  const load = writeLoad(s.url, acked, {
    total: 1e9,
    concurrency: opts.concurrency,
    counter: 'durable',
    incrementEvery: 3,
    stop: () => stop,
    headers: { Prefer: `durability=${opts.durability}` },
  });
  await waitFor(() => performance.now() - t0 > opts.loadMs, 'the load to run', opts.loadMs + 5000, 50);
  // Right after a burst of acknowledgements: the newest ones are the ones a lazy replica would lose.
  const seen = acked.products.size + acked.increments.length;
  await waitFor(() => acked.products.size + acked.increments.length >= seen + opts.concurrency / 2, 'a burst of 2xx', 10_000, 1);
  // Frozen first, so it answers nothing more: with Litestream killed first, a /sync in flight fails and the server
  // could still answer its writes 504 in the moment before its own SIGKILL lands (seen once in CI: two 504s).
  // Litestream next, so nothing more is uploaded after the last answer; then the server.
  s.proc.kill('SIGSTOP');
  process.kill(lsPid!, 'SIGKILL');
  s.proc.kill('SIGKILL');
  stop = true;
  await s.exited;
  killLitestreams(s);
  await load;
  const db = readDb((await restoreWithCli(replica.gcs, url)).dbPath);
  return {
    acked,
    writes: acked.products.size + acked.increments.length,
    missing: missingAcked(db, acked, 'durable'),
    integrity: db.integrity,
    restoredProducts: db.products.size,
  };
}
