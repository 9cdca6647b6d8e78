// Before a term as the writer: bring the local database to the replica's state, and tell "there is no replica yet"
// (first deploy: start fresh) apart from "the replica cannot be read" (fail: never create an empty database where a
// replica may exist). A local database is kept only when the writer lease says nobody else wrote since it was last
// written here (the caller decides: `keepLocal`); otherwise the replica is the truth and is restored over it.
//
// How litestream 0.5.18 reports each case (verified against fake-gcs-server; see test/litestream-startup.test.ts):
//   replica has data      `restore -dry-run -json -o DB URL` exits 0 and prints the plan as JSON on stdout
//   no replica (empty)    exits 1, stderr "Error: no matching backup files available"
//                         (`restore -if-replica-exists` exits 0 with "no matching backups found" instead)
//   bucket missing        exits 1, "Error: created at: storage: bucket doesn't exist: googleapi: Error 404"
//   credentials refused   exits 1 at once, "Error: ...googleapi: Error 403: ... does not have storage.objects.list access"
//   no credentials        exits 1 at once, "failed to create GCS client (bucket: ...): ..."
//   unreachable           never exits: the GCS client retries a refused connection forever. Only a deadline
//                         (LITESTREAM_CONNECT_TIMEOUT_MS) tells this case apart.
// So restore runs in two steps: a dry run (LIST requests only) under the short connect deadline, then, only if a
// replica exists, the real restore under the long restore deadline.
import fs from 'node:fs';
import path from 'node:path';
import type { ReplicationConfig } from '../shared/config.js';
import type { Logger } from '../shared/log.js';
import { lastError, runLitestream } from './process-io.js';
import { txidHex } from './ltx.js';
import { stampOf, type FileStamp } from './resume-point.js';

export type RestoreOutcome =
  | { action: 'local'; ms: number; why: string }
  | { action: 'fresh'; ms: number }
  | { action: 'restored'; ms: number; txid: string; files: number; bytes: number; stamp: FileStamp };

export class ReplicaUnavailableError extends Error {
  override name = 'ReplicaUnavailableError';
}

export interface PrepareOptions {
  /** The lease says this file holds every write since the replica's last holder (it was us): no restore needed. */
  keepLocal: boolean;
  /** The previous holder released at this TXID (hex): a restore that ends before it is refused, never served. */
  atLeastTxid: string | null;
}

/** Litestream's local state for a database (LTX files not yet compacted, position): `<dir>/.<name>-litestream`. */
export function metaDir(dbPath: string): string {
  return path.join(path.dirname(dbPath), `.${path.basename(dbPath)}-litestream`);
}

interface DryRunPlan {
  max_txid?: string;
  files?: { size?: number }[];
}

export async function prepareDatabase(
  cfg: ReplicationConfig,
  dbPath: string,
  env: NodeJS.ProcessEnv,
  log: Logger,
  opts: PrepareOptions,
): Promise<RestoreOutcome> {
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  const hasLocal = fs.existsSync(dbPath);
  if (hasLocal && opts.keepLocal) {
    log.info({ dbPath }, 'local database exists: not restoring');
    return { action: 'local', ms: ms(), why: 'the lease was last held by this database' };
  }
  fs.mkdirSync(path.dirname(dbPath), { recursive: true });
  if (!hasLocal) {
    // Left over from a database that is gone: a WAL would be replayed onto the restored file by SQLite, and
    // Litestream's positions would be wrong for whatever comes next.
    for (const suffix of ['-wal', '-shm']) fs.rmSync(dbPath + suffix, { force: true });
    fs.rmSync(metaDir(dbPath), { recursive: true, force: true });
  }
  const url = cfg.replicaUrl;

  // Its one line of output is an error in both outcomes that matter ("no backups", "cannot read"): we log our reading of it.
  const plan = await runLitestream(cfg.bin, ['restore', '-dry-run', '-json', '-o', dbPath, url], env, cfg.connectTimeoutMs, log, {
    logStderr: false,
  });
  if (plan.timedOut) {
    throw new ReplicaUnavailableError(
      `replica ${url} did not answer within ${cfg.connectTimeoutMs} ms (LITESTREAM_CONNECT_TIMEOUT_MS): unreachable? ` +
        'Refusing to start with an empty database while a replica may exist.',
    );
  }
  if (plan.code !== 0) {
    if (/no matching backup files available/.test(plan.stderr)) {
      if (hasLocal) {
        // Nothing to restore, and the local file is the only copy there is: Litestream uploads it.
        log.warn({ dbPath, replicaUrl: url }, 'replica is empty: keeping the local database, which Litestream will upload');
        return { action: 'local', ms: ms(), why: 'the replica is empty' };
      }
      log.info({ replicaUrl: url, ms: ms() }, 'replica is empty: starting with a new database');
      return { action: 'fresh', ms: ms() };
    }
    throw new ReplicaUnavailableError(`cannot read replica ${url}: ${lastError(plan.stderr || plan.stdout)} (litestream restore exited ${plan.code ?? plan.signal})`);
  }
  let parsed: DryRunPlan = {};
  try {
    parsed = JSON.parse(plan.stdout) as DryRunPlan;
  } catch {
    throw new ReplicaUnavailableError(`unexpected output from litestream restore -dry-run: ${plan.stdout.slice(0, 300)}`);
  }
  const files = parsed.files?.length ?? 0;
  const bytes = (parsed.files ?? []).reduce((n, f) => n + (f.size ?? 0), 0);
  if (opts.atLeastTxid && parseInt(parsed.max_txid ?? '0', 16) < parseInt(opts.atLeastTxid, 16)) {
    throw new ReplicaUnavailableError(
      `the replica ends at TXID ${parsed.max_txid}, before ${opts.atLeastTxid} where the previous writer released it: refusing to write from behind`,
    );
  }
  if (hasLocal) setAside(dbPath, log);
  log.info({ replicaUrl: url, txid: parsed.max_txid, files, bytes }, 'restoring the database from the replica');

  const txid = (await restoreReplica(cfg, url, dbPath, env, log)) ?? parsed.max_txid ?? '';
  if (opts.atLeastTxid && parseInt(txid || '0', 16) < parseInt(opts.atLeastTxid, 16)) {
    fs.rmSync(dbPath, { force: true });
    throw new ReplicaUnavailableError(`the restore ended at TXID ${txid}, before ${opts.atLeastTxid} where the previous writer released it: refusing to write from behind`);
  }
  // Taken before anything else opens the file: the resume point (resume-point.ts) is sound only if it is unchanged.
  const stamp = stampOf(dbPath);
  log.info({ replicaUrl: url, txid, files, bytes, ms: ms() }, 'database restored from the replica');
  return { action: 'restored', ms: ms(), txid, files, bytes, stamp };
}

