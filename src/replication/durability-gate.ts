// The durability gate: answers `durability=replicated` writes only once a POST /sync that STARTED after their batch
// committed has returned 200 with replicated_txid >= txid (Litestream 0.5.18: such a call uploads every frame
// committed before it). Group replication, like group commit: one call in flight; batches that commit meanwhile
// wait for the next call, which starts as soon as the current one returns (no timer), so a slow upload carries
// more writes instead of queueing more uploads. Each waiting batch also has its own deadline from its commit.
import { AppError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { m } from '../shared/metrics.js';
import type { AckGate } from '../writer/client.js';
import type { SyncResult } from './control-socket.js';

interface Rider {
  /** Replicated writes in this batch. */
  writes: number;
  committedAt: number;
  ack(): void;
  fail(err: AppError): void;
  timer: NodeJS.Timeout;
  done: boolean;
  /** Why its last pass did not confirm it (for the 504 message). */
  why?: string;
}

export class DurabilityGate implements AckGate {
  private waiting: Rider[] = [];
  private riding = new Set<Rider>();
  private inflight = false;
  /** At shutdown: no rider waits past this (performance.now() time). */
  private deadline = Infinity;
  private readonly log: Logger;

  constructor(
    /** The one way the gate asks for an upload (LitestreamSupervisor.sync: one request in flight). */
    private readonly sync: (timeoutMs: number) => Promise<SyncResult>,
    private readonly timeoutMs: number,
    log: Logger,
  ) {
    this.log = log.child({ component: 'durability' });
  }

  afterCommit(writes: number, ack: () => void, fail: (err: AppError) => void): void {
    const committedAt = performance.now();
    const rider: Rider = { writes, committedAt, ack, fail, done: false, timer: undefined as unknown as NodeJS.Timeout };
    this.arm(rider, Math.min(committedAt + this.timeoutMs, this.deadline), `within REPLICATION_TIMEOUT_MS (${this.timeoutMs} ms)`);
    this.waiting.push(rider);
    this.pump();
  }

  /**
   * Shutdown: every write still waiting is answered within `ms` (confirmed by the passes that keep running, or 504),
   * so the drain never waits on the replica for longer than its budget allows.
   */
  limit(ms: number): void {
    this.deadline = performance.now() + ms;
    for (const r of [...this.waiting, ...this.riding]) {
      if (r.committedAt + this.timeoutMs <= this.deadline) continue;
      clearTimeout(r.timer);
      this.arm(r, this.deadline, 'before shutdown');
    }
  }

  private arm(r: Rider, at: number, when: string): void {
    r.timer = setTimeout(() => {
      const why = r.why ? ` (${r.why})` : '';
      this.settle(r, new AppError('replication_timeout', `the write committed locally but the replica did not confirm it ${when}${why}`));
    }, Math.max(0, at - performance.now()));
  }

  private settle(r: Rider, err: AppError | null): void {
    if (r.done) return;
    r.done = true;
    clearTimeout(r.timer);
    this.riding.delete(r);
    if (err) r.fail(err);
    else {
      m.replicationWaitSeconds.observe((performance.now() - r.committedAt) / 1000);
      r.ack();
    }
  }

  private pump(): void {
    if (this.inflight) return;
    const riders = this.waiting.filter((r) => !r.done);
    this.waiting = [];
    if (riders.length === 0) return;
    this.inflight = true;
    for (const r of riders) this.riding.add(r);
    const writes = riders.reduce((n, r) => n + r.writes, 0);
    const startedAt = Date.now();
    const t0 = performance.now();
    const done = (result: 'ok' | 'failed' | 'behind', extra: Record<string, unknown>, err: AppError | null, retry?: Rider[]) => {
      const ms = performance.now() - t0;
      m.replicationSyncSeconds.observe(ms / 1000);
      m.replicationSyncs.labels(result).inc();
      // Writes a pass settled: a `behind` pass settles none (they ride the next one), so each write counts once.
      if (!retry) m.replicatedWritesPerSync.observe(writes);
      this.log.debug({ result, writes, batches: riders.length, startedAt, ms: Math.round(ms * 1000) / 1000, ...extra }, 'replication sync');
      if (retry) {
        for (const r of retry) this.riding.delete(r);
        this.waiting.unshift(...retry.filter((r) => !r.done));
      } else for (const r of riders) this.settle(r, err);
      this.inflight = false;
      this.pump();
    };
    this.sync(this.timeoutMs).then(
      (s) => {
        m.replicationLagTxids.set(Math.max(0, s.txid - s.replicatedTxid));
        if (s.replicatedTxid >= s.txid) return done('ok', { status: s.status, txid: s.txid, replicatedTxid: s.replicatedTxid }, null);
        // replicated_txid < txid. Benign and common: Litestream reads txid AFTER its upload, so an L0 file its 1 s
        // monitor wrote meanwhile shows up in txid but not yet in replicated_txid (store.go SyncDB, measured here
        // several times a minute under load). Or not benign: another writer on the same path, when Litestream answers
        // 200 without uploading. The writer lease (gs:// replicas) rules that out while it is held, but nothing in the
        // answer tells the two apart, so these writes are NOT confirmed: they ride the next pass (started now, after
        // their commit) and answer 504 at their deadline if the replica stays behind.
        this.log.warn(
          { txid: s.txid, replicatedTxid: s.replicatedTxid, writes },
          'POST /sync answered 200 but replicated_txid < txid: not confirmed, retrying (another writer on the same replica path would look like this)',
        );
        for (const r of riders) r.why = `the replica stayed behind (replicated_txid ${s.replicatedTxid} < txid ${s.txid})`;
        done('behind', { txid: s.txid, replicatedTxid: s.replicatedTxid }, null, riders);
      },
      (err: Error) =>
        done('failed', { err: err.message }, new AppError('replication_timeout', `the write committed locally but the replica did not confirm it: ${err.message}`)),
    );
  }
}
