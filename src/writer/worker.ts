// Writer thread entry: owns the only read-write connection. It takes everything waiting in its ring (up to
// WRITE_BATCH_MAX commands), commits it as one transaction, posts the results on its port, and goes on until the
// ring is empty; then it sleeps (blocked on the ring) until the main thread writes to it again.
import { performance } from 'node:perf_hooks';
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { Config } from '../shared/config.js';
import { MIGRATIONS } from '../shared/db/migrations.js';
import { assertSqliteVersion, migrate, openWriter } from '../shared/db/open.js';
import { AppError, batchFailureCode, isBusy, type ErrorCode } from '../shared/errors.js';
import { Fence, type FenceBuffer } from '../shared/fence.js';
import { createLogger } from '../shared/log.js';
import { threadId } from '../shared/thread-id.js';
import { decodeOp, encodeOutcomes, ON_PORT, pack, unpack, type CommittedMsg, type FromWriter, type ToWriter, type WriteOp } from '../shared/protocol.js';
import { RingReader, type RingBuffers } from '../shared/ring.js';
import { createBatchRunner, Fenced, sleepSync } from './batch.js';
import { prepareCommands } from './commands.js';
import { prepareIdempotency } from './idempotency.js';

interface WriterData {
  config: Config;
  port: MessagePort;
  /** Writes (and the close) arrive here, in order (src/shared/ring.ts); the port carries what is too large for it. */
  ring: RingBuffers;
  /** The writer lease's fence (REPLICA_URL), checked before every COMMIT; null: never fenced. */
  fence: FenceBuffer;
}

const { config, port, ring: ringBuffers, fence: fenceBuffer } = workerData as WriterData;
const ring = new RingReader(ringBuffers);
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
    trackPosition: config.replication !== null,
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

/** When the last transaction committed (performance.now()): the heartbeat only runs when the writer is idle. */
let lastCommitAt = performance.now();

// The heartbeat (WRITER_HEARTBEAT_MS, with REPLICA_URL): an idle writer still commits a transaction that moves the
// replica position, so Litestream uploads one small file and a follower that sees the position move knows the
// writer is alive and its own copy current (docs/followers.md). Nothing is written while the lease is not valid.
const heartbeatMs = config.replication?.writerHeartbeatMs ?? 0;
/** How often the heartbeat looks whether it is due; 0: no heartbeat. */
const heartbeatEveryMs = heartbeatMs > 0 ? Math.max(50, Math.round(heartbeatMs / 4)) : 0;
if (heartbeatEveryMs > 0) {
  setInterval(() => {
    if (closed || closeRequested || pendingOps.length > 0) return;
    if (performance.now() - lastCommitAt < heartbeatMs) return;
    if (fence && !fence.valid()) return;
    try {
      const r = runner.run([]);
      fence?.recordCommit();
      lastCommitAt = performance.now();
      post({ t: 'heartbeat', position: r.position });
    } catch (err) {
      // Fenced, busy, full: the next beat tries again; writes report their own failures.
      if (!(err instanceof Fenced)) log.warn({ err }, 'heartbeat commit failed');
    }
  }, heartbeatEveryMs).unref();
}

/** Commands taken off the ring but not yet run (a message can carry more than one batch's worth). */
let pendingOps: WriteOp[] = [];
let closeRequested: { checkpoint: boolean } | null = null;
let closed = false;
/** Messages that came over the port, each waiting for its mark in the ring (ON_PORT). */
const fromPort: Uint8Array[] = [];

function take(msg: ToWriter): void {
  if (msg.t === 'write') {
    for (const w of msg.ops) pendingOps.push(decodeOp(w));
  } else {
    closeRequested = { checkpoint: msg.checkpoint };
  }
}

