// One writer per replica (REPLICA_URL): the writer lease (src/replication/lease.ts) decides which instance writes,
// and this module runs the terms. A term is: lease acquired -> database restored unless the local file is current
// -> writer opened (fenced by the lease) -> Litestream started (first upload) -> readers -> serving. It ends by
// handover (SIGTERM: drained, final upload, lease released with the replica's TXID) or by loss (renewal refused or
// validity run out: fence down, Litestream SIGKILLed with no final upload, back to standby). A standby polls the
// lease and starts a term as soon as it is released or has expired. Without REPLICA_URL there is no lease and one
// term runs for the life of the process (src/lifecycle.ts).
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { Checkpointer } from './checkpointer/client.js';
import type { ServiceState } from './http/state.js';
import { uwsBuild } from './http/uws.js';
import { openReaders, type Readers } from './readers/pool.js';
import { DurabilityGate } from './replication/durability-gate.js';
import { FencedEgress } from './replication/egress.js';
import { LitestreamSupervisor } from './replication/index.js';
import { LeaseUnknownError, storageFromEnv, WriterLease, type AcquireResult, type LostReason } from './replication/lease.js';
import { txidHex } from './replication/ltx.js';
import { localIsCurrent, markLocalEpoch, ReplicaUnavailableError } from './replication/restore.js';
import type { Config, ReplicationConfig } from './shared/config.js';
import { Fence, monotonicMs } from './shared/fence.js';
import { threadId } from './shared/thread-id.js';
import type { Logger } from './shared/log.js';
import { m } from './shared/metrics.js';
import { WriterClient } from './writer/client.js';

/** What serves one term: the writer and readers, and with a replica its Litestream and durability gate. */
export interface Term {
  writer: WriterClient;
  readers: Readers;
  sqliteVersion: string;
  checkpointer: Checkpointer | null;
  supervisor: LitestreamSupervisor | null;
  gate: DurabilityGate | null;
}

/**
 * Opens a term's backend in order: writer (opens the database, migrates) -> Litestream (first upload) ->
 * checkpointer (no replica only) -> readers. Whatever opened is closed again if a later step fails.
 */
export async function openTerm(
  config: Config,
  log: Logger,
  opts: { supervisor: LitestreamSupervisor | null; fence: Fence | null; state: ServiceState; onFatal: (reason: string) => void },
): Promise<Term> {
  const { supervisor, state } = opts;
  if (supervisor) {
    // Litestream down: writes are refused (503 replication_down) rather than taken unreplicated, until it is back.
    supervisor.onDown = (reason) => state.refuseWrites(reason);
    supervisor.onUp = () => state.resumeWrites();
  }
  // durability=replicated writes wait, after their commit, for a sync through the supervisor (one in flight).
  const gate = supervisor && new DurabilityGate((ms) => supervisor.sync({ timeoutMs: ms }), config.replication!.replicationTimeoutMs, log);
  const writer = new WriterClient(config, gate, opts.fence);
  let checkpointer: Checkpointer | null = null;
  try {
    const ready = await writer.ready;
    const { sqliteVersion, userVersion } = ready;
    log.info({ dbPath: config.dbPath, sqliteVersion, schemaVersion: userVersion, synchronous: config.synchronous }, 'writer ready');
    log.info({ node: process.version, uws: uwsBuild(), sqliteVersion }, 'runtime');
    writer.onFatal = (reason) => {
      log.fatal({ reason }, 'writer failed');
      opts.onFatal(reason);
    };
    writer.onStorageFull = (full) => {
      if (full) log.error({ dbPath: config.dbPath, dbMaxBytes: config.dbMaxBytes }, 'database storage is full (SQLITE_FULL): writes answer 507 insufficient_storage until space is freed; reads still work');
      else log.info({ dbPath: config.dbPath }, 'database storage has room again: writes commit');
    };
    await supervisor?.start();
    checkpointer = await Checkpointer.start(config, log);
    const readers = await openReaders(config);
    log.info({ readers: readers.threads, mode: readers.threads === 0 ? 'inline' : 'pool' }, 'readers ready');
    // Kernel thread ids, so CPU can be read per thread from /proc (bench/lib/threads.ts): all are "node" there.
    log.info({ main: threadId(), writer: ready.tid, checkpointer: checkpointer?.tid ?? null }, 'threads');
    return { writer, readers, sqliteVersion, checkpointer, supervisor, gate };
  } catch (err) {
    await checkpointer?.close().catch(() => {});
    await supervisor?.stop({ timeoutMs: 2000 }).catch(() => {});
    await writer.close({ checkpoint: false }).catch(() => {});
    throw err;
  }
}

