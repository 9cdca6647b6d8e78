// Start-up restore: when the local database is missing, bring it back from the replica, and tell "there is no
// replica yet" (first deploy: start fresh) apart from "the replica cannot be read" (fail: never create an empty
// database where a replica may exist).
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

export type RestoreOutcome =
  | { action: 'local'; ms: number }
  | { action: 'fresh'; ms: number }
  | { action: 'restored'; ms: number; txid: string; files: number; bytes: number };

export class ReplicaUnavailableError extends Error {
  override name = 'ReplicaUnavailableError';
}

/** Litestream's local state for a database (LTX files not yet compacted, position): `<dir>/.<name>-litestream`. */
export function metaDir(dbPath: string): string {
  return path.join(path.dirname(dbPath), `.${path.basename(dbPath)}-litestream`);
}

interface DryRunPlan {
  max_txid?: string;
  files?: { size?: number }[];
}

export async function restoreIfNeeded(cfg: ReplicationConfig, dbPath: string, env: NodeJS.ProcessEnv, log: Logger): Promise<RestoreOutcome> {
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  if (fs.existsSync(dbPath)) {
    log.info({ dbPath }, 'local database exists: not restoring');
    return { action: 'local', ms: ms() };
  }
  fs.mkdirSync(path.dirname(dbPath), { recursive: true });
  // Left over from a database that is gone: its positions would be wrong for whatever comes next.
  fs.rmSync(metaDir(dbPath), { recursive: true, force: true });
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
  log.info({ replicaUrl: url, txid: parsed.max_txid, files, bytes }, 'restoring the database from the replica');

  // No -if-replica-exists here: a replica that was there a moment ago and is gone now is an error, not a fresh start.
  const r = await runLitestream(cfg.bin, ['restore', '-json', '-integrity-check', 'quick', '-o', dbPath, url], env, cfg.restoreTimeoutMs, log);
  if (r.timedOut || r.code !== 0 || !fs.existsSync(dbPath)) {
    // Litestream writes <db>.tmp and renames it at the end; a killed restore leaves only the .tmp behind.
    fs.rmSync(`${dbPath}.tmp`, { force: true });
    const why = r.timedOut ? `did not finish within ${cfg.restoreTimeoutMs} ms (LITESTREAM_RESTORE_TIMEOUT_MS)` : lastError(r.stderr || r.stdout);
    throw new ReplicaUnavailableError(`restore from ${url} failed: ${why}`);
  }
  let txid = parsed.max_txid ?? '';
  try {
    txid = (JSON.parse(r.stdout) as { txid?: string }).txid ?? txid;
  } catch {
    // the plan's txid stands
  }
  log.info({ replicaUrl: url, txid, files, bytes, ms: ms() }, 'database restored from the replica');
  return { action: 'restored', ms: ms(), txid, files, bytes };
}