/** Takes every message already in the ring, in order, without yielding to the event loop. */
function drainRing(): void {
  while (pendingOps.length < config.writeBatchMax && closeRequested === null) {
    // A view of the ring's shared memory, unpacked in place and then released (no copy per message). Nothing in a
    // ToWriter message is bytes (msgpackr would hand those out as views of the ring): strings and numbers only.
    const bytes = ring.peek();
    if (!bytes) return;
    if (bytes.length === ON_PORT.length) {
      ring.release();
      // Posted before its mark was written, so it is on the port by now (or already taken by the listener).
      const onPort = fromPort.shift() ?? (receiveMessageOnPort(port)?.message as Uint8Array | undefined);
      if (!onPort) throw new Error('the ring marks a message on the port, and the port has none');
      take(unpack<ToWriter>(onPort));
    } else {
      const msg = unpack<ToWriter>(bytes);
      ring.release();
      take(msg);
    }
  }
}

function runBatches(): void {
  drainRing();
  if (config.writeBatchWaitMs > 0 && pendingOps.length > 0 && pendingOps.length < config.writeBatchMax) {
    sleepSync(config.writeBatchWaitMs);
    drainRing();
  }
  while (pendingOps.length > 0) {
    const n = Math.min(pendingOps.length, config.writeBatchMax);
    let ops = pendingOps;
    if (n < pendingOps.length) {
      ops = pendingOps.slice(0, n);
      pendingOps = pendingOps.slice(n);
    } else pendingOps = [];
    if (config.testWriterDelayMs > 0) sleepSync(config.testWriterDelayMs);
    post(commitBatch(ops));
    drainRing();
  }
  if (closeRequested) close(closeRequested.checkpoint);
}

/** One batch as one transaction: its results, or every command failed with why none of it committed. */
function commitBatch(ops: WriteOp[]): CommittedMsg {
  const failAll = (code: ErrorCode): CommittedMsg => {
    const e = new AppError(code).toWire();
    return ['c', encodeOutcomes(ops.map(() => ({ err: e }))), 0, 0, false, 0];
  };
  try {
    const r = runner.run(ops);
    fence?.recordCommit();
    lastCommitAt = performance.now();
    log.debug({ commands: ops.length, commitMs: Math.round(r.commitMs * 1000) / 1000, busyRetries: r.busyRetries }, 'batch committed');
    return ['c', encodeOutcomes(r.results), r.commitMs, r.busyRetries, r.fellBack, r.position];
  } catch (err) {
    if (err instanceof Fenced) {
      // The lease ran out (or was lost) before COMMIT: nothing in the batch committed, and nothing will here.
      log.warn({ commands: ops.length, epoch: fence?.epoch }, 'batch rolled back: the writer lease is not valid (fenced)');
      return failAll('not_leader');
    }
    // The transaction itself failed (disk full, I/O error): nothing in it committed. Full is 507, the rest 500.
    const code = batchFailureCode(err);
    log.error({ err, commands: ops.length, code }, 'write batch failed; none of it committed');
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
  closed = true;
  post({ t: 'closed', checkpointed });
  port.close();
}

// Catches what comes over the port before its mark in the ring is reached.
port.on('message', (bytes: Uint8Array) => fromPort.push(bytes));

/**
 * How long the writer blocks on the ring before it lets its event loop run, and how long a busy writer goes at most
 * without doing so. The loop runs only timers (the heartbeat, the once-a-minute idempotency sweep; messages on the
 * port are read from the ring's marks), so an idle writer wakes as often as its heartbeat looks, or once a second
 * without one: a wake-up of an idle thread costs ~0.1-0.3 ms of CPU on a VM (bench/ANALYSIS.md).
 */
const IDLE_WAIT_MS = heartbeatEveryMs > 0 ? heartbeatEveryMs : 1000;
const YIELD_EVERY_MS = 20;

async function loop(): Promise<void> {
  let yieldedAt = performance.now();
  while (!closed) {
    runBatches();
    if (closed) break;
    // Blocked in a futex rather than in the event loop: nothing else on this thread needs to run meanwhile.
    const woke = ring.waitSync(IDLE_WAIT_MS);
    if (!woke || performance.now() - yieldedAt >= YIELD_EVERY_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      yieldedAt = performance.now();
    }
  }
}
loop().catch(fatal);
