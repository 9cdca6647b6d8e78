// Main-thread side of the writer: a bounded queue sent to the writer thread once per event-loop turn (and mid-turn
// whenever WRITE_FLUSH_AT writes are queued), and the two steps every write goes through: committed (its
// transaction is durable locally) and then acknowledged (the client may be answered). `durability=local` writes are
// acknowledged at commit; `durability=replicated` ones when the AckGate (src/replication/durability-gate.ts) says
// the replica holds them, without touching the writer thread.
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { Config } from '../shared/config.js';
import type { Durability } from '../shared/domain.js';
import { AppError, shuttingDown } from '../shared/errors.js';
import type { Fence } from '../shared/fence.js';
import { depthSources, m } from '../shared/metrics.js';
import { pack, unpack, type CommittedMsg, type FromWriter, type WriteOp, type WriteResult, type WriterReadyMsg } from '../shared/protocol.js';

/** Decides when committed `durability=replicated` writes may be answered. */
export interface AckGate {
  /**
   * Called once per committed batch holding `writes` successful replicated writes: `ack` when they may be
   * acknowledged, or `fail` (they committed, but their durability could not be confirmed).
   */
  afterCommit(writes: number, ack: () => void, fail: (err: AppError) => void): void;
}


/**
 * The writer's lifecycle, one state at a time: open (taking writes), draining (what was accepted still commits,
 * nothing new), closing (close sent; waiting for `closed`, then the thread's exit), closed (reported closed: its
 * exit is expected), dead (crashed or reported fatal: everything pending failed).
 */
type Life =
  | { s: 'open' | 'draining' }
  | { s: 'closing'; closed: (v: { checkpointed: boolean }) => void; failed: (err: Error) => void }
  | { s: 'closed' }
  | { s: 'dead'; reason: string };

interface Pending {
  resolve: (r: WriteResult) => void;
  reject: (e: AppError) => void;
  durability: Durability;
}

export class WriterClient {
  readonly ready: Promise<WriterReadyMsg>;
  private readonly worker: Worker;
  private readonly port: MessagePort2;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private queuedIds: number[] = [];
  private queuedOps: WriteOp[] = [];
  private flushScheduled = false;
  private life: Life = { s: 'open' };
  private drainWaiters: (() => void)[] = [];
  /** Committed replicated writes the gate has not released yet (no longer in `pending`: the writer is done with them). */
  private held = 0;
  /** Resolved by the thread's expected exit (after `closed`). */
  private exited: (() => void) | null = null;
  /** Called once if the writer thread dies or reports a fatal error. */
  onFatal: (reason: string) => void = () => {};
  /**
   * True from a write refused with SQLITE_FULL (507 insufficient_storage) until a later batch commits a write
   * without one: /readyz reports it, and `onStorageFull` is told of each change.
   */
  storageFull = false;
  onStorageFull: (full: boolean) => void = () => {};