/** The lease went while a term was starting (a renewal refused or run out): not a failure of this instance. */
class LostWhileStarting extends Error {
  override name = 'LostWhileStarting';
}

export class Leadership {
  /** Called when a term starts serving (e.g. to apply DATA_FILE, which only a leader does). */
  onTermStarted: () => void = () => {};
  readonly fence = new Fence();
  /** Litestream's only way to the bucket: closed to it whenever the fence is down (src/replication/egress.ts). */
  private readonly egress: FencedEgress;
  /** The term being served (null: standby, or between terms). */
  term: Term | null = null;
  private readonly lease: WriterLease;
  private readonly cfg: ReplicationConfig;
  private readonly log: Logger;
  private readonly rootLog: Logger;
  private readonly pollMs: number;
  private opening: Promise<void> | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  private lastHolder = '';
  private lastPollError = '';
  /** The Litestream of a term that is starting (not yet `term`), so a loss meanwhile kills it too. */
  private starting: LitestreamSupervisor | null = null;

  constructor(
    private readonly config: Config,
    log: Logger,
    private readonly state: ServiceState,
    private readonly onFatal: (reason: string) => void,
  ) {
    this.cfg = config.replication!;
    this.rootLog = log;
    this.log = log.child({ component: 'lease' });
    this.egress = new FencedEgress(this.fence, process.env.STORAGE_EMULATOR_HOST || null, this.log);
    if (!process.env.STORAGE_EMULATOR_HOST && (process.env.HTTPS_PROXY || process.env.https_proxy)) {
      this.log.warn('HTTPS_PROXY is set: Litestream reaches Cloud Storage through the fenced egress instead (it is not chained to your proxy)');
    }
    // A standby notices a release within this: it bounds the write gap of a handover.
    this.pollMs = Math.max(50, Math.min(500, Math.round(this.cfg.leaseRenewMs / 2)));
    this.lease = new WriterLease({
      replicaUrl: this.cfg.replicaUrl,
      owner: `${process.env.K_REVISION ?? os.hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`,
      ttlMs: this.cfg.leaseTtlMs,
      renewMs: this.cfg.leaseRenewMs,
      // A request that hangs must not hold a renewal (or a standby's poll) past a good part of the TTL.
      storage: storageFromEnv(process.env, Math.min(this.cfg.connectTimeoutMs, Math.round(this.cfg.leaseTtlMs / 2))),
      now: monotonicMs,
      onHeld: (validUntil, epoch) => {
        // Renewals move the fence of this epoch's term, running or starting (a first sync that uploads a whole
        // database can outlast the TTL): a new term opens its own fence before its Litestream starts, and a revoked
        // fence (term over) is never moved again.
        if ((this.term || this.starting) && this.fence.epoch === epoch) {
          this.fence.extend(validUntil);
          m.leaseRenewals.labels('ok').inc();
        }
      },
      onRenewFailed: (err) => {
        m.leaseRenewals.labels('failed').inc();
        this.log.warn({ err: err.message, validForMs: Math.round(this.lease.validUntil - monotonicMs()) }, 'writer lease renewal failed');
      },
      onLost: (reason) => this.lost(reason),
    });
  }

  get owner(): string {
    return this.lease.owner;
  }

  /**
   * Start-up: one attempt at the lease. Held by us: the first term opens before this resolves ('leader').
   * Held by another instance: 'standby', polling from now on. Throws when the bucket cannot be read at all.
   */
  async start(): Promise<'leader' | 'standby'> {
    await this.egress.listen();
    const acq = await this.firstAttempt();
    if (acq.acquired) {
      await this.lead(acq);
      return 'leader';
    }
    this.standby(acq);
    return 'standby';
  }

