// A read follower's copy of the replica (docs/followers.md): restored once, then kept current by polling the
// bucket for new level-0 LTX files and applying them in place (src/follower/apply.ts), in TXID order: Litestream
// 0.5.18 writes no rolling checksums into its files, so the chain is checked by TXID continuity, and the follower's
// own checksum of its copy (recorded after every apply) is what a restart checks. Its position is the writer's own
// replica position, read from the copy after every apply, so a Bookmark from a write means the same thing here. A
// gap in the chain (the follower was away longer than Litestream keeps level-0 files) or a lineage that started
// over restores again, in place. Never writes to the bucket.
import fs from 'node:fs';
import path from 'node:path';
import type { FollowerConfig } from '../shared/config.js';
import type { Logger } from '../shared/log.js';
import { followerSources, m } from '../shared/metrics.js';
import { decodeLtx, parseTxid, txidHex } from '../replication/ltx.js';
import { ReplicaUnavailableError, restoreReplica } from '../replication/restore.js';
import { ChainMismatch, checksumOfFile, PageApplier, prepareRestored } from './apply.js';
import { ReplicaSource, type LtxObject } from './source.js';

interface Sidecar {
  replicaUrl: string;
  /** The last applied TXID (hex) and the database's rolling checksum after it (hex). */
  txid: string;
  checksum: string;
}

interface Waiter {
  position: number;
  since: number;
  resolve: (reached: boolean) => void;
  timer: NodeJS.Timeout;
}

/** How often, at most, a read waiting for a Bookmark makes the follower poll ahead of its schedule. */
const EAGER_POLL_MS = 200;
/** Every this many polls, the whole level-0 listing: a writer lineage that restarted below our TXID shows there. */
const LINEAGE_CHECK_EVERY = 20;

export class Follower {
  /** replica_position.seq of the copy: the newest Bookmark it can answer. */
  position = 0;
  /** The writer's clock (ms since the epoch) when it committed that position. */
  writtenAt = 0;
  txid = 0n;
  /** performance.now() when a poll that found nothing newer than the copy began: the copy was current then. */
  private confirmedAt = Number.NEGATIVE_INFINITY;
  private applier: PageApplier | null = null;
  private readonly source: ReplicaSource;
  private readonly sidecarPath: string;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private lastPollAt = 0;
  private polls = 0;
  private stopped = false;
  private waiters: Waiter[] = [];

  constructor(
    private readonly cfg: FollowerConfig,
    private readonly dbPath: string,
    private readonly log: Logger,
  ) {
    this.source = new ReplicaSource(cfg.replicaUrl, cfg.connectTimeoutMs, (op) => m.followerGcsOps.labels(op).inc());
    this.sidecarPath = path.join(path.dirname(dbPath), `.${path.basename(dbPath)}-follower.json`);
    followerSources.copyAgeS = () => this.ageMs() / 1000;
    followerSources.dataAgeS = () => (this.writtenAt > 0 ? (Date.now() - this.writtenAt) / 1000 : 0);
  }

  /** Milliseconds since the copy was last confirmed current (Infinity before the first poll). */
  ageMs(): number {
    return performance.now() - this.confirmedAt;
  }

  /** Restores (or resumes from the record of its last apply), then follows. Throws if the replica cannot be read. */
  async start(): Promise<void> {
    fs.mkdirSync(path.dirname(this.dbPath), { recursive: true });
    const resumed = this.resume();
    if (!resumed) await this.restore('start', 'no usable local copy');
    this.readPosition();
    this.log.info({ position: this.position, txid: this.txid.toString(16), resumed }, 'follower: copy ready');
    await this.pollOnce(); // confirm it is current before serving
    this.schedule(this.cfg.pollMs);
  }

