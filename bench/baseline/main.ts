// The benchmark baseline: the common design this project replaces, with everything else held equal.
// Same HTTP layer (the server's own uWS routes, zod validation, error replies and metrics), same schema
// and SQL statements; only the storage design differs: BASELINE_THREADS (default 4) worker threads, each
// with its own read-write better-sqlite3 connection, every request its own transaction on the least busy
// one, busy_timeout, and a retry on SQLITE_BUSY. Reads go to the same threads (no separate reader pool).
//
// Env: the server's own (PORT, HOST, DB_PATH, SQLITE_SYNCHRONOUS, SQLITE_BUSY_TIMEOUT_MS, LOG_LEVEL, ...)
// plus BASELINE_THREADS and BASELINE_BUSY_RETRIES (default 5).
import type { us_listen_socket, us_socket } from 'uWebSockets.js';
import { loadConfig } from '../../src/shared/config.js';
import { MIGRATIONS } from '../../src/shared/db/migrations.js';
import { migrate, openWriter } from '../../src/shared/db/open.js';
import { mountRoutes, type AppState } from '../../src/http/app.js';
import type { Exchange, ExchangeHooks } from '../../src/http/exchange.js';
import { loadNativeUws, type App } from '../../src/http/uws.js';
import { createAccessLog, createLogger } from '../../src/shared/log.js';
import type { Readers } from '../../src/readers/pool.js';
import type { WriterClient } from '../../src/writer/client.js';
import { DbThreads } from './pool.js';

const config = loadConfig();
const log = createLogger(config.logLevel);
const threads = Number(process.env.BASELINE_THREADS ?? 4);
const maxRetries = Number(process.env.BASELINE_BUSY_RETRIES ?? 5);
if (!Number.isInteger(threads) || threads < 1) throw new Error(`BASELINE_THREADS must be a positive integer`);

const uws = loadNativeUws(config.maxHeaderBytes);

// Schema first, on a connection of its own, exactly as the server's writer does.
const setup = openWriter(config);
migrate(setup, MIGRATIONS);
setup.close();

const db = new DbThreads(config, threads, maxRetries);
await db.ready();

// mountRoutes needs only writer.submit and readers.run: the baseline provides those two.
const writer = { submit: (op) => db.write(op) } as Pick<WriterClient, 'submit'> as WriterClient;
const readers: Readers = {
  threads,
  run: (op) => db.read(op),
  get depth() {
    return db.depth;
  },
  close: () => db.close(),
};
const state: AppState = { ready: true, draining: false, notReadyReason: '' };
const hooks: ExchangeHooks = {
  draining: () => false,
  pending: new Set<Exchange>(),
  stalled: new Set<Exchange>(),
  onInternalError: (err, route) => log.error({ err, route }, 'request failed with an internal error'),
  accessLog: createAccessLog(log, config.accessLog),
  lingering: new Set<Exchange>(),
  linger: { ms: config.lingerTimeoutMs, bytes: config.lingerMaxBytes },
};

const app = uws.App() as App;
mountRoutes(app, { config, writer, readers, state, hooks });
const listenSocket = await new Promise<us_listen_socket>((resolve, reject) =>
  app.listen(config.host, config.port, uws.LIBUS_LISTEN_EXCLUSIVE_PORT, (ls) =>
    ls ? resolve(ls) : reject(new Error(`cannot listen on ${config.host}:${config.port}`)),
  ),
);
const port = uws.us_socket_local_port(listenSocket as unknown as us_socket);
// Same log line as the server (the harness reads the port from it).
log.info({ design: 'baseline', threads, synchronous: config.synchronous, host: config.host, port }, 'listening');

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    uws.us_listen_socket_close(listenSocket);
    app.close();
    void db.close().finally(() => process.exit(0));
  });
}