  /**
   * Shutdown, once every accepted request is answered: the final upload, then the lease released with the TXID
   * the replica reached, so the next instance restores up to it and starts at once. If the upload fails the lease
   * is not released: it expires, and the next leader restores whatever the replica holds.
   */
  async handover(budgetMs: number): Promise<void> {
    this.stopping = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
    await this.opening;
    const term = this.term;
    if (!term) return;
    let txid: number | null;
    try {
      txid = (await term.supervisor!.stop({ timeoutMs: budgetMs })).txid;
    } catch (err) {
      // Not released: the lease expires, and the next leader restores whatever the replica holds.
      this.fence.revoke();
      this.endTerm('failed');
      this.lease.stop();
      throw err;
    }
    // Lost meanwhile: lost() has fenced, killed Litestream and logged the term's end.
    if (this.term !== term || !this.lease.held) throw new Error('the writer lease was lost during the final upload: not released');
    this.fence.revoke(); // drained, and nothing commits after the final upload
    this.endTerm('released');
    const lastTxid = txid === null ? null : txidHex(BigInt(txid));
    await this.lease.release(lastTxid);
    m.leaseHeld.set(0);
    this.log.info({ epoch: this.fence.epoch, lastTxid }, 'writer lease released: the next instance may lead');
  }

  // ---------------------------------------------------------------------------------------------------------

  /**
   * The first look at the lease. A network failure is retried until LITESTREAM_CONNECT_TIMEOUT_MS (a blip at start
   * is not fatal); an HTTP error (403, a missing bucket) fails at once. Either way the message says what to fix,
   * and nothing is created locally: an instance that cannot reach the bucket must not start writing.
   */
  private async firstAttempt(): Promise<AcquireResult> {
    const url = this.cfg.replicaUrl;
    const deadline = performance.now() + this.cfg.connectTimeoutMs;
    for (;;) {
      try {
        return await this.lease.tryAcquire();
      } catch (err) {
        if (!(err instanceof LeaseUnknownError)) throw err;
        const where = `gs://${this.lease.file.bucket.name}/${this.lease.file.name}`;
        if (err.status === 404) throw new ReplicaUnavailableError(`cannot use replica ${url}: the bucket doesn't exist (404 writing the writer lease ${where})`);
        // Refusals (403, 401, 400) will not change by retrying; 429 and 5xx may, like network errors.
        const refused = typeof err.status === 'number' && err.status < 500 && err.status !== 429;
        if (refused) throw new ReplicaUnavailableError(`cannot read replica ${url}: the writer lease ${where} answered Error ${err.status}: ${err.message}`);
        if (performance.now() > deadline) {
          throw new ReplicaUnavailableError(
            `replica ${url} did not answer within ${this.cfg.connectTimeoutMs} ms (LITESTREAM_CONNECT_TIMEOUT_MS; last error reading the writer lease ${where}: ` +
              `${err.message}): unreachable? Refusing to start with an empty database while a replica may exist.`,
          );
        }
        await new Promise((res) => setTimeout(res, 200));
      }
    }
  }

  /** A term: restore unless current, fence up, open the backend, serve. On failure the lease is given back. */
  private async lead(acq: Extract<AcquireResult, { acquired: true }>): Promise<void> {
    const t0 = performance.now();
    const { epoch, previous } = acq;
    const dbPath = this.config.dbPath;
    this.state.unserve('promoting');
    this.lease.start(); // renewals run from now: a long restore must not let the lease run out
    m.leaseHeld.set(1);
    m.leaseEpoch.set(epoch);
    this.log.info({ epoch, owner: this.owner, previous }, 'writer lease acquired: starting a term');
    const supervisor = new LitestreamSupervisor(this.cfg, dbPath, this.rootLog, this.config.logLevel, this.egress);
    this.starting = supervisor;
    let term: Term | null = null;
    try {
      const atLeastTxid = previous?.released ? previous.lastTxid : null;
      const restore = await supervisor.prepareDatabase({ keepLocal: localIsCurrent(dbPath, this.cfg.replicaUrl, previous?.epoch ?? null), atLeastTxid });
      markLocalEpoch(dbPath, this.cfg.replicaUrl, epoch);
      this.fence.open(epoch, this.lease.validUntil);
      term = await openTerm(this.config, this.rootLog, { supervisor, fence: this.fence, state: this.state, onFatal: this.onFatal });
      if (!this.lease.held || this.lease.epoch !== epoch || !this.fence.valid()) throw new LostWhileStarting('the writer lease was lost while the term was starting');
      this.term = term;
      this.starting = null;
      // Logged first: the held requests are answered as soon as the backend is served.
      this.log.info({ epoch, restore: restore.action, ms: Math.round(performance.now() - t0), startedAt: new Date().toISOString() }, 'leading: term started');
      this.state.serve({ writer: term.writer, readers: term.readers });
      this.onTermStarted();
    } catch (err) {
      this.starting = null;
      this.fence.revoke();
      supervisor.kill();
      if (term) await closeTerm(term).catch(() => {});
      m.leaderTerms.labels('failed').inc();
      m.leaseHeld.set(0);
      // Give the lease back as it was (the previous holder's TXID still stands) so another instance can try.
      if (this.lease.held) await this.lease.release(previous?.lastTxid ?? null).catch(() => {});
      else if (!(err instanceof LostWhileStarting)) throw new LostWhileStarting(`the writer lease was lost while the term was starting (${(err as Error).message})`);
      throw err;
    }
  }

