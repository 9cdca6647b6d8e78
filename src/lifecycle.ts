// The composition root: the start-up order and the shutdown order, each step a function of the module that owns it.
//   start:    load uWS -> restore (REPLICA_URL) -> open + migrate (writer) -> replicate -> checkpointer + readers
//             -> apply DATA_FILE -> listen -> ready
//   shutdown: stop accepting -> drain answers -> close readers -> final upload, stop Litestream -> stop the
//             checkpointer -> close the writer (its final checkpoint) -> close connections
import fs from 'node:fs';
import path from 'node:path';
import { Checkpointer } from './checkpointer/client.js';
import { DataFileWatcher } from './datafile/watcher.js';
import { HttpEdge } from './http/server.js';
import { ServiceState } from './http/state.js';
import { uwsBuild } from './http/uws.js';
import { openReaders, type Readers } from './readers/pool.js';
import { LitestreamSupervisor } from './replication/index.js';
import { DurabilityGate } from './replication/durability-gate.js';
import type { Config } from './shared/config.js';
import type { Logger } from './shared/log.js';
import { WriterClient } from './writer/client.js';

export interface Server {
  readonly port: number;
  readonly sqliteVersion: string;
  /** Drains and stops. Resolves with the list of steps that did not complete (empty = clean). */
  shutdown(reason: string): Promise<string[]>;
}

export async function start(config: Config, log: Logger, onFatal: (reason: string) => void): Promise<Server> {
  const http = new HttpEdge(config, log);
  const state = new ServiceState();
  fs.mkdirSync(path.dirname(config.dbPath), { recursive: true });

  const replication = config.replication && new LitestreamSupervisor(config.replication, config.dbPath, log, config.logLevel);
  if (replication) {
    await replication.restoreIfNeeded();
    replication.onDown = (reason) => state.refuseWrites(reason);
    replication.onUp = () => state.resumeWrites();
  }

  // durability=replicated writes wait, after their commit, for a sync through the supervisor (one in flight).
  const gate = replication && new DurabilityGate((ms) => replication.sync({ timeoutMs: ms }), config.replication!.replicationTimeoutMs, log);
  const { writer, sqliteVersion } = await openWriter(config, log, gate || null, (reason) => {
    state.markNotReady(reason);
    onFatal(reason);
  });

  let readers: Readers;
  let checkpointer: Checkpointer | null = null;
  try {
    await replication?.start();
    checkpointer = await Checkpointer.start(config, log);
    readers = await openReaders(config);
  } catch (err) {
    await checkpointer?.close().catch(() => {});
    await replication?.stop({ timeoutMs: 2000 }).catch(() => {});
    await writer.close({ checkpoint: false }).catch(() => {});
    throw err;
  }
  log.info({ readers: readers.threads, mode: readers.threads === 0 ? 'inline' : 'pool' }, 'readers ready');

  // DATA_FILE: applied (or found already applied) before the first request, then watched for changes.
  const dataFile =
    config.dataFile === null
      ? null
      : new DataFileWatcher({ file: config.dataFile, pollMs: config.dataFilePollMs, writer, log, writesRefused: () => state.writesRefused });
  await dataFile?.check();

  const port = await http.listen({ config, writer, readers, state });
  state.markReady();
  dataFile?.start();

  let shutdownPromise: Promise<string[]> | null = null;
  const shutdown = async (reason: string): Promise<string[]> => {
    const failed: string[] = [];
    const step = async (name: string, run: () => Promise<unknown>) => {
      try {
        await run();
      } catch (err) {
        failed.push(`${name}: ${(err as Error).message}`);
      }
    };
    const t0 = performance.now();
    log.info({ reason, inFlight: http.inFlight, writeQueue: writer.depth }, 'draining');
    state.startDraining();
    dataFile?.stop();
    writer.stopAccepting();
    http.stopAccepting();
    // Replicated writes still waiting are confirmed by the gate's passes (Litestream still runs) or answered 504
    // within half the budget: the other half is for the final upload and closing.
    gate?.limit(Math.min(config.replication!.replicationTimeoutMs, config.shutdownTimeoutMs / 2));
    // In-flight requests get their answers (writes commit or fail explicitly).
    await Promise.all([writer.drained(), http.drained()]);
    log.info({ ms: Math.round(performance.now() - t0) }, 'requests drained');

    await step('close readers', () => readers.close());
    if (replication) {
      // Everything is committed: Litestream uploads the rest, within what the shutdown budget leaves
      // (1 s kept for closing the writer and exiting before main.ts's deadline).
      const budgetMs = Math.min(config.replication!.stopTimeoutMs, config.shutdownTimeoutMs - (performance.now() - t0) - 1000);
      await step('litestream', () => replication.stop({ timeoutMs: budgetMs }));
    }
    // Before the writer's final checkpoint, which would otherwise wait for a checkpoint of this thread's to end.
    await checkpointer?.close();
    // Without a replicator reading the WAL, fold it into the database so the file stands alone. With one, never:
    // Litestream owns checkpoints, and a TRUNCATE checkpoint would wait on its read transaction.
    await step('close writer', async () => {
      const { checkpointed } = await writer.close({ checkpoint: !replication });
      log.info({ checkpointed }, 'writer closed');
    });
    http.close();
    log.info({ ms: Math.round(performance.now() - t0), failed }, 'shutdown complete');
    return failed;
  };

  return { port, sqliteVersion, shutdown: (reason) => (shutdownPromise ??= shutdown(reason)) };
}

/** The writer thread opens the database and runs migrations before any reader opens it. */
async function openWriter(
  config: Config,
  log: Logger,
  gate: DurabilityGate | null,
  onFatal: (reason: string) => void,
): Promise<{ writer: WriterClient; sqliteVersion: string }> {
  const writer = new WriterClient(config, gate);
  const { sqliteVersion, userVersion } = await writer.ready;
  log.info({ dbPath: config.dbPath, sqliteVersion, schemaVersion: userVersion, synchronous: config.synchronous }, 'writer ready');
  log.info({ node: process.version, uws: uwsBuild(), sqliteVersion }, 'runtime');
  writer.onFatal = (reason) => {
    log.fatal({ reason }, 'writer failed');
    onFatal(reason);
  };
  return { writer, sqliteVersion };
}
