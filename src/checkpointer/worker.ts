// Checkpointer thread entry (no REPLICA_URL only; Litestream checkpoints otherwise): a PASSIVE checkpoint every
// CHECKPOINT_INTERVAL_MS on a connection of its own, so copying WAL pages into the database and its fsync happen
// beside the writer instead of inside one of its commits. It never takes the write lock and changes no row.
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../shared/config.js';
import { openCheckpointer } from '../shared/db/open.js';
import { pack, unpack, type FromCheckpointer, type ToCheckpointer } from '../shared/protocol.js';
import { threadId } from '../shared/thread-id.js';

const { config } = workerData as { config: Config };
const port = parentPort!;

function post(msg: FromCheckpointer): void {
  const bytes = pack(msg);
  port.postMessage(bytes, [bytes.buffer as ArrayBuffer]);
}

const db = openCheckpointer(config);
// Changes whenever another connection commits: an idle database costs one cheap pragma a tick.
const dataVersion = db.prepare('PRAGMA data_version').pluck();
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
let seenVersion = -1;
let caughtUp = false;
/** Checkpoints failed in a row, and when the next may be tried: a failure (disk full) backs off, never stops. */
let failures = 0;
let retryAt = 0;
const RETRY_MAX_MS = 5000;

function tick(): void {
  if (failures > 0 && performance.now() < retryAt) return;
  const version = dataVersion.get() as number;
  if (version === seenVersion && caughtUp) return;
  seenVersion = version;
  const t0 = performance.now();
  let r: { busy: number; log: number; checkpointed: number };
  try {
    r = checkpoint.get() as typeof r;
  } catch (err) {
    failures++;
    caughtUp = false;
    const retryInMs = Math.min(RETRY_MAX_MS, Math.max(100, config.checkpointIntervalMs) * 2 ** (failures - 1));
    retryAt = performance.now() + retryInMs;
    post({ t: 'failed', message: (err as Error).message, failures, retryInMs });
    return;
  }
  if (failures > 0) {
    post({ t: 'recovered', failures });
    failures = 0;
  }
  // Not caught up while readers still need older pages, the writer appended meanwhile, or another checkpoint held
  // the lock (busy; SQLite then reports log = -1): look again next tick.
  caughtUp = r.busy === 0 && r.checkpointed >= r.log;
  if (r.log > 0) post({ t: 'checkpoint', ms: performance.now() - t0, walFrames: r.log });
}

const timer = setInterval(tick, config.checkpointIntervalMs);

function stop(): void {
  clearInterval(timer);
  if (db.open) db.close();
}

port.on('message', (bytes: Uint8Array) => {
  const msg = unpack<ToCheckpointer>(bytes);
  if (msg.t === 'close') {
    stop();
    post({ t: 'closed' });
    port.close();
  }
});
post({ t: 'ready', tid: threadId() });
