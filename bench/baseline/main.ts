// The benchmark baseline: the common design this project replaces, with everything else held equal.
// Same HTTP layer (the server's own uWS routes, zod validation, error replies and metrics), same schema
// and SQL statements; only the storage design differs: BASELINE_THREADS (default 4) worker threads, each
// with its own read-write better-sqlite3 connection, every request its own transaction on the least busy
// one, busy_timeout, and a retry on SQLITE_BUSY. Reads go to the same threads (no separate reader pool).
//
// Env: the server's own (PORT, HOST, DB_PATH, SQLITE_SYNCHRONOUS, SQLITE_BUSY_TIMEOUT_MS, LOG_LEVEL, ...)
// plus BASELINE_THREADS and BASELINE_BUSY_RETRIES (default 5).
import { HttpEdge } from '../../src/http/server.js';
import { ServiceState } from '../../src/http/state.js';
import type { Readers } from '../../src/readers/pool.js';
import { loadConfig } from '../../src/shared/config.js';
import { toAppError } from '../../src/shared/errors.js';
import { MIGRATIONS } from '../../src/shared/db/migrations.js';
import { migrate, openWriter } from '../../src/shared/db/open.js';
import { createLogger } from '../../src/shared/log.js';
import type { WriterClient } from '../../src/writer/client.js';
import { DbThreads } from './pool.js';

const config = loadConfig();
const log = createLogger(config.logLevel);
const threads = Number(process.env.BASELINE_THREADS ?? 4);
const maxRetries = Number(process.env.BASELINE_BUSY_RETRIES ?? 5);
if (!Number.isInteger(threads) || threads < 1) throw new Error(`BASELINE_THREADS must be a positive integer`);

const http = new HttpEdge(config, log);

// Schema first, on a connection of its own, exactly as the server's writer does.
const setup = openWriter(config);
migrate(setup, MIGRATIONS);
setup.close();

const db = new DbThreads(config, threads, maxRetries);
await db.ready();

// The routes need only the writer's submit/submitWith and readers.run: the baseline provides those.
const writer = {
  submit: (op) => db.write(op),
  submitWith: (op, _durability, done) => db.write(op).then((r) => done(null, r), (err: unknown) => done(toAppError(err), null)),
} as Pick<WriterClient, 'submit' | 'submitWith'> as WriterClient;
const readers: Readers = {
  threads,
  run: (op) => db.read(op),
  get depth() {
    return db.depth;
  },
  close: () => db.close(),
};
const state = new ServiceState();
state.serve({ writer, readers });
state.markReady();
// The same HTTP edge as the server's, and its "listening" line (the harness reads the port from it).
await http.listen({ config, state });
log.info({ design: 'baseline', threads, synchronous: config.synchronous }, 'baseline ready');

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    http.stopAccepting();
    http.close();
    void db.close().finally(() => process.exit(0));
  });
}