/**
 * `litestream restore` of the whole replica into `outPath` (the writer's cold start, a follower's copy), under
 * LITESTREAM_RESTORE_TIMEOUT_MS. Returns the TXID it restored to (hex; null if its output did not say), or throws
 * ReplicaUnavailableError with Litestream's reason. No -if-replica-exists: a replica that was there a moment ago and
 * is gone now is an error, not a fresh start.
 */
export async function restoreReplica(
  cfg: Pick<ReplicationConfig, 'bin' | 'restoreTimeoutMs'>,
  url: string,
  outPath: string,
  env: NodeJS.ProcessEnv,
  log: Logger,
): Promise<string | null> {
  const r = await runLitestream(cfg.bin, ['restore', '-json', '-integrity-check', 'quick', '-o', outPath, url], env, cfg.restoreTimeoutMs, log);
  if (r.timedOut || r.code !== 0 || !fs.existsSync(outPath)) {
    // Litestream writes <db>.tmp and renames it at the end; a killed restore leaves only the .tmp behind.
    fs.rmSync(`${outPath}.tmp`, { force: true });
    const why = r.timedOut ? `did not finish within ${cfg.restoreTimeoutMs} ms (LITESTREAM_RESTORE_TIMEOUT_MS)` : lastError(r.stderr || r.stdout);
    throw new ReplicaUnavailableError(`restore from ${url} failed: ${why}`);
  }
  try {
    return (JSON.parse(r.stdout) as { txid?: string }).txid ?? null;
  } catch {
    return null;
  }
}

/**
 * The newest level-0 TXID in the replica (hex), from `litestream ltx -level 0 -json URL` (one LIST request), or null
 * if it cannot be read. Litestream's replicate uploads local L0 files from the replica's newest L0 TXID + 1 on.
 */
export async function replicaL0MaxTxid(cfg: ReplicationConfig, env: NodeJS.ProcessEnv, log: Logger): Promise<string | null> {
  const r = await runLitestream(cfg.bin, ['ltx', '-level', '0', '-json', cfg.replicaUrl], env, cfg.connectTimeoutMs, log, { logStderr: false });
  if (r.timedOut || r.code !== 0) return null;
  try {
    const files = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as { max_txid?: string }[];
    let max: bigint | null = null;
    for (const f of files) {
      if (!/^[0-9a-f]{1,16}$/.test(f.max_txid ?? '')) return null;
      const v = BigInt(`0x${f.max_txid}`);
      if (max === null || v > max) max = v;
    }
    return max === null ? null : txidHex(max);
  } catch {
    return null;
  }
}

/**
 * A local database the replica supersedes: moved aside (one copy kept, `<db>.before-restore`), never deleted, since it
 * may hold writes that never reached the replica. Its WAL goes with it; Litestream's local state is dropped.
 */
function setAside(dbPath: string, log: Logger): void {
  const aside = `${dbPath}.before-restore`;
  for (const suffix of ['', '-wal', '-shm']) {
    fs.rmSync(aside + suffix, { force: true });
    if (fs.existsSync(dbPath + suffix)) fs.renameSync(dbPath + suffix, aside + suffix);
  }
  fs.rmSync(metaDir(dbPath), { recursive: true, force: true });
  log.warn({ dbPath, movedTo: aside }, 'local database is not known to be current: moved aside, restoring the replica');
}

/**
 * Which lease epoch last wrote the local database, kept beside it (`<dir>/.<name>-lease.json`): a local file is
 * current only if the lease's previous holder was this same epoch (nobody else has written since).
 */
function markerPath(dbPath: string): string {
  return path.join(path.dirname(dbPath), `.${path.basename(dbPath)}-lease.json`);
}

export function localIsCurrent(dbPath: string, replicaUrl: string, previousEpoch: number | null): boolean {
  if (previousEpoch === null || !fs.existsSync(dbPath)) return false;
  try {
    const m = JSON.parse(fs.readFileSync(markerPath(dbPath), 'utf8')) as { replicaUrl?: string; epoch?: number };
    return m.replicaUrl === replicaUrl && m.epoch === previousEpoch;
  } catch {
    return false;
  }
}

/** Before the first write of a term: this epoch is now the one writing the local database. */
export function markLocalEpoch(dbPath: string, replicaUrl: string, epoch: number): void {
  const tmp = `${markerPath(dbPath)}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ replicaUrl, epoch }));
  fs.renameSync(tmp, markerPath(dbPath));
}
