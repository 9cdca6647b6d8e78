// Composition: start-up order (restore, writer and migrations, Litestream, readers, data file, listen) and the shutdown drain.
import fs from 'node:fs';
import type { us_listen_socket, us_socket } from 'uWebSockets.js';
import path from 'node:path';
import type { Config } from './shared/config.js';
import { Checkpointer } from './checkpointer/client.js';
import { DataFileWatcher } from './datafile/watcher.js';
import { mountRoutes, type AppState } from './http/app.js';
import type { Exchange, ExchangeHooks } from './http/exchange.js';
import { loadNativeUws, uwsBuild, type App } from './http/uws.js';
import { AppError } from './shared/errors.js';
import { createAccessLog, type Logger } from './shared/log.js';
import { depthSources, m } from './shared/metrics.js';
import { openReaders, type Readers } from './readers/pool.js';
import { LitestreamSupervisor } from './replication/index.js';
import { DurabilityGate } from './replication/durability-gate.js';
import { WriterClient } from './writer/client.js';

export interface Server {
  readonly port: number;
  readonly sqliteVersion: string;
  /** Drains and stops. Resolves with the list of steps that did not complete (empty = clean). */
  shutdown(reason: string): Promise<string[]>;
}

export async function startServer(config: Config, log: Logger, onFatal: (reason: string) => void): Promise<Server> {
  const uws = loadNativeUws(config.maxHeaderBytes);
  fs.mkdirSync(path.dirname(config.dbPath), { recursive: true });

  const state: AppState = { ready: false, draining: false, notReadyReason: 'starting' };
  const pending = new Set<Exchange>();
  const stalled = new Set<Exchange>();
  const lingering = new Set<Exchange>();
  depthSources.stalled = () => stalled.size;
  const hooks: ExchangeHooks = {
    draining: () => state.draining,
    pending,
    stalled,
    onInternalError: (err, route) => log.error({ err, route }, 'request failed with an internal error'),
    accessLog: createAccessLog(log, config.accessLog),
    lingering,
    linger: { ms: config.lingerTimeoutMs, bytes: config.lingerMaxBytes },
  };

  // With REPLICA_URL: restore a missing database before anything opens it; replicate once migrations ran.
  const replication = config.replication && new LitestreamSupervisor(config.replication, config.dbPath, log, config.logLevel);
  if (replication) {
    await replication.restoreIfNeeded();
    // Litestream down: refuse writes (503 replication_down) rather than take them unreplicated.
    replication.onDown = (reason) => {
      Object.assign(state, { writesRefused: reason, ready: false, notReadyReason: reason });
      m.ready.set(0);
    };
    replication.onUp = () => {
      Object.assign(state, { writesRefused: undefined, ready: !state.draining, notReadyReason: '' });
      m.ready.set(state.ready ? 1 : 0);
    };
  }

  // The writer opens the database and runs migrations before any reader opens it.
  // durability=replicated writes wait for a sync through the supervisor (one request in flight) after their commit.
  const gate = replication && new DurabilityGate((ms) => replication.sync({ timeoutMs: ms }), config.replication!.replicationTimeoutMs, log);
  const writer = new WriterClient(config, gate || null);
  const { sqliteVersion, userVersion } = await writer.ready;
  log.info({ dbPath: config.dbPath, sqliteVersion, schemaVersion: userVersion, synchronous: config.synchronous }, 'writer ready');
  log.info({ node: process.version, uws: uwsBuild(), sqliteVersion }, 'runtime');
  writer.onFatal = (reason) => {
    state.ready = false;
    state.notReadyReason = reason;
    m.ready.set(0);
    log.fatal({ reason }, 'writer failed');
    onFatal(reason);
  };

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

  const app = uws.App() as App;
  const routes = mountRoutes(app, { config, writer, readers, state, hooks });
  log.debug({ routes: routes.map(([method, pattern]) => `${method} ${pattern}`) }, 'routes registered');
  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) =>
    // Exclusive: a second server on the same port must fail, not share it through SO_REUSEPORT.
    app.listen(config.host, config.port, uws.LIBUS_LISTEN_EXCLUSIVE_PORT, (ls) =>
      ls ? resolve(ls) : reject(new Error(`cannot listen on ${config.host}:${config.port} (in use or not permitted)`)),
    ),
  );
  const port = uws.us_socket_local_port(listenSocket as unknown as us_socket);
  state.ready = true;
  state.notReadyReason = '';
  m.ready.set(1);
  if (state.writesRefused) replication?.onDown(state.writesRefused); // it died before we listened
  log.info({ host: config.host, port }, 'listening');
  dataFile?.start();

  // uWS's idle timeout does not cover a response we owe: answer anything pending for too long.
  const sweep = setInterval(
    () => {
      const cutoff = performance.now() - config.requestTimeoutMs;
      for (const ex of pending) {
        if (ex.start < cutoff) ex.error(new AppError('request_timeout', undefined, undefined, { 'Retry-After': '1' }));
      }
      // A client that stopped reading its response holds one response's memory: let it go after a while.
      const stallCutoff = performance.now() - config.slowClientTimeoutMs;
      for (const ex of stalled) {
        if (ex.stalledSince >= stallCutoff) continue;
        m.slowClientsClosed.inc();
        ex.closeStalled();
      }
    },
    Math.min(1000, Math.ceil(config.requestTimeoutMs / 4), Math.ceil(config.slowClientTimeoutMs / 4)),
  );
  sweep.unref();

  let shutdownPromise: Promise<string[]> | null = null;
  const shutdown = async (reason: string): Promise<string[]> => {
    const failed: string[] = [];
    const t0 = performance.now();
    log.info({ reason, inFlight: pending.size, writeQueue: writer.depth }, 'draining');
    state.draining = true;
    state.ready = false;
    m.ready.set(0);
    uws.us_listen_socket_close(listenSocket);
    // The sweep keeps running: the drain must not wait longer on anything than it would otherwise.
    dataFile?.stop();
    writer.stopAccepting();
    // A request still receiving its body can only end in 503 now (the writer takes nothing new), and its client may
    // never finish sending: answer it now (the rest of the body is discarded, then the connection closes) rather
    // than let the drain wait on it. Its body never reached the writer, so nothing of it was applied.
    for (const ex of pending) {
      if (ex.receiving) ex.error(new AppError('unavailable', 'server is shutting down; the request body was not read', undefined, { Connection: 'close' }));
    }

    // Replicated writes still waiting are confirmed by the gate's passes (Litestream still runs) or answered 504
    // within half the budget: the other half is for the final upload and closing.
    gate?.limit(Math.min(config.replication!.replicationTimeoutMs, config.shutdownTimeoutMs / 2));
    // In-flight requests get their answers (writes commit or fail explicitly).
    await Promise.all([writer.drained(), waitUntil(() => pending.size === 0)]);
    log.info({ ms: Math.round(performance.now() - t0) }, 'requests drained');

    try {
      await readers.close();
    } catch (err) {
      failed.push(`close readers: ${(err as Error).message}`);
    }
    if (replication) {
      // Everything is committed: Litestream uploads the rest, within what the shutdown budget leaves
      // (1 s kept for closing the writer and exiting before main.ts's deadline).
      const budgetMs = Math.min(config.replication!.stopTimeoutMs, config.shutdownTimeoutMs - (performance.now() - t0) - 1000);
      try {
        await replication.stop({ timeoutMs: budgetMs });
      } catch (err) {
        failed.push(`litestream: ${(err as Error).message}`);
      }
    }
    // Before the writer's final checkpoint, which would otherwise wait for a checkpoint of this thread's to end.
    await checkpointer?.close();
    try {
      // Without a replicator reading the WAL, fold it into the database so the file stands alone. With one, never:
      // Litestream owns checkpoints, and a TRUNCATE checkpoint would wait on its read transaction.
      const { checkpointed } = await writer.close({ checkpoint: !replication });
      log.info({ checkpointed }, 'writer closed');
    } catch (err) {
      failed.push(`close writer: ${(err as Error).message}`);
    }
    clearInterval(sweep);
    // Connections still discarding a refused body get their answer completed, then everything closes.
    for (const ex of lingering) ex.endLinger();
    // Idle keep-alive connections outlive the listen socket: close them.
    app.close();
    log.info({ ms: Math.round(performance.now() - t0), failed }, 'shutdown complete');
    return failed;
  };

  return {
    port,
    sqliteVersion,
    shutdown: (reason) => (shutdownPromise ??= shutdown(reason)),
  };
}

function waitUntil(cond: () => boolean, everyMs = 5): Promise<void> {
  return new Promise((resolve) => {
    if (cond()) return resolve();
    const t = setInterval(() => {
      if (cond()) {
        clearInterval(t);
        resolve();
      }
    }, everyMs);
  });
}
