// The writer lease (issue 16, point 1): one object, `<replica path>/lease.json`, beside the replica in the bucket
// (Litestream only touches `<path>/ltx/`). Every write to it is conditional on the generation its writer last saw,
// so of two contenders at most one succeeds and the other gets 412. Nothing compares clocks across hosts: the
// holder counts its validity from the start of its last successful write, a contender counts a lease as expired
// only after it saw the same generation unchanged for TTL + margin, both on their own monotonic clock.
// Used by src/leadership.ts; see docs/lease.md.
import { performance } from 'node:perf_hooks';
import { Storage, type File } from '@google-cloud/storage';

export interface LeaseBody {
  /** +1 on every acquisition: a fencing token for whatever the holder writes. */
  epoch: number;
  owner: string;
  /** True once the holder gave the lease up: a contender may take it at once. */
  released: boolean;
  /** Litestream TXID the holder declared at release (null until then): the next holder restores to it first. */
  lastTxid: string | null;
}
export type LeaseRead = { generation: string; body: LeaseBody };
export type AcquireResult =
  | { acquired: true; epoch: number; generation: string; /** The lease as it was before we took it (null: none). */ previous: LeaseBody | null }
  | { acquired: false; holder: LeaseBody | null; reason: 'held' | 'contended'; waitMs: number };
export type LostReason = 'superseded' | 'expired';

/** 412: someone else wrote the lease since we last saw it. */
export class LeaseConflictError extends Error {
  override name = 'LeaseConflictError';
}
/** The write or read failed for another reason (network, timeout, 5xx, permissions): its outcome is unknown. */
export class LeaseUnknownError extends Error {
  override name = 'LeaseUnknownError';
  status: number | string | undefined; // the HTTP status or network error code, if any
}

export interface LeaseOptions {
  /** `gs://bucket/path`: the replica URL; the lease is `<path>/lease.json`. */
  replicaUrl: string;
  /** This process, unique per start (e.g. instance id + pid + random). */
  owner: string;
  ttlMs: number;
  renewMs: number;
  /** Slack for pauses and clock-rate drift, on both sides; default TTL / 5. */
  marginMs?: number;
  /** Default: application default credentials, or STORAGE_EMULATOR_HOST; pass one with autoRetry off. */
  storage?: Storage;
  /** Monotonic milliseconds; tests may pass a fake. */
  now?: () => number;
  onLost?: (reason: LostReason) => void;
  /** After every acquisition and successful renewal: the new validUntil (for the writer's fence). */
  onHeld?: (validUntil: number, epoch: number) => void;
  /** A renewal of the loop failed (the lease is kept until validUntil unless the error was a 412). */
  onRenewFailed?: (err: Error) => void;
}

/**
 * The client the server uses: application default credentials (the metadata server on Cloud Run), or the emulator
 * named by STORAGE_EMULATOR_HOST. Litestream (Go) takes that variable as host:port; the Node client (8.x) uses it raw
 * as its JSON API base URL, so for its construction only it becomes http://host:port/storage/v1 (without the path,
 * reads go to /b/... and fake-gcs-server answers 404: every lease would look absent).
 */