  constructor(
    private readonly config: Config,
    /** Null: no replica, so no replicated writes (the HTTP layer refuses them with 400 durability_unavailable). */
    private readonly gate: AckGate | null = null,
    /** The writer lease's fence (REPLICA_URL): checked by the thread before every COMMIT, and here before a replicated ack. */
    private readonly fence: Fence | null = null,
  ) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(new URL('./worker.js', import.meta.url), {
      workerData: { config, port: port2, fence: fence?.buffer ?? null },
      transferList: [port2],
      name: 'writer',
    });
    depthSources.writer = () => this.depth;
    this.ready = new Promise((resolve, reject) => {
      const fail = (reason: string) => {
        reject(new Error(reason));
        this.die(reason);
      };
      const onMessage = (bytes: Uint8Array) => {
        const msg = unpack<FromWriter>(bytes);
        switch (msg.t) {
          case 'committed':
            this.onCommitted(msg);
            break;
          case 'ready':
            resolve(msg);
            break;
          case 'closed': {
            const life = this.life;
            this.life = { s: 'closed' };
            if (life.s === 'closing') life.closed({ checkpointed: msg.checkpointed });
            break;
          }
          case 'fatal':
            fail(`writer failed: ${msg.message}`);
            break;
        }
      };
      this.port.on('message', onMessage);
      this.worker.on('error', (err) => fail(`writer thread crashed: ${err.message}`));
      this.worker.on('exit', (code) => {
        // The thread posts `closed` and ends at once: 'exit' can be dispatched before that message. Read it first.
        for (let q; this.life.s !== 'closed' && (q = receiveMessageOnPort(this.port)); ) onMessage(q.message as Uint8Array);
        if (this.life.s === 'closed') this.exited?.();
        else fail(`writer thread exited (code ${code})`);
      });
    });
    this.ready.catch(() => {});
  }

  /** Commands accepted and not yet answered (including committed ones waiting for the replica). */
  get depth(): number {
    return this.pending.size + this.held;
  }

  submit(op: WriteOp, opts: { durability?: Durability } = {}): Promise<WriteResult> {
    const durability = opts.durability ?? 'local';
    if (durability === 'replicated' && !this.gate) return Promise.reject(new AppError('durability_unavailable'));
    if (this.life.s === 'dead') return Promise.reject(new AppError('unavailable', 'the writer is not running; the write was not applied'));
    if (this.life.s !== 'open') return Promise.reject(shuttingDown());
    if (this.depth >= this.config.writeQueueMax) {
      m.overloaded.labels('write').inc();
      return Promise.reject(new AppError('overloaded', 'write queue is full, retry later', undefined, { 'Retry-After': '1' }));
    }
    const id = this.nextId++;
    this.queuedIds.push(id);
    this.queuedOps.push(op);
    if (this.queuedIds.length >= this.config.writeFlushAt) {
      // Enough for the writer to start on while this turn parses the rest: its commit (an fsync with FULL)
      // then overlaps the main thread's work instead of following it. Measured: docs/performance.md "Tuning".
      this.send();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Everything else the HTTP layer accepts during this event-loop turn rides in one message.
      setImmediate(this.flush);
    }
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject, durability }));
  }

  private flush = (): void => {
    this.flushScheduled = false;
    this.send();
  };

  private send(): void {
    if (this.queuedIds.length === 0 || this.life.s === 'dead') return;
    const bytes = pack({ t: 'write', ids: this.queuedIds, ops: this.queuedOps });
    this.queuedIds = [];
    this.queuedOps = [];
    this.port.postMessage(bytes, [bytes.buffer as ArrayBuffer]);
  }

  private onCommitted(msg: CommittedMsg): void {
    const n = msg.ids.length;
    m.writerBatches.inc();
    m.writerBatchSize.observe(n);
    m.writerCommitSeconds.observe(msg.commitMs / 1000);
    if (msg.busyRetries > 0) m.busyRetries.inc(msg.busyRetries);
    // Step 1 done: committed. Step 2: acknowledge, at once for local writes and failures (nothing to make
    // durable), through the gate for successful replicated ones.
    let failed = 0;
    let full = 0;
    let gated: { p: Pending; r: WriteResult }[] | null = null;
    for (let i = 0; i < n; i++) {
      const id = msg.ids[i]!;
      const p = this.pending.get(id);
      if (!p) continue;
      this.pending.delete(id);
      const r = msg.results[i]!;
      if (!('ok' in r)) {
        failed++;
        if (r.err.code === 'insufficient_storage') full++;
        p.reject(AppError.fromWire(r.err));
      } else if (p.durability === 'replicated') (gated ??= []).push({ p, r: r.ok });
      else p.resolve(r.ok);
    }
    m.writerCommands.labels('ok').inc(n - failed);
    if (failed) m.writerCommands.labels('failed').inc(failed);
    if (full > 0 || this.storageFull) this.noteStorage(full, failed < n);
    if (gated) {
      const writes = gated;
      this.held += writes.length;
      this.gate!.afterCommit(
        writes.length,
        () => this.release(writes, null),
        (err) => this.release(writes, err),
      );
    }
    if (this.depth === 0) this.notifyDrained();
  }

  /** SQLITE_FULL seen (`full` commands refused), or a batch that committed writes without it after one was. */
  private noteStorage(full: number, committedSome: boolean): void {
    if (full > 0) m.storageFullWrites.inc(full);
    const now = full > 0 ? true : committedSome ? false : this.storageFull;
    if (now === this.storageFull) return;
    this.storageFull = now;
    m.storageFull.set(now ? 1 : 0);
    this.onStorageFull(now);
  }

  /** The gate's verdict on a batch's replicated writes: acknowledged, or 504 with what the client would have got. */
  private release(writes: { p: Pending; r: WriteResult }[], err: AppError | null): void {
    this.held -= writes.length;
    // Confirmed in the replica, but by a writer whose lease has run out meanwhile: the next leader may have
    // restored before that upload, so this is not an acknowledgement we can stand behind.
    if (!err && this.fence && !this.fence.valid()) {
      err = new AppError('not_leader', 'the write committed, but this instance lost the writer lease before the replica confirmed it: the next leader may not have it');
    }
    for (const { p, r } of writes) {
      if (!err) p.resolve(r);
      else {
        const result = r.body === null ? null : (JSON.parse(r.body) as unknown);
        p.reject(new AppError(err.code, err.message, [{ committed: true, replicated: false, ...(r.id === undefined ? {} : { id: r.id }), result }]));
      }
    }
    if (this.depth === 0) this.notifyDrained();
  }

  /** Stop taking new writes; everything already accepted still commits. */
  stopAccepting(): void {
    if (this.life.s === 'open') this.life = { s: 'draining' };
  }

  /** Resolves once every accepted write has been answered. */
  drained(): Promise<void> {
    if (this.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private notifyDrained(): void {
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }

  /** Closes the connection (after a TRUNCATE checkpoint if asked) and ends the thread. */
  async close(opts: { checkpoint: boolean }): Promise<{ checkpointed: boolean }> {
    this.stopAccepting();
    this.flush();
    if (this.life.s === 'dead') throw new Error(this.life.reason);
    if (this.life.s !== 'draining') throw new Error(`writer close() while ${this.life.s}`);
    const done = new Promise<{ checkpointed: boolean }>((closed, failed) => (this.life = { s: 'closing', closed, failed }));
    const bytes = pack({ t: 'close', checkpoint: opts.checkpoint });
    this.port.postMessage(bytes, [bytes.buffer as ArrayBuffer]);
    const exited = new Promise<void>((resolve) => (this.exited = resolve));
    const r = await done;
    // The thread ends by itself once its port closes; terminate only if it lingers.
    const t = setTimeout(() => void this.worker.terminate(), 1000);
    await exited;
    clearTimeout(t);
    this.port.close();
    return r;
  }

  private die(reason: string): void {
    const life = this.life;
    if (life.s === 'dead') return;
    this.life = { s: 'dead', reason };
    // The writer's transaction is atomic: a batch it did not report as committed did not commit.
    const err = new AppError('unavailable', 'the writer stopped; the write was not applied');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.notifyDrained();
    // A close() in progress fails (the writer died instead of reporting `closed`, e.g. its final checkpoint failed).
    if (life.s === 'closing') life.failed(new Error(reason));
    this.onFatal(reason);
  }
}

type MessagePort2 = InstanceType<typeof MessageChannel>['port1'];