  /** Another instance holds the lease: poll it, and lead once it is released or has expired. */
  private standby(acq?: Extract<AcquireResult, { acquired: false }>): void {
    this.state.unserve('standby');
    if (acq) this.noteHolder(acq);
    const poll = async (): Promise<void> => {
      this.pollTimer = null;
      if (this.stopping) return;
      try {
        const r = await this.lease.tryAcquire();
        this.lastPollError = '';
        if (!r.acquired) {
          this.noteHolder(r);
          return schedule();
        }
        if (this.stopping) {
          await this.lease.release(r.previous?.lastTxid ?? null).catch(() => {});
          return;
        }
        this.opening = this.lead(r).catch((err: Error) => {
          if (err instanceof LostWhileStarting) {
            this.log.warn({ err: err.message }, 'the writer lease was lost while the term was starting: standby again');
            return this.standby();
          }
          this.log.fatal({ err: err.message }, 'could not start a term as the writer');
          this.onFatal(`could not start a term as the writer: ${err.message}`);
        });
        await this.opening;
        this.opening = null;
      } catch (err) {
        // Once per distinct error, not once per poll.
        const message = (err as Error).message;
        if (message !== this.lastPollError) this.log.warn({ err: message }, 'standby: cannot read the writer lease; retrying');
        this.lastPollError = message;
        schedule();
      }
    };
    const schedule = (): void => {
      if (!this.stopping) this.pollTimer = setTimeout(() => void poll(), this.pollMs);
    };
    schedule();
  }

  private noteHolder(r: Extract<AcquireResult, { acquired: false }>): void {
    const holder = r.holder ? `${r.holder.owner}#${r.holder.epoch}` : r.reason;
    if (holder === this.lastHolder) return;
    this.lastHolder = holder;
    this.log.info({ holder: r.holder, waitMs: Math.round(r.waitMs) }, 'standby: another instance holds the writer lease; holding requests until it is released or expires');
  }

  /** The lease is gone (superseded or expired): stop writing at once, kill Litestream, become a standby. */
  private lost(reason: LostReason): void {
    this.fence.revoke();
    m.leaseRenewals.labels('lost').inc();
    m.leaseHeld.set(0);
    const term = this.term;
    this.term = null;
    this.egress.cut();
    term?.supervisor?.kill();
    this.starting?.kill(); // a term still starting: its Litestream must not run on either
    this.log.error({ reason, epoch: this.fence.epoch, ...this.lease.renewalState() }, 'writer lease lost: commits fenced, Litestream killed without a final upload; becoming a standby');
    if (!term) return; // lost while a term was starting: lead() notices and gives up
    this.endTerm('lost');
    if (this.stopping) return;
    this.state.unserve('standby');
    void closeTerm(term)
      .catch((err: Error) => this.log.error({ err: err.message }, 'closing the lost term failed'))
      .then(() => this.standby());
  }

  /** The term's last line: its epoch and what it committed, for the record of who wrote when. */
  private endTerm(end: 'released' | 'lost' | 'failed'): void {
    m.leaderTerms.labels(end).inc();
    this.log.info({ end, ...this.fence.term(), endedAt: new Date().toISOString() }, 'term ended');
  }
}

/** Closes a term that is no longer served (lost lease): readers, then the writer without a checkpoint. */
async function closeTerm(term: Term): Promise<void> {
  term.writer.stopAccepting();
  await term.readers.close();
  await term.checkpointer?.close();
  await term.writer.close({ checkpoint: false });
}
