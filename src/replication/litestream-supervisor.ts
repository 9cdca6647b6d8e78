// Runs `litestream replicate` as a child process of the server (not `replicate -exec`): the server orders
// restore -> open + migrate -> replicate -> ready, and on shutdown drain -> final upload -> stop. The control
// socket is the only way we talk to it; its stdout/stderr become our log lines.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { ReplicationConfig } from '../shared/config.js';
import { AppError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { m } from '../shared/metrics.js';
import { control, postStop, postSync, type SyncResult } from './control-socket.js';
import type { FencedEgress } from './egress.js';
import { eachLine, logLitestreamLine, spawnChecked } from './process-io.js';
import { metaDir, prepareDatabase, replicaL0MaxTxid, type PrepareOptions, type RestoreOutcome } from './restore.js';
import { writeResumePoint } from './resume-point.js';

export type { SyncResult };

interface Proc {
  child: ChildProcess;
  exited: Promise<string>;
  /** Set before we stop it on purpose, so its exit is not reported as a failure. */
  expected: boolean;
}

type State = 'idle' | 'starting' | 'running' | 'down' | 'stopping' | 'stopped';

/** Every supervisor of the process (one per term as the writer): their Litestreams die with the process. */
const live = new Set<LitestreamSupervisor>();
// An orphaned Litestream would keep a read transaction on the database and race the next one: never leave it.
process.once('exit', () => {
  for (const s of live) s.killOnExit();
});

/** A healthy run this long resets the restart budget. */
const STABLE_MS = 60_000;
const MAX_RESTART_DELAY_MS = 30_000;

export class LitestreamSupervisor {
  private state: State = 'idle';
  private proc: Proc | null = null;
  private restarts = 0;
  private upSince = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private restarting: Promise<void> | null = null;
  private inflight: Promise<SyncResult> | null = null;
  private queued: Promise<SyncResult> | null = null;
  private downReason = '';
  /** Set by a restore in this process, used (once) by start(): where the restored file stands in the replica's chain. */
  private restored: Extract<RestoreOutcome, { action: 'restored' }> | null = null;
  /** POST /sync requests actually sent (callers that ride a pass do not add one). */
  syncPasses = 0;
  /** Litestream died while the server runs: stop taking writes. */
  onDown: (reason: string) => void = () => {};
  /** Litestream is back (restarted): writes may resume. */
  onUp: () => void = () => {};

  private readonly env: NodeJS.ProcessEnv;
  private readonly log: Logger;

  constructor(
    private readonly cfg: ReplicationConfig,
    private readonly dbPath: string,
    log: Logger,
    logLevel: string,
    /** With a writer lease: `replicate` reaches the bucket only through this, and only while the lease is valid. */
    private readonly egress: FencedEgress | null = null,
  ) {
    this.log = log.child({ component: 'litestream' });
    // litestream.yml reads these (Litestream expands ${VAR}); LOG_LEVEL overrides the yml's level in Litestream.
    // Everything else (GOOGLE_APPLICATION_CREDENTIALS, STORAGE_EMULATOR_HOST, ...) passes through.
    this.env = {
      ...process.env,
      DB_PATH: dbPath,
      REPLICA_URL: cfg.replicaUrl,
      LITESTREAM_SYNC_INTERVAL: cfg.syncInterval,
      LITESTREAM_SOCKET: cfg.socketPath,
      LITESTREAM_METRICS_ADDR: cfg.metricsAddr,
      LOG_LEVEL: ({ trace: 'debug', debug: 'debug', info: 'info', warn: 'warn' } as Record<string, string>)[logLevel] ?? 'error',
    };
    m.litestreamUp.set(0);
    live.add(this);
  }

  get pid(): number | undefined {
    return this.proc?.child.pid;
  }

  /** Before the database is opened: restore it from the replica unless the local file is current. Throws if the replica cannot be read. */
  async prepareDatabase(opts: PrepareOptions): Promise<RestoreOutcome> {
    const outcome = await prepareDatabase(this.cfg, this.dbPath, this.env, this.log, opts);
    if (outcome.action === 'restored') this.restored = outcome;
    return outcome;
  }

  /** After migrations: start replicating, and resolve once the control socket answers and a first sync uploaded everything. */
  async start(): Promise<void> {
    if (this.state !== 'idle') throw new Error(`litestream supervisor: start() in state ${this.state}`);
    this.state = 'starting';
    await this.refuseSecondInstance();
    await this.resumeAfterRestore();
    try {
      await this.launch(this.cfg.startTimeoutMs, true);
    } catch (err) {
      this.state = 'stopped';
      throw err;
    }
    this.markUp();
  }

  /**
   * The entry point for "is what I committed in the replica?": resolves once everything committed before the call
   * is uploaded (POST /sync with wait, through postSync). Group replication, like group commit: at most one request
   * is in flight, and callers arriving meanwhile (who may have committed after it started) share the next pass,
   * which starts as soon as the current one returns. Rejects with `replication_down` when Litestream is not running
   * or the pass failed.
   */
  sync(opts: { timeoutMs?: number } = {}): Promise<SyncResult> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    if (!this.inflight) {
      this.inflight = this.syncPass(timeoutMs).finally(() => (this.inflight = null));
      return this.inflight;
    }
    const after = this.inflight.then(
      () => {},
      () => {},
    );
    return (this.queued ??= after.then(() => {
      this.queued = null;
      return this.sync({ timeoutMs });
    }));
  }

  /**
   * Final upload, then Litestream exits, all within timeoutMs: POST /sync (wait) uploads everything committed
   * (200 = in the replica), POST /stop closes the database on Litestream's side, then SIGTERM, and SIGKILL at the
   * deadline, because with the replica unreachable /sync, /stop and SIGTERM can each hang far past Cloud Run's 10 s.
   */
  async stop(opts: { timeoutMs: number }): Promise<{ txid: number | null; ms: number }> {
    if (this.state === 'idle' || this.state === 'stopped') return { txid: null, ms: 0 };
    const t0 = performance.now();
    const deadline = t0 + Math.max(0, opts.timeoutMs);
    const left = () => deadline - performance.now();
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.state = 'stopping';
    if (this.restarting) {
      // A restart still connecting may take its whole start-up timeout: cut it short and start one we can bound.
      if (this.proc) {
        this.proc.expected = true;
        this.proc.child.kill('SIGKILL');
      }
      await this.restarting.catch(() => {});
    }
    const child = this.proc?.child;
    const alive = !!child && !this.proc!.expected && child.exitCode === null && child.signalCode === null;
    let error: Error | null = null;
    let txid: number | null = null;
    try {
      if (!alive) {
        // Commits made after it died are only local: a fresh instance ships them (restarting is safe, see below).
        this.log.warn({ budgetMs: Math.round(left()) }, 'litestream is not running at shutdown: starting it once for the final upload');
        await this.launch(left(), false);
      }
      // POST /sync (wait) first: /stop alone uploads nothing from a Litestream that has not initialised the
      // database yet (one started a moment ago, as above), yet answers 200. /sync forces it and confirms the upload.
      txid = (await postSync(this.cfg.socketPath, this.dbPath, left(), left())).replicatedTxid;
      // Then close it on Litestream's side (releases its read transaction; nothing is left to upload).
      await postStop(this.cfg.socketPath, this.dbPath, left());
    } catch (err) {
      error = new Error(`final upload to ${this.cfg.replicaUrl} failed: ${(err as Error).message}`);
    }
    await this.terminate(deadline);
    this.state = 'stopped';
    live.delete(this);
    m.litestreamUp.set(0);
    const ms = Math.round(performance.now() - t0);
    if (error) throw error;
    this.log.info({ txid, ms }, 'litestream stopped after its final upload');
    return { txid, ms };
  }

  /** At process exit (synchronous): no Litestream outlives the server. */
  killOnExit(): void {
    this.proc?.child.kill('SIGKILL');
  }

  /**
   * Fencing: the writer lease is gone. SIGKILL at once, with no final upload: a stale leader must not upload
   * anything more (its files would overwrite the next leader's, which carry the same names).
   */
  kill(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.state = 'stopped';
    live.delete(this);
    m.litestreamUp.set(0);
    if (this.proc && this.proc.child.exitCode === null && this.proc.child.signalCode === null) {
      this.proc.expected = true;
      this.proc.child.kill('SIGKILL');
      this.log.warn({ litestreamPid: this.proc.child.pid }, 'litestream killed: the writer lease is gone (no final upload)');
    }
  }

  // ---------------------------------------------------------------------------------------------------------

  /**
   * After a restore, tell Litestream where the restored file stands in the replica's chain (resume-point.ts), so its
   * first sync uploads what changed since (migrations, a few pages) instead of a new full snapshot. Best effort: if
   * it cannot be done safely nothing is written, and Litestream snapshots as it would anyway.
   */
  private async resumeAfterRestore(): Promise<void> {
    const restored = this.restored;
    this.restored = null;
    if (!restored) return;
    const fallBack = (reason: string) =>
      this.log.warn({ reason, restoredTxid: restored.txid }, 'cannot resume the replica after the restore: litestream will upload a full snapshot');
    try {
      if (!/^[0-9a-f]{1,16}$/.test(restored.txid)) return fallBack(`unexpected restored txid ${JSON.stringify(restored.txid)}`);
      // Litestream uploads L0 files from the replica's newest L0 TXID + 1: it must be the one we restored to, or it
      // would look for local files we do not have (L0 behind: stuck) or skip ours (someone else wrote meanwhile).
      const l0 = await replicaL0MaxTxid(this.cfg, this.env, this.log);
      if (l0 === null || BigInt(`0x${l0}`) !== BigInt(`0x${restored.txid}`)) return fallBack(`the replica's newest L0 TXID is ${l0 ?? 'unknown'}`);
      const r = writeResumePoint(this.dbPath, metaDir(this.dbPath), restored.txid, restored.stamp);
      if (!r.written) return fallBack(r.reason);
      this.log.info({ restoredTxid: restored.txid, resumeTxid: r.txid }, 'resuming the replica after the restore: no new snapshot');
    } catch (err) {
      fallBack((err as Error).message);
    }
  }

  private async syncPass(timeoutMs: number): Promise<SyncResult> {
    if (this.state !== 'running') throw new AppError('replication_down', this.downReason || `litestream is ${this.state}`);
    this.syncPasses++;
    const t0 = performance.now();
    try {
      const r = await postSync(this.cfg.socketPath, this.dbPath, timeoutMs);
      m.litestreamSyncSeconds.labels('ok').observe((performance.now() - t0) / 1000);
      return r;
    } catch (err) {
      m.litestreamSyncSeconds.labels('failed').observe((performance.now() - t0) / 1000);
      throw new AppError('replication_down', `sync to the replica failed: ${(err as Error).message}`);
    }
  }

  /** Two replicators on one database would overwrite each other's replica: refuse if the socket already answers. */
  private async refuseSecondInstance(): Promise<void> {
    if (!fs.existsSync(this.cfg.socketPath)) return;
    const info = await control(this.cfg.socketPath, 'GET', '/info', undefined, 1000).catch(() => null);
    if (info?.status === 200) {
      throw new Error(
        `another Litestream (pid ${String(info.body.pid)}) already answers on ${this.cfg.socketPath}: is another server running on ${this.dbPath}?`,
      );
    }
  }

  /** Spawns `litestream replicate`, waits for its control socket, and optionally for a first full upload. */
  private async launch(timeoutMs: number, firstSync: boolean): Promise<void> {
    const t0 = performance.now();
    const deadline = t0 + timeoutMs;
    const env = this.egress ? { ...this.env, ...this.egress.env() } : this.env;
    const child = await spawnChecked(this.cfg.bin, ['replicate', '-config', this.cfg.configPath], env);
    if (this.state === 'stopped') {
      // kill() came while it was being spawned (fenced): it must not run at all.
      child.kill('SIGKILL');
      throw new Error('litestream was stopped while starting (the writer lease is gone)');
    }
    eachLine(child.stdout!, (line) => logLitestreamLine(this.log, line, 'stdout'));
    eachLine(child.stderr!, (line) => logLitestreamLine(this.log, line, 'stderr'));
    const proc: Proc = {
      child,
      expected: false,
      exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? `code ${code}`))),
    };
    this.proc = proc;
    let exitedEarly: string | null = null;
    void proc.exited.then((how) => {
      exitedEarly = how;
      if (!proc.expected && this.proc === proc) this.onExit(how);
    });
    try {
      // Litestream opens the store first and the socket after; a config it cannot use makes it exit instead,
      // and a socket it cannot bind is only a warning in its log, which the deadline turns into a failure.
      let info: Record<string, unknown> | null = null;
      while (!info) {
        if (exitedEarly) throw new Error(`litestream replicate exited during start-up (${exitedEarly}); see its log lines above`);
        if (performance.now() > deadline) throw new Error(`litestream control socket ${this.cfg.socketPath} did not answer within ${timeoutMs} ms`);
        const r = await control(this.cfg.socketPath, 'GET', '/info', undefined, 500).catch(() => null);
        if (r?.status === 200 && r.body.pid === child.pid) info = r.body;
        else await new Promise((res) => setTimeout(res, 50));
      }
      this.log.info({ litestreamPid: child.pid, version: info.version, ms: Math.round(performance.now() - t0) }, 'litestream started');
      if (firstSync) {
        // Proves the replica is writable with these credentials, and that what we start with is in it.
        const left = deadline - performance.now();
        const r = await postSync(this.cfg.socketPath, this.dbPath, left, left).catch((err: Error) => {
          throw new Error(`first sync to ${this.cfg.replicaUrl} failed: ${err.message}`);
        });
        this.log.info({ txid: r.txid, replicatedTxid: r.replicatedTxid, ms: Math.round(performance.now() - t0) }, 'litestream first sync done');
      }
    } catch (err) {
      proc.expected = true;
      child.kill('SIGKILL');
      await proc.exited;
      throw err;
    }
  }

  private markUp(): void {
    this.state = 'running';
    this.upSince = Date.now();
    this.downReason = '';
    m.litestreamUp.set(1);
  }

  /** Litestream died on its own. */
  private onExit(how: string): void {
    if (this.state !== 'running') return;
    this.state = 'down';
    m.litestreamUp.set(0);
    this.downReason = `litestream exited unexpectedly (${how}); writes are refused until it is back`;
    this.log.error({ how, restartsSoFar: this.restarts }, this.downReason);
    this.onDown(this.downReason);
    if (Date.now() - this.upSince > STABLE_MS) this.restarts = 0;
    this.scheduleRestart();
  }

  /**
   * Restarting is safe: Litestream keeps no state that only the dead process knew. On start it compares the
   * replica's position with its local LTX files and the WAL, fetches what it lacks, and takes a new snapshot
   * when it cannot prove the WAL is continuous. Nothing rewrites the WAL while it is down: the app never
   * checkpoints while replicating (wal_autocheckpoint = 0, no TRUNCATE) and writes are refused. We restart only
   * after the old process has exited, so two never run at once. Bounded by LITESTREAM_MAX_RESTARTS (crash loops).
   */
  private scheduleRestart(): void {
    if (this.restarts >= this.cfg.maxRestarts) {
      this.log.error({ maxRestarts: this.cfg.maxRestarts }, 'not restarting litestream (LITESTREAM_MAX_RESTARTS): writes stay refused');
      return;
    }
    const delay = Math.min(this.cfg.restartDelayMs * 2 ** this.restarts, MAX_RESTART_DELAY_MS);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.state !== 'down') return;
      this.restarts++;
      m.litestreamRestarts.inc();
      this.log.warn({ attempt: this.restarts }, 'restarting litestream');
      this.restarting = this.launch(this.cfg.startTimeoutMs, true);
      this.restarting.then(
        () => {
          this.restarting = null;
          if (this.state !== 'down') return;
          this.markUp();
          this.log.info({ restarts: this.restarts }, 'litestream is back: writes resume');
          this.onUp();
        },
        (err: Error) => {
          this.restarting = null;
          this.log.error({ err: err.message, attempt: this.restarts }, 'litestream restart failed');
          if (this.state === 'down') this.scheduleRestart();
        },
      );
    }, delay);
  }

  /** SIGTERM, then SIGKILL at the deadline (at least 200 ms after the SIGTERM). */
  private async terminate(deadline: number): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
    proc.expected = true;
    proc.child.kill('SIGTERM');
    const wait = Math.max(200, deadline - performance.now());
    let timer: NodeJS.Timeout | undefined;
    const how = await Promise.race([proc.exited, new Promise<null>((res) => (timer = setTimeout(() => res(null), wait)))]);
    clearTimeout(timer);
    if (how === null) {
      this.log.error({ litestreamPid: proc.child.pid }, 'litestream did not exit after SIGTERM in time: SIGKILL');
      proc.child.kill('SIGKILL');
      await proc.exited;
    } else {
      this.log.info({ how }, 'litestream exited');
    }
  }
}
