// Main-thread side of the writer: a bounded queue sent to the writer thread once per event-loop turn (and mid-turn
// whenever WRITE_FLUSH_AT writes are queued), and the two steps every write goes through: committed (its
// transaction is durable locally) and then acknowledged (the client may be answered). `durability=local` writes are
// acknowledged at commit; `durability=replicated` ones when the AckGate (src/replication/durability-gate.ts) says
// the replica holds them, without touching the writer thread.
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { Config } from '../shared/config.js';
import type { Durability } from '../shared/domain.js';
import { AppError, shuttingDown, type WireError } from '../shared/errors.js';
import type { Fence } from '../shared/fence.js';
import { depthSources, m, writerStats } from '../shared/metrics.js';
import {
  answerJson,
  encodeOp,
  ON_PORT,
  packTransient,
  unpack,
  type CommittedMsg,
  type FromWriter,
  type ToWriter,
  type WireOp,
  type WriteBatchMsg,
  type WriteAnswer,
  type WriteOp,
  type WriterReadyMsg,
} from '../shared/protocol.js';
import { createRing, RingWriter } from '../shared/ring.js';

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

/** Called once per write: with its result, or with why it failed. */
export type WriteDone = (err: AppError | null, r: WriteAnswer | null) => void;

/** A committed replicated write waiting for the gate: who to tell, and what. */
interface Held {
  done: WriteDone;
  r: WriteAnswer;
}

/** Bytes of the shared-memory ring that carries writes to the writer thread (src/shared/ring.ts). */
const RING_BYTES = 1 << 20;

