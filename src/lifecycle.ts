// The composition root: the start-up order and the shutdown order, each step a function of the module that owns it.
//   start:    load uWS -> [REPLICA_URL: the writer lease; held by another instance: standby, listen at once]
//             -> restore unless current -> open + migrate (writer) -> replicate -> checkpointer + readers
//             -> apply DATA_FILE -> listen -> ready                      (terms: src/leadership.ts)
//   shutdown: stop accepting -> drain answers -> close readers -> final upload, stop Litestream, release the lease
//             -> stop the checkpointer -> close the writer (its final checkpoint) -> close connections
import fs from 'node:fs';
import path from 'node:path';
import { DataFileWatcher } from './datafile/watcher.js';
import { Follower } from './follower/follower.js';
import { WriterForwarder } from './follower/forward.js';
import { HttpEdge } from './http/server.js';
import { ServiceState } from './http/state.js';
import { Leadership, openTerm, type Term } from './leadership.js';
import { LitestreamSupervisor } from './replication/index.js';
import { openReaders } from './readers/pool.js';
import type { Config, FollowerConfig } from './shared/config.js';
import { m } from './shared/metrics.js';
import { AppError } from './shared/errors.js';
import type { Logger } from './shared/log.js';

export interface Server {
  readonly port: number;
  /** Null while a standby has not led yet. */
  readonly sqliteVersion: string | null;
  /** Drains and stops. Resolves with the list of steps that did not complete (empty = clean). */
  shutdown(reason: string): Promise<string[]>;
}

export async function start(config: Config, log: Logger, onFatal: (reason: string) => void): Promise<Server> {
  const http = new HttpEdge(config, log);
  const state = new ServiceState();
  fs.mkdirSync(path.dirname(config.dbPath), { recursive: true });
  if (config.follower) return startFollower(config, config.follower, log, http, state);
  const fatal = (reason: string) => {
    state.markNotReady(reason);
    onFatal(reason);
  };

  // With a replica, terms come and go with the writer lease; without one, a single term for the process's life.
  let leadership: Leadership | null = null;
  let localTerm: Term | null = null;
  if (config.replication?.replicaUrl.startsWith('gs://')) {
    leadership = new Leadership(config, log, state, fatal);
    await leadership.start();
  } else {
    // No replica, or a file:// one (local development): no lease, one writer by configuration.
    const supervisor = config.replication && new LitestreamSupervisor(config.replication, config.dbPath, log, config.logLevel);
    if (supervisor) {
      log.warn({ replicaUrl: config.replication!.replicaUrl }, 'file:// replica: no writer lease (gs:// only); run one server per replica directory');
      await supervisor.prepareDatabase({ keepLocal: true, atLeastTxid: null });
    }
    localTerm = await openTerm(config, log, { supervisor, fence: null, state, onFatal: fatal });
    state.serve({ writer: localTerm.writer, readers: localTerm.readers });
  }
  const currentTerm = () => leadership?.term ?? localTerm;

  // DATA_FILE: applied (or found already applied) before the first request, then watched for changes. Only the
  // leader applies it (a standby's submit is refused, and the next poll tries again).
  const writer = {
    submit: (...args: Parameters<Term['writer']['submit']>) =>
      state.backend?.writer ? state.backend.writer.submit(...args) : Promise.reject(new AppError('not_leader')),
  };
  const dataFile =
    config.dataFile === null
      ? null
      : new DataFileWatcher({
          file: config.dataFile,
          pollMs: config.dataFilePollMs,
          writer,
          log,
          writesRefused: () => state.writesRefused ?? (state.backend ? undefined : 'this instance is not the writer (standby)'),
        });
  if (state.backend) await dataFile?.check();
  // A standby that comes to lead applies it then (the poll only reacts to changes of the file).
  if (leadership && dataFile) leadership.onTermStarted = () => void dataFile.check();

  const port = await http.listen({ config, state });
  state.markReady();
  dataFile?.start();

  let shutdownPromise: Promise<string[]> | null = null;
  const shutdown = async (reason: string): Promise<string[]> => {
    const failed: string[] = [];
    const step = shutdownStep(failed);
    const t0 = performance.now();
    const term = currentTerm();
    log.info({ reason, inFlight: http.inFlight, writeQueue: term?.writer.depth ?? 0, role: state.role }, 'draining');
    state.startDraining();
    dataFile?.stop();
    term?.writer.stopAccepting();
    http.stopAccepting();
    // Replicated writes still waiting are confirmed by the gate's passes (Litestream still runs) or answered 504
    // within half the budget: the other half is for the final upload and closing.
    term?.gate?.limit(Math.min(config.replication!.replicationTimeoutMs, config.shutdownTimeoutMs / 2));
    // In-flight requests get their answers (writes commit or fail explicitly).
    await Promise.all([term?.writer.drained(), http.drained()]);
    log.info({ ms: Math.round(performance.now() - t0) }, 'requests drained');

    if (term) await step('close readers', () => term.readers.close());
    // Everything is committed: Litestream uploads the rest (then, with a lease, it is released with the replica's
    // TXID), within what the shutdown budget leaves (1 s kept for closing the writer and exiting before main.ts's deadline).
    const budgetMs = () => Math.min(config.replication!.stopTimeoutMs, config.shutdownTimeoutMs - (performance.now() - t0) - 1000);
    if (leadership) await step('litestream', () => leadership.handover(budgetMs()));
    else if (term?.supervisor) await step('litestream', () => term.supervisor!.stop({ timeoutMs: budgetMs() }));
    // Before the writer's final checkpoint, which would otherwise wait for a checkpoint of this thread's to end.
    await term?.checkpointer?.close();
    // Without a replicator reading the WAL, fold it into the database so the file stands alone. With one, never:
    // Litestream owns checkpoints, and a TRUNCATE checkpoint would wait on its read transaction.
    if (term) {
      await step('close writer', async () => {
        const { checkpointed } = await term.writer.close({ checkpoint: !term.supervisor });
        log.info({ checkpointed }, 'writer closed');
      });
    }
    http.close();
    log.info({ ms: Math.round(performance.now() - t0), failed }, 'shutdown complete');
    return failed;
  };

  return { port, sqliteVersion: currentTerm()?.sqliteVersion ?? null, shutdown: (reason) => (shutdownPromise ??= shutdown(reason)) };
}

