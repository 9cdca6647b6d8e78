// Baseline main-thread side: N database threads, each request sent to the least busy one
// (ties broken round-robin), answered with that thread's result.
import { Worker } from 'node:worker_threads';
import client from 'prom-client';
import type { Config } from '../../src/shared/config.js';
import { AppError } from '../../src/shared/errors.js';
import { m, registry } from '../../src/shared/metrics.js';
import type { ReadOp, ReadResult, WriteAnswer, WriteOp } from '../../src/shared/protocol.js';
import type { Job, JobDone } from './protocol.js';

/** Requests that finally failed with SQLITE_BUSY after every retry (sqlite_busy_retries_total counts each BUSY met). */
const busyErrors = new client.Counter({
  name: 'baseline_busy_errors_total',
  help: 'Requests answered 503 because SQLITE_BUSY/LOCKED outlasted busy_timeout and every retry',
  registers: [registry],
});

interface Slot {
  worker: Worker;
  inFlight: number;
}

export class DbThreads {
  private readonly slots: Slot[];
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private nextId = 1;
  private rr = 0;

  constructor(config: Config, threads: number, maxRetries: number) {
    this.slots = Array.from({ length: threads }, () => {
      const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { config, maxRetries } });
      const slot: Slot = { worker, inFlight: 0 };
      worker.on('message', (msg: JobDone) => {
        slot.inFlight--;
        this.settle(msg);
      });
      worker.on('error', (err) => this.failAll(err));
      return slot;
    });
  }

  /** Resolves once every thread has opened its connection. */
  async ready(): Promise<void> {
    await Promise.all(this.slots.map((s) => this.send(s, { kind: 'read', op: { q: 'counter', name: '_' } })));
  }

  write(op: WriteOp): Promise<WriteAnswer> {
    return this.send(this.pick(), { kind: 'write', op }) as Promise<WriteAnswer>;
  }

  read(op: ReadOp): Promise<ReadResult> {
    return this.send(this.pick(), { kind: 'read', op }) as Promise<ReadResult>;
  }

  get depth(): number {
    return this.waiting.size;
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private pick(): Slot {
    const n = this.slots.length;
    let best = this.slots[this.rr]!;
    for (let i = 1; i < n; i++) {
      const s = this.slots[(this.rr + i) % n]!;
      if (s.inFlight < best.inFlight) best = s;
    }
    this.rr = (this.rr + 1) % n;
    return best;
  }

  private send(slot: Slot, job: Omit<Job, 'id'>): Promise<unknown> {
    const id = this.nextId++;
    slot.inFlight++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      slot.worker.postMessage({ ...job, id } as Job);
    });
  }

  private settle(msg: JobDone): void {
    const w = this.waiting.get(msg.id);
    if (!w) return;
    this.waiting.delete(msg.id);
    if (msg.busy > 0) m.busyRetries.inc(msg.busy);
    if ('ok' in msg) w.resolve(msg.ok);
    else {
      if (msg.busyFailed) busyErrors.inc();
      w.reject(AppError.fromWire(msg.err));
    }
  }

  private failAll(err: unknown): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