  /**
   * Resolves true once the copy holds `position` and was confirmed current at or after `since` (performance.now();
   * -Infinity: any time), false after `timeoutMs`. Polls ahead of schedule meanwhile.
   */
  waitFor(position: number, since: number, timeoutMs: number): Promise<boolean> {
    if (this.position >= position && this.confirmedAt >= since) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w: Waiter = {
        position,
        since,
        resolve,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          resolve(false);
        }, timeoutMs),
      };
      this.waiters.push(w);
      this.pollSoon();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.polling?.catch(() => {});
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    this.waiters = [];
    this.applier?.close();
    this.applier = null;
  }

  /** The record of the last apply, if it names this replica and the file still matches its checksum. */
  private resume(): boolean {
    let side: Sidecar;
    try {
      side = JSON.parse(fs.readFileSync(this.sidecarPath, 'utf8')) as Sidecar;
    } catch {
      return false;
    }
    if (side.replicaUrl !== this.cfg.replicaUrl || !fs.existsSync(this.dbPath)) return false;
    const checksum = checksumOfFile(this.dbPath);
    if (checksum !== BigInt(`0x${side.checksum}`)) {
      this.log.warn({ recorded: side.checksum, found: checksum.toString(16) }, 'follower: the local copy does not match the record of its last apply (stopped mid-apply?): restoring');
      return false;
    }
    this.txid = parseTxid(side.txid);
    this.applier = new PageApplier(this.dbPath, { checksum });
    return true;
  }

  /** A full restore with the litestream CLI into a temporary file, then into place (in place if serving). */
  private async restore(why: 'start' | 'gap' | 'fork', detail: string): Promise<void> {
    const t0 = performance.now();
    const tmp = `${this.dbPath}.restoring`;
    for (const f of [tmp, `${tmp}.tmp`]) fs.rmSync(f, { force: true });
    const hex = await restoreReplica(this.cfg, this.cfg.replicaUrl, tmp, process.env, this.log);
    if (hex === null) throw new ReplicaUnavailableError(`restore of ${this.cfg.replicaUrl}: litestream did not say which TXID it restored to`);
    const txid = parseTxid(hex);
    const checksum = prepareRestored(tmp);
    if (this.applier) {
      this.applier.replaceFrom(tmp, checksum);
      fs.rmSync(tmp, { force: true });
    } else {
      for (const suffix of ['-wal', '-shm', '-journal']) fs.rmSync(this.dbPath + suffix, { force: true });
      fs.renameSync(tmp, this.dbPath);
      this.applier = new PageApplier(this.dbPath, { checksum });
    }
    this.txid = txid;
    this.record();
    m.followerRestores.labels(why).inc();
    this.log.info({ why, detail, txid: txid.toString(16), ms: Math.round(performance.now() - t0) }, 'follower: restored the replica');
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.poll().finally(() => this.schedule(this.waiters.length > 0 ? EAGER_POLL_MS : this.cfg.pollMs));
    }, ms);
    this.timer.unref();
  }

  /** A read waits for a position the copy has not reached: poll now, or as soon as EAGER_POLL_MS allows. */
  private pollSoon(): void {
    if (this.polling) return; // its end schedules the next one, soon while someone waits
    this.schedule(Math.max(0, this.lastPollAt + EAGER_POLL_MS - performance.now()));
  }

  private poll(): Promise<void> {
    this.polling ??= this.pollOnce()
      .catch((err: Error) => {
        m.followerPolls.labels('failed').inc();
        this.log.warn({ err: err.message, ageMs: Math.round(this.ageMs()) }, 'follower: poll failed');
      })
      .finally(() => (this.polling = null));
    return this.polling;
  }

  /** One LIST, then every new file applied in order. The copy is current as of the LIST if nothing failed. */
  private async pollOnce(): Promise<void> {
    const startedAt = (this.lastPollAt = performance.now());
    this.polls++;
    let files = await this.source.after(this.txid);
    if (files.length === 0 && this.polls % LINEAGE_CHECK_EVERY === 0) files = await this.lineageCheck();
    let applied = 0;
    for (const f of files) {
      if (this.stopped) return;
      if (f.max <= this.txid) continue;
      if (f.min !== this.txid + 1n) {
        await this.restore('gap', `the replica's next level-0 file starts at ${f.min.toString(16)}, after ${this.txid.toString(16)}`);
        break;
      }
      if (!(await this.applyFile(f))) break;
      applied++;
    }
    if (applied > 0 || files.length > 0) this.readPosition();
    this.confirmedAt = startedAt;
    this.settle();
    m.followerPolls.labels(applied > 0 ? 'applied' : 'current').inc();
    m.followerAppliedFiles.inc(applied);
  }

  /** Applies one file; a fork (its pre-apply checksum is not our copy's) restores instead. False: stop this poll. */
  private async applyFile(f: LtxObject): Promise<boolean> {
    const file = decodeLtx(await this.source.download(f));
    try {
      this.applier!.apply(file);
    } catch (err) {
      if (!(err instanceof ChainMismatch)) throw err;
      await this.restore('fork', err.message);
      return false;
    }
    this.txid = f.max;
    this.record();
    return true;
  }

  /** Nothing newer than our TXID: is the replica's newest level-0 file below it (a lineage that started over)? */
  private async lineageCheck(): Promise<LtxObject[]> {
    const all = await this.source.all();
    const newest = all.at(-1);
    if (newest && newest.max < this.txid) {
      await this.restore('fork', `the replica's newest level-0 file ends at ${newest.max.toString(16)}, below this copy's ${this.txid.toString(16)}`);
    }
    return [];
  }

  /** The copy's replica position; the waiters it satisfies are answered. */
  private readPosition(): void {
    let row: { seq: number; writtenAt: number } | undefined;
    try {
      row = this.applier!.db.prepare('SELECT seq, written_at AS writtenAt FROM replica_position WHERE id = 1').get() as typeof row;
    } catch (err) {
      // A writer from before the replica position (schema version < 5): no Bookmark can be answered here.
      if (!/no such table/.test((err as Error).message)) throw err;
    }
    if (row) {
      this.position = row.seq;
      this.writtenAt = row.writtenAt;
    }
    m.followerPosition.set(this.position);
  }

  /** Answers the waiters the copy now satisfies. */
  private settle(): void {
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.position <= this.position && w.since <= this.confirmedAt) {
        clearTimeout(w.timer);
        w.resolve(true);
      } else still.push(w);
    }
    this.waiters = still;
  }

  /** After every apply (the pages are synced by then): where to resume from, and the checksum to find there. */
  private record(): void {
    const side: Sidecar = { replicaUrl: this.cfg.replicaUrl, txid: txidHex(this.txid), checksum: this.applier!.checksum.toString(16) };
    const tmp = `${this.sidecarPath}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(side));
    fs.renameSync(tmp, this.sidecarPath);
  }
}