/**
 * ROLE=follower (docs/followers.md): restore or resume the copy and follow the replica -> readers -> listen. Ready
 * while the copy was confirmed current within FOLLOWER_MAX_LAG_MS.
 *   shutdown: stop accepting -> drain answers -> close readers -> stop following -> close the writer connections.
 */
async function startFollower(config: Config, cfg: FollowerConfig, log: Logger, http: HttpEdge, state: ServiceState): Promise<Server> {
  const follower = new Follower(cfg, config.dbPath, log.child({ component: 'follower' }));
  await follower.start();
  const readers = await openReaders(config);
  const forwarder = new WriterForwarder({
    writerUrl: cfg.writerUrl,
    timeoutMs: cfg.forwardTimeoutMs,
    connections: cfg.forwardConnections,
    audience: cfg.writerAudience ?? undefined,
  });
  state.serve({ writer: null, readers });
  const edge = { follower, forwarder, waitMs: cfg.waitMs, maxLagMs: cfg.maxLagMs, maxBodyBytes: config.maxBodyBytes, log };
  const port = await http.listen({ config, state, follower: edge });
  // Ready while the copy is known to be current: a follower that cannot reach the bucket, or is stuck, turns 503 and
  // Cloud Run routes around it. The writer being idle or scaled to zero does not make it stale.
  let stale = false;
  const check = () => {
    const now = follower.ageMs() > cfg.maxLagMs;
    if (now === stale || state.draining) return;
    stale = now;
    if (stale) {
      m.followerStale.inc();
      state.markNotReady(`the copy was last confirmed current ${Math.round(follower.ageMs())} ms ago (FOLLOWER_MAX_LAG_MS ${cfg.maxLagMs})`);
      log.warn({ ageMs: Math.round(follower.ageMs()), position: follower.position }, 'follower: copy not confirmed current: not ready');
    } else {
      state.markReady();
      log.info({ position: follower.position }, 'follower: copy current again: ready');
    }
  };
  const lagTimer = setInterval(check, Math.min(1000, Math.ceil(cfg.maxLagMs / 4)));
  lagTimer.unref();
  state.markReady();
  log.info({ writerUrl: cfg.writerUrl, position: follower.position }, 'follower: serving reads; writes go to the writer');

  let shutdownPromise: Promise<string[]> | null = null;
  const shutdown = async (reason: string): Promise<string[]> => {
    const failed: string[] = [];
    const step = shutdownStep(failed);
    const t0 = performance.now();
    log.info({ reason, inFlight: http.inFlight, role: 'follower' }, 'draining');
    clearInterval(lagTimer);
    state.startDraining();
    http.stopAccepting();
    await http.drained();
    await step('close readers', () => readers.close());
    await step('stop following', () => follower.stop());
    await step('close writer connections', () => forwarder.close());
    http.close();
    log.info({ ms: Math.round(performance.now() - t0), failed }, 'shutdown complete');
    return failed;
  };
  return { port, sqliteVersion: null, shutdown: (reason) => (shutdownPromise ??= shutdown(reason)) };
}

/** A shutdown step: run it, and if it fails, record `name: why` in `failed` and go on with the next one. */
function shutdownStep(failed: string[]): (name: string, run: () => Promise<unknown>) => Promise<void> {
  return async (name, run) => {
    try {
      await run();
    } catch (err) {
      failed.push(`${name}: ${(err as Error).message}`);
    }
  };
}
