// Baseline database thread: its own read-write connection (WAL, busy_timeout), and every request it gets
// runs as its own transaction, retried on SQLITE_BUSY/LOCKED the way the example apps retry "database is
// locked". This is the design the server replaces; it is built here as well as it is usually built.
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../../src/shared/config.js';
import { openWriter } from '../../src/shared/db/open.js';
import { AppError, isBusy, toAppError } from '../../src/shared/errors.js';
import type { WriteAnswer, WriteOp } from '../../src/shared/protocol.js';
import { prepareQueries } from '../../src/readers/queries.js';
import { prepareCommands } from '../../src/writer/commands.js';
import type { Job, JobDone } from './protocol.js';

const { config, maxRetries } = workerData as { config: Config; maxRetries: number };

// Same pragmas as the server's writer connection: WAL, SQLITE_SYNCHRONOUS, busy_timeout, cache size.
const db = openWriter(config);
const exec = prepareCommands(db);
const read = prepareQueries(db);
// BEGIN IMMEDIATE: the write lock is taken up front and waited for by busy_timeout, so a transaction never
// fails half-way on a read-to-write upgrade (the usual cause of "database is locked" with plain BEGIN).
const transaction = db.transaction((op: WriteOp) => exec(op, new Date().toISOString()));
/** The answer as the server's writer hands it to the HTTP layer: the body as UTF-8 bytes. */
const write = (op: WriteOp): WriteAnswer => {
  const r = transaction.immediate(op);
  return { body: r.body === null ? null : Buffer.from(r.body), id: r.id, position: 0 };
};

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms: number) => Atomics.wait(sleeper, 0, 0, ms);

function run(job: Job): JobDone {
  let busy = 0;
  for (;;) {
    try {
      const ok = job.kind === 'write' ? write(job.op) : read(job.op);
      return { id: job.id, ok, busy };
    } catch (err) {
      if (isBusy(err)) {
        busy++;
        if (busy <= maxRetries) {
          // busy_timeout already waited; back off with jitter and try the whole transaction again.
          sleep(Math.min(10 * 2 ** (busy - 1), 200) * (0.5 + Math.random()));
          continue;
        }
        const e = new AppError('unavailable', 'database is locked, retry later', undefined, { 'Retry-After': '1' });
        return { id: job.id, err: e.toWire(), busy, busyFailed: true };
      }
      return { id: job.id, err: toAppError(err).toWire(), busy, busyFailed: false };
    }
  }
}

parentPort!.on('message', (job: Job) => parentPort!.postMessage(run(job)));
