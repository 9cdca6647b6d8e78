// Writer thread entry: owns the only read-write connection. Each turn it takes everything waiting on its
// port (up to WRITE_BATCH_MAX commands), commits it as one transaction, then posts the results.
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { Config } from '../shared/config.js';
import { MIGRATIONS } from '../shared/db/migrations.js';
import { assertSqliteVersion, migrate, openWriter } from '../shared/db/open.js';
import { AppError, batchFailureCode, isBusy, type ErrorCode } from '../shared/errors.js';
import { Fence, type FenceBuffer } from '../shared/fence.js';
import { createLogger } from '../shared/log.js';
import { threadId } from '../shared/thread-id.js';
import { pack, unpack, type CommittedMsg, type FromWriter, type ToWriter, type WriteOp } from '../shared/protocol.js';
import { createBatchRunner, Fenced, sleepSync } from './batch.js';
import { prepareCommands } from './commands.js';
import { prepareIdempotency } from './idempotency.js';

interface WriterData {
  config: Config;
  port: MessagePort;
  /** The writer lease's fence (REPLICA_URL), checked before every COMMIT; null: never fenced. */
  fence: FenceBuffer;
}

const { config, port, fence: fenceBuffer } = workerData as WriterData;
const fence = fenceBuffer ? new Fence(fenceBuffer) : null;
const log = createLogger(config.logLevel).child({ thread: 'writer' });

function post(msg: FromWriter): void {
  const bytes = pack(msg);
  port.postMessage(bytes, [bytes.buffer as ArrayBuffer]);
}

function fatal(err: unknown): never {
  const e = err instanceof Error ? err : new Error(String(err));
  post({ t: 'fatal', message: e.message, stack: e.stack });
  // Give the message a moment to leave, then die: the main thread fails everything pending.
  setTimeout(() => process.exit(1), 50);
  throw e;
}

let db: ReturnType<typeof openWriter>;
let runner: ReturnType<typeof createBatchRunner>;
try {
  db = openWriter(config);
  const sqliteVersion = assertSqliteVersion(db);
  const userVersion = migrate(db, MIGRATIONS);
  const idempotency = prepareIdempotency(db, config.idempotencyTtlS);
  runner = createBatchRunner(db, prepareCommands(db), {
    idempotency,
    onInternalError: (err, op) => log.error({ err, op: op.op }, 'write command failed with an internal error'),
    mayCommit: fence ? () => fence.valid() : undefined,
  });
  post({ t: 'ready', sqliteVersion, userVersion, tid: threadId() });
  // Expired Idempotency-Keys are ignored on lookup at once and deleted here, between batches, once a minute.
  setInterval(() => {
    // A writer whose lease ran out writes nothing, not even this.
    if (fence && !fence.valid()) return;
    try {
      const expired = idempotency.sweep(Date.now());
      if (expired > 0) log.debug({ expired }, 'idempotency keys expired');
    } catch (err) {
      // Busy (another process holds the lock): the next sweep gets them.
      if (!isBusy(err)) log.error({ err }, 'idempotency sweep failed');
    }
  }, 60_000).unref();
} catch (err) {
  fatal(err);
}

/** Commands taken off the port but not yet run (a message can carry more than one batch's worth). */
let pendingIds: number[] = [];
let pendingOps: WriteOp[] = [];
let closeRequested: { checkpoint: boolean } | null = null;

function take(msg: ToWriter): void {
  if (msg.t === 'write') {
    for (let i = 0; i < msg.ids.length; i++) {
      pendingIds.push(msg.ids[i]!);
      pendingOps.push(msg.ops[i]!);
    }
  } else {
    closeRequested = { checkpoint: msg.checkpoint };
  }
}

/** Pulls every message already queued on the port without yielding to the event loop. */
function drainPort(): void {
  while (pendingIds.length < config.writeBatchMax && closeRequested === null) {
    const m = receiveMessageOnPort(port);
    if (!m) return;
    take(unpack<ToWriter>(m.message as Uint8Array));
  }
}

function runBatches(): void {
  drainPort();
  if (config.writeBatchWaitMs > 0 && pendingIds.length > 0 && pendingIds.length < config.writeBatchMax) {
    sleepSync(config.writeBatchWaitMs);
    drainPort();
  }
  while (pendingIds.length > 0) {
    const n = Math.min(pendingIds.length, config.writeBatchMax);
    const ids = pendingIds.slice(0, n);
    const ops = pendingOps.slice(0, n);
    pendingIds = pendingIds.slice(n);
    pendingOps = pendingOps.slice(n);
    if (config.testWriterDelayMs > 0) sleepSync(config.testWriterDelayMs);
    post(commitBatch(ids, ops));
    drainPort();
  }
  if (closeRequested) close(closeRequested.checkpoint);
}

/** One batch as one transaction: its results, or every command failed with why none of it committed. */
function commitBatch(ids: number[], ops: WriteOp[]): CommittedMsg {
  const failAll = (code: ErrorCode): CommittedMsg => {
    const e = new AppError(code).toWire();
    return { t: 'committed', ids, results: ids.map(() => ({ err: e })), commitMs: 0, busyRetries: 0 };
  };
  try {
    const r = runner.run(ops);
    fence?.recordCommit();
    log.debug({ commands: ids.length, commitMs: Math.round(r.commitMs * 1000) / 1000, busyRetries: r.busyRetries }, 'batch committed');
    return { t: 'committed', ids, results: r.results, commitMs: r.commitMs, busyRetries: r.busyRetries };
  } catch (err) {
    if (err instanceof Fenced) {
      // The lease ran out (or was lost) before COMMIT: nothing in the batch committed, and nothing will here.
      log.warn({ commands: ids.length, epoch: fence?.epoch }, 'batch rolled back: the writer lease is not valid (fenced)');
      return failAll('not_leader');
    }
    // The transaction itself failed (disk full, I/O error): nothing in it committed. Full is 507, the rest 500.
    const code = batchFailureCode(err);
    log.error({ err, commands: ids.length, code }, 'write batch failed; none of it committed');
    return failAll(code);
  }
}

function close(checkpoint: boolean): void {
  let checkpointed = false;
  try {
    if (checkpoint) {
      db.pragma('wal_checkpoint(TRUNCATE)');
      checkpointed = true;
    }
    db.close();
  } catch (err) {
    fatal(err);
  }
  post({ t: 'closed', checkpointed });
  port.close();
}

port.on('message', (bytes: Uint8Array) => {
  take(unpack<ToWriter>(bytes));
  try {
    runBatches();
  } catch (err) {
    fatal(err);
  }
});
