// Main-thread side of the checkpointer thread: starts it (unless Litestream owns checkpoints or
// CHECKPOINT_INTERVAL_MS=0), turns its reports into metrics, and stops it before the writer closes.
import { Worker } from 'node:worker_threads';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/log.js';
import { m } from '../shared/metrics.js';
import { pack, unpack, type FromCheckpointer } from '../shared/protocol.js';

const CLOSE_TIMEOUT_MS = 2000;

export class Checkpointer {
  private closed: (() => void) | null = null;
  /** The thread's kernel id (for per-thread CPU in the bench), null off Linux. */
  tid: number | null = null;
  private running = true;

  private constructor(
    private readonly worker: Worker,
    private readonly log: Logger,
  ) {}

  /** Null when there is nothing to start: with REPLICA_URL (Litestream checkpoints) or CHECKPOINT_INTERVAL_MS=0. */
  static async start(config: Config, log: Logger): Promise<Checkpointer | null> {
    if (config.replication || config.checkpointIntervalMs === 0) return null;
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { config }, name: 'checkpointer' });
    const self = new Checkpointer(worker, log);
    let ready = false;
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (bytes: Uint8Array) => {
        const msg = unpack<FromCheckpointer>(bytes);
        if (msg.t === 'ready') {
          ready = true;
          self.tid = msg.tid;
          resolve();
        } else self.onMessage(msg);
      });
      worker.once('error', (err) => {
        self.running = false;
        if (!ready) reject(new Error(`checkpointer thread failed to start: ${err.message}`));
        else log.error({ err }, "checkpointer thread crashed; checkpoints now run only inside the writer's commits");
      });
      worker.once('exit', (code) => {
        self.running = false;
        if (!ready) reject(new Error(`checkpointer thread exited (code ${code}) before it was ready`));
        self.closed?.();
      });
    });
    log.info({ intervalMs: config.checkpointIntervalMs }, 'checkpointer ready');
    return self;
  }

  private onMessage(msg: Exclude<FromCheckpointer, { t: 'ready' }>): void {
    switch (msg.t) {
      case 'checkpoint':
        m.checkpoints.inc();
        m.checkpointSeconds.observe(msg.ms / 1000);
        m.walFrames.set(msg.walFrames);
        break;
      case 'failed':
        m.checkpointFailures.inc();
        this.log.error({ reason: msg.message, failures: msg.failures, retryInMs: msg.retryInMs }, 'checkpoint failed; retrying');
        break;
      case 'recovered':
        this.log.info({ failures: msg.failures }, 'checkpoint succeeded again');
        break;
      case 'closed':
        break;
    }
  }

  /** Stops checkpointing and closes its connection; resolves once the thread has exited. */
  async close(): Promise<void> {
    if (!this.running) return;
    const exited = new Promise<void>((resolve) => (this.closed = resolve));
    const bytes = pack({ t: 'close' });
    this.worker.postMessage(bytes, [bytes.buffer as ArrayBuffer]);
    // A checkpoint in progress finishes first (it cannot be interrupted); one stuck in I/O is not waited for.
    const timer = setTimeout(() => void this.worker.terminate(), CLOSE_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
}
