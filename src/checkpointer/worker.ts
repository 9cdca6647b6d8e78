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

/**
 * While nothing is committed the ticks thin out, doubling from CHECKPOINT_INTERVAL_MS up to IDLE_TICK_MAX_MS, and
 * the first tick that sees a commit returns to the interval: an idle database (or one only read) wakes this thread
 * about once a second rather than 20 times, since a wake-up of an idle thread costs ~0.1-0.3 ms of CPU on a VM. The
 * price: the first checkpoint after a quiet spell starts up to a second late, with that second's WAL to copy.
 */
const IDLE_TICK_MAX_MS = 1000;
let nextTickMs = config.checkpointIntervalMs;
let timer: NodeJS.Timeout | null = null;

function schedule(): void {
  timer = setTimeout(() => {
    const idle = tick();
    nextTickMs = idle ? Math.min(IDLE_TICK_MAX_MS, nextTickMs * 2) : config.checkpointIntervalMs;
    schedule();
  }, nextTickMs);
}

/** One look; true when nothing was committed since the last and the WAL is checkpointed as far as it can be. */
function tick(): boolean {
  if (failures > 0 && performance.now() < retryAt) return false;
  const version = dataVersion.get() as number;
  if (version === seenVersion && caughtUp) return true;
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
    return false;
  }
  if (failures > 0) {
    post({ t: 'recovered', failures });
    failures = 0;
  }
  // Not caught up while readers still need older pages, the writer appended meanwhile, or another checkpoint held
  // the lock (busy; SQLite then reports log = -1): look again next tick.
  caughtUp = r.busy === 0 && r.checkpointed >= r.log;
  if (r.log > 0) post({ t: 'checkpoint', ms: performance.now() - t0, walFrames: r.log });
  return false;
}

schedule();

function stop(): void {
  if (timer) clearTimeout(timer);
  timer = null;
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