export class WriterClient {
  readonly ready: Promise<WriterReadyMsg>;
  private readonly worker: Worker;
  private readonly port: MessagePort2;
  private readonly ring: RingWriter;
  /**
   * Accepted and not yet answered by the writer, oldest first from `fifoHead`: it answers in the order they were
   * sent. Two arrays in step (each write's callback, and whether it asked for `replicated`), no object per write,
   * and an answered slot is cleared at once: under a steady load the queue is seldom empty, so the arrays are reset
   * only every few thousand writes, and an uncleared slot kept its request (the exchange and its closures) alive
   * until then, through young-generation collections into the old generation (bench/ANALYSIS.md).
   */
  private fifo: (WriteDone | undefined)[] = [];
  private fifoReplicated: boolean[] = [];
  private fifoHead = 0;
  private queuedOps: WireOp[] = [];
  /** Packed messages that found the ring full, oldest first: sent before anything else once it has room. */
  private backlog: Uint8Array[] = [];
  private flushScheduled = false;
  private life: Life = { s: 'open' };
  private drainWaiters: (() => void)[] = [];
  /** Committed replicated writes the gate has not released yet (no longer in `fifo`: the writer is done with them). */
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
    const ring = createRing(RING_BYTES);
    this.ring = new RingWriter(ring);
    this.worker = new Worker(new URL('./worker.js', import.meta.url), {
      workerData: { config, port: port2, ring, fence: fence?.buffer ?? null },
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
        if (Array.isArray(msg)) {
          this.onCommitted(msg);
          return;
        }
        switch (msg.t) {
          case 'heartbeat':
            m.writerHeartbeats.inc();
            m.replicaPosition.set(msg.position);
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
    return this.fifo.length - this.fifoHead + this.held;
  }

  /** `submitWith` as a promise (for callers off the request path). */
  submit(op: WriteOp, opts: { durability?: Durability } = {}): Promise<WriteAnswer> {
    return new Promise((resolve, reject) => this.submitWith(op, opts.durability ?? 'local', (err, r) => (err ? reject(err) : resolve(r!))));
  }

  /**
   * Queues one write; `done` is called once, with its result or its error (also when it is refused here at once,
   * before this returns). A callback rather than a promise: on the request path that saves two promises and
   * their microtasks per write.
   */
  submitWith(op: WriteOp, durability: Durability, done: WriteDone): void {
    const refused = this.refusal(durability);
    if (refused) {
      done(refused, null);
      return;
    }
    this.fifo.push(done);
    this.fifoReplicated.push(durability === 'replicated');
    this.queuedOps.push(encodeOp(op));
    if (this.queuedOps.length >= this.config.writeFlushAt) {
      // Enough for the writer to start on while this turn parses the rest: its commit (an fsync with FULL)
      // then overlaps the main thread's work instead of following it. Measured: docs/performance.md "Tuning".
      this.send();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Everything else the HTTP layer accepts during this event-loop turn rides in one message.
      setImmediate(this.flush);
    }
  }

  private refusal(durability: Durability): AppError | null {
    if (durability === 'replicated' && !this.gate) return new AppError('durability_unavailable');
    if (this.life.s === 'dead') return new AppError('unavailable', 'the writer is not running; the write was not applied');
    if (this.life.s !== 'open') return shuttingDown();
    if (this.depth >= this.config.writeQueueMax) {
      m.overloaded.labels('write').inc();
      return new AppError('overloaded', 'write queue is full, retry later', undefined, { 'Retry-After': '1' });
    }
    return null;
  }

  private flush = (): void => {
    this.flushScheduled = false;
    this.send();
  };

  private send(): void {
    if (this.queuedOps.length === 0 || this.life.s === 'dead') return;
    const msg: WriteBatchMsg = { t: 'write', ops: this.queuedOps };
    this.queuedOps = [];
    this.post(msg);
  }

  /** Sends one message to the writer, in order: through the ring, over the port if too large, or later if the ring is full. */
  private post(msg: ToWriter): void {
    const bytes = packTransient(msg);
    if (this.backlog.length === 0 && this.ring.write(bytes)) return;
    if (bytes.length > this.ring.maxRecord) {
      const copy = bytes.slice();
      this.backlog.push(ON_PORT);
      this.port.postMessage(copy, [copy.buffer as ArrayBuffer]);
    } else this.backlog.push(bytes.slice());
    this.sendBacklog();
  }

  /** Whatever found the ring full, now that the writer has taken some of it. */
  private sendBacklog(): void {
    let i = 0;
    while (i < this.backlog.length && this.ring.write(this.backlog[i]!)) i++;
    if (i > 0) this.backlog.splice(0, i);
  }

  private onCommitted([, results, commitMs, busyRetries, fellBack, position]: CommittedMsg): void {
    if (this.backlog.length > 0) this.sendBacklog();
    const n = results.length / 2;
    writerStats.batches++;
    writerStats.batchSize.observe(n);
    writerStats.commitSeconds.observe(commitMs / 1000);
    if (busyRetries > 0) m.busyRetries.inc(busyRetries);
    if (fellBack) m.writerFallbacks.inc();
    // 0: nothing committed (a failed batch), or no position kept (no replica).
    if (position > 0) m.replicaPosition.set(position);
    // Step 1 done: committed. Step 2: acknowledge, at once for local writes and failures (nothing to make
    // durable), through the gate for successful replicated ones.
    let failed = 0;
    let full = 0;
    let gated: Held[] | null = null;
    const fifo = this.fifo;
    const replicated = this.fifoReplicated;
    const base = this.fifoHead;
    // The writer answers in the order sent; a message that answers more than is outstanding is a bug there, and
    // no answer after it could be matched to its request: stop as for a writer that died.
    if (n > fifo.length - base) {
      this.die(`writer answered ${n} commands, ${fifo.length - base} outstanding`);
      return;
    }
    this.fifoHead += n;
    if (this.fifoHead === fifo.length) {
      this.fifo = [];
      this.fifoReplicated = [];
      this.fifoHead = 0;
    } else if (this.fifoHead > 4096 && this.fifoHead * 2 > fifo.length) {
      this.fifo = fifo.slice(this.fifoHead);
      this.fifoReplicated = replicated.slice(this.fifoHead);
      this.fifoHead = 0;
    }
    for (let i = 0; i < n; i++) {
      const done = fifo[base + i]!;
      fifo[base + i] = undefined;
      // encodeOutcomes(): [body, id] or [error, null].
      const a = results[2 * i] as Uint8Array | WireError | null;
      if (a !== null && !(a instanceof Uint8Array)) {
        failed++;
        if (a.code === 'insufficient_storage') full++;
        done(AppError.fromWire(a), null);
        continue;
      }
      const id = results[2 * i + 1];
      const r: WriteAnswer = id === null ? { body: a, position } : { body: a, id: id as number, position };
      if (replicated[base + i]) (gated ??= []).push({ done, r });
      else done(null, r);
    }
    writerStats.commandsOk += n - failed;
    writerStats.commandsFailed += failed;
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
  private release(writes: Held[], err: AppError | null): void {
    this.held -= writes.length;
    // Confirmed in the replica, but by a writer whose lease has run out meanwhile: the next leader may have
    // restored before that upload, so this is not an acknowledgement we can stand behind.
    if (!err && this.fence && !this.fence.valid()) {
      err = new AppError('not_leader', 'the write committed, but this instance lost the writer lease before the replica confirmed it: the next leader may not have it');
    }
    for (const { done, r } of writes) {
      if (!err) done(null, r);
      else {
        const result = r.body === null ? null : answerJson(r.body);
        done(new AppError(err.code, err.message, [{ committed: true, replicated: false, ...(r.id === undefined ? {} : { id: r.id }), result }]), null);
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
    // Through the ring, after the last write: the writer reaches it once everything before it committed.
    this.post({ t: 'close', checkpoint: opts.checkpoint });
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
    const fifo = this.fifo;
    const from = this.fifoHead;
    this.fifo = [];
    this.fifoReplicated = [];
    this.fifoHead = 0;
    this.queuedOps = [];
    this.backlog = [];
    for (let i = from; i < fifo.length; i++) fifo[i]!(err, null);
    this.notifyDrained();
    // A close() in progress fails (the writer died instead of reporting `closed`, e.g. its final checkpoint failed).
    if (life.s === 'closing') life.failed(new Error(reason));
    this.onFatal(reason);
  }
}

type MessagePort2 = InstanceType<typeof MessageChannel>['port1'];