export function storageFromEnv(env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Storage {
  const host = env.STORAGE_EMULATOR_HOST;
  // No auto-retry: a retried conditional write whose first attempt landed gets 412. The renew loop retries.
  if (!host) return new Storage({ retryOptions: { autoRetry: false }, timeout: timeoutMs });
  const endpoint = /^https?:\/\//.test(host) ? host : `http://${host}`;
  const saved = process.env.STORAGE_EMULATOR_HOST;
  process.env.STORAGE_EMULATOR_HOST = `${endpoint.replace(/\/+$/, '')}/storage/v1`;
  try {
    return new Storage({ apiEndpoint: endpoint, projectId: 'emulator', retryOptions: { autoRetry: false }, timeout: timeoutMs });
  } finally {
    if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
    else process.env.STORAGE_EMULATOR_HOST = saved;
  }
}

/** `gs://bucket/a/b/` -> { bucket, prefix: 'a/b' }; `who` names what needs it in the error for any other URL. */
export function gsLocation(replicaUrl: string, who: string): { bucket: string; prefix: string } {
  const m = /^gs:\/\/([^/]+)\/?(.*)$/.exec(replicaUrl);
  if (!m) throw new Error(`${who} needs a gs:// replica URL, not ${JSON.stringify(replicaUrl)}`);
  return { bucket: m[1]!, prefix: m[2]!.replace(/\/+$/, '') };
}

/** `gs://bucket/a/b` -> { bucket, object: 'a/b/lease.json' }. */
export function leaseLocation(replicaUrl: string): { bucket: string; object: string } {
  const { bucket, prefix } = gsLocation(replicaUrl, 'the writer lease');
  return { bucket, object: prefix ? `${prefix}/lease.json` : 'lease.json' };
}

function classify(err: unknown, what: string): Error {
  const code = (err as { code?: number | string }).code;
  if (code === 412) return new LeaseConflictError(`${what}: the lease changed since it was read (412)`);
  const e = new LeaseUnknownError(`${what}: ${(err as Error).message ?? String(err)}`, { cause: err });
  e.status = code;
  return e;
}

/** The margin a lease keeps below its TTL unless told otherwise: a holder may act for TTL - margin after each renewal. */
export function defaultMarginMs(ttlMs: number): number {
  return Math.round(ttlMs / 5);
}

export class WriterLease {
  readonly file: File;
  readonly owner: string;
  readonly ttlMs: number;
  readonly renewMs: number;
  readonly marginMs: number;
  private readonly now: () => number;
  private readonly onLost: (reason: LostReason) => void;
  private readonly onHeld: (validUntil: number, epoch: number) => void;
  private readonly onRenewFailed: (err: Error) => void;
  /** Held: our last confirmed write's generation and epoch. */
  private mine: { generation: string; epoch: number } | null = null;
  private until = 0;
  /** As a contender: the generation we saw and when (our clock) we first saw it. */
  private seen: { generation: string; since: number } | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private renewStartedAt = 0;
  private heldAt = 0;
  private expiryTimer: NodeJS.Timeout | null = null;
  private inflight: Promise<void> | null = null;

  constructor(opts: LeaseOptions) {
    const { bucket, object } = leaseLocation(opts.replicaUrl);
    const storage = opts.storage ?? storageFromEnv();
    this.file = storage.bucket(bucket).file(object);
    this.owner = opts.owner;
    this.ttlMs = opts.ttlMs;
    this.renewMs = opts.renewMs;
    this.marginMs = opts.marginMs ?? defaultMarginMs(opts.ttlMs);
    if (this.renewMs >= this.ttlMs - this.marginMs) throw new Error(`lease renewMs ${this.renewMs} must be below TTL - margin`);
    this.now = opts.now ?? (() => performance.now());
    this.onLost = opts.onLost ?? (() => {});
    this.onHeld = opts.onHeld ?? (() => {});
    this.onRenewFailed = opts.onRenewFailed ?? (() => {});
  }

  get held(): boolean { return this.mine !== null; }
  get epoch(): number | null { return this.mine?.epoch ?? null; }
  /** Local monotonic time until which we may act as the writer (start of last good write + TTL - margin); 0 if not held. */
  get validUntil(): number { return this.mine ? this.until : 0; }

  /** The lease object now, or null if there is none. */
  async read(): Promise<LeaseRead | null> {
    // Metadata, then the body of exactly that generation: a write in between makes the download 404; read again.
    for (let attempt = 0; attempt < 5; attempt++) {
      let generation: string;
      try {
        const [md] = await this.file.getMetadata();
        generation = String(md.generation);
      } catch (err) {
        if ((err as { code?: unknown }).code === 404) return null;
        throw classify(err, 'read lease');
      }
      try {
        const [buf] = await this.file.bucket.file(this.file.name, { generation }).download();
        return { generation, body: parseBody(buf.toString('utf8')) };
      } catch (err) {
        if ((err as { code?: unknown }).code !== 404) throw classify(err, 'read lease');
      }
    }
    throw new LeaseUnknownError('read lease: it kept changing between metadata and body');
  }

  /**
   * Takes the lease if there is none, it was released, or its generation stayed unchanged for TTL + margin on
   * our clock since we first saw it (call this repeatedly: each call observes). Throws LeaseUnknownError when
   * the bucket cannot be reached (the lease is then not held: an unknown create simply ages and is taken over later).
   */
  async tryAcquire(): Promise<AcquireResult> {
    if (this.mine) return { acquired: true, epoch: this.mine.epoch, generation: this.mine.generation, previous: null };
    const cur = await this.read();
    const t = this.now();
    if (cur && !cur.body.released) {
      if (this.seen?.generation !== cur.generation) this.seen = { generation: cur.generation, since: t };
      const waitMs = this.seen.since + this.ttlMs + this.marginMs - t;
      if (waitMs > 0) return { acquired: false, holder: cur.body, reason: 'held', waitMs };
    }
    const epoch = (cur?.body.epoch ?? 0) + 1;
    try {
      const generation = await this.write({ epoch, owner: this.owner, released: false, lastTxid: null }, cur?.generation ?? 0);
      this.hold(generation, epoch, t);
      return { acquired: true, epoch, generation, previous: cur?.body ?? null };
    } catch (err) {
      if (!(err instanceof LeaseConflictError)) throw err;
      this.seen = null; // someone else got in first: watch their generation from now on
      return { acquired: false, holder: cur?.body ?? null, reason: 'contended', waitMs: this.ttlMs + this.marginMs };
    }
  }

  /** One renewal: extends validUntil, or on 412 marks the lease lost (onLost('superseded')) and throws. */
  renew(): Promise<void> {
    this.renewStartedAt = this.now();
    this.inflight = this.renewOnce().finally(() => (this.inflight = null));
    return this.inflight;
  }

  /**
   * For the log line of a loss: ms since the last successful write of the lease started, and how long the renewal
   * in flight has been waiting (null: none). A lease that expires with no renewal in flight points at a blocked
   * event loop or a starved process; one in flight, at a slow or unreachable bucket.
   */
  renewalState(): { sinceLastHeldMs: number; inflightMs: number | null } {
    const now = this.now();
    return { sinceLastHeldMs: Math.round(now - this.heldAt), inflightMs: this.inflight ? Math.round(now - this.renewStartedAt) : null };
  }

  private async renewOnce(): Promise<void> {
    const mine = this.mine;
    if (!mine) throw new LeaseConflictError('renew: the lease is not held');
    const t = this.now();
    try {
      const generation = await this.write({ epoch: mine.epoch, owner: this.owner, released: false, lastTxid: null }, mine.generation);
      if (this.mine === mine) this.hold(generation, mine.epoch, t); // else: released or lost meanwhile
    } catch (err) {
      if (err instanceof LeaseConflictError && (await this.adoptOwnWrite(mine))) return this.renewOnce();
      if (this.mine !== mine) throw err;
      if (err instanceof LeaseConflictError) this.lose('superseded');
      else if (this.now() >= this.until) this.lose('expired');
      throw err;
    }
  }

  /** Gives the lease up with a conditional write (released: true): a stale holder's release gets 412, nothing is clobbered. */
  async release(lastTxid: string | null): Promise<void> {
    const mine = this.mine;
    if (!mine) throw new LeaseConflictError('release: the lease is not held');
    this.stop();
    await this.inflight?.catch(() => {}); // a renewal in flight moves our generation: release from where it lands
    const last = this.mine;
    this.mine = null;
    if (!last) throw new LeaseConflictError('release: the lease was lost during a renewal');
    await this.write({ epoch: last.epoch, owner: this.owner, released: true, lastTxid }, last.generation);
  }

  /** Renews every renewMs until stop(), release() or loss; failed renewals are retried until validUntil passes. */
  start(): void {
    if (this.renewTimer || !this.mine) return;
    const tick = (): void => {
      // stop() or release() during a renewal cleared renewTimer: the loop ends there.
      this.renewTimer = setTimeout(
        () =>
          void this.renew()
            .catch((err: Error) => this.onRenewFailed(err))
            .then(() => this.mine && this.renewTimer && tick()),
        this.renewMs,
      );
      this.renewTimer.unref();
    };
    tick();
  }

  stop(): void {
    clearTimeout(this.renewTimer ?? undefined);
    clearTimeout(this.expiryTimer ?? undefined);
    this.renewTimer = this.expiryTimer = null;
  }

  private hold(generation: string, epoch: number, startedAt: number): void {
    this.mine = { generation, epoch };
    this.heldAt = startedAt;
    this.until = startedAt + this.ttlMs - this.marginMs;
    this.seen = null;
    this.onHeld(this.until, epoch);
    // A renewal that hangs must not keep us writing past validUntil: the loss fires on our clock regardless.
    clearTimeout(this.expiryTimer ?? undefined);
    this.expiryTimer = setTimeout(() => this.mine && this.now() >= this.until && this.lose('expired'), Math.max(0, this.until - this.now()) + 1);
    this.expiryTimer.unref();
  }

  private lose(reason: LostReason): void {
    if (!this.mine) return;
    this.mine = null;
    this.stop();
    this.onLost(reason);
  }

  /** After a renewal of unknown outcome, the object may carry our own write: same owner and epoch, so adopt it. */
  private async adoptOwnWrite(mine: { generation: string; epoch: number }): Promise<boolean> {
    const cur = await this.read().catch(() => null);
    if (!cur || this.mine !== mine || cur.generation === mine.generation) return false;
    if (cur.body.owner !== this.owner || cur.body.epoch !== mine.epoch || cur.body.released) return false;
    mine.generation = cur.generation;
    return true;
  }

  /** A multipart upload (resumable: false) with ifGenerationMatch; returns the new generation. */
  private async write(body: LeaseBody, ifGenerationMatch: string | number): Promise<string> {
    const file = this.file.bucket.file(this.file.name); // its own metadata: writes may overlap (renew vs release)
    try {
      const preconditionOpts = { ifGenerationMatch: Number(ifGenerationMatch) };
      await file.save(JSON.stringify(body), { resumable: false, contentType: 'application/json', preconditionOpts });
    } catch (err) {
      throw classify(err, 'write lease');
    }
    return String(file.metadata.generation);
  }
}

function parseBody(text: string): LeaseBody {
  let b: Partial<LeaseBody> | null = null;
  try {
    b = JSON.parse(text) as Partial<LeaseBody>;
  } catch {} // reported below
  if (typeof b?.epoch !== 'number' || typeof b.owner !== 'string' || typeof b.released !== 'boolean') {
    throw new LeaseUnknownError(`read lease: not a lease body: ${text.slice(0, 200)}`);
  }
  return { epoch: b.epoch, owner: b.owner, released: b.released, lastTxid: b.lastTxid ?? null };
}
