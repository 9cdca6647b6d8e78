// Every setting comes from the environment, is parsed once here, and is frozen. Each setting is declared once, in
// the tables below: the variable it is read from and the zod schema that parses, bounds and defaults it; the
// Config type, ENV_NAMES and the error messages all derive from them. Threads receive the parsed object through
// workerData and never read env themselves. Reference: docs/configuration.md (a test keeps it equal to ENV_NAMES).
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DURABILITIES } from './domain.js';

const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be an integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export type AccessLogMode = 'all' | 'errors' | 'off';

const TRUE_WORDS = ['1', 'true', 'yes'] as const;
const FALSE_WORDS = ['0', 'false', 'no'] as const;
const isTrueWord = (v: string) => (TRUE_WORDS as readonly string[]).includes(v);
const bool = z.enum([...TRUE_WORDS, ...FALSE_WORDS]).transform(isTrueWord);
const absolutePath = (p: string) => path.resolve(p);

/** Readers default: inline reads on small machines (measured: see docs/performance.md "Reader pool"), a pool on bigger ones. */
export function defaultReaders(cpus: number): number {
  return cpus >= 4 ? Math.min(cpus - 2, 8) : 0;
}

/** The repo root (two up from src/shared/ or dist/shared/): where litestream.yml sits. */
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// Litestream 0.5 names Cloud Storage `gs://` and rejects `gcs://`; file:// is for local runs and tests.
const replicaUrl = z
  .string()
  .trim()
  .refine((u) => !/^gcs:\/\//i.test(u), 'use gs://bucket/path (Litestream 0.5 rejects gcs://)')
  .refine((u) => /^(gs:\/\/[a-z0-9][a-z0-9._-]{1,221}[a-z0-9](\/.*)?|file:\/\/\/.+)$/.test(u), 'must be gs://bucket/path or file:///absolute/dir');

/** A setting: the environment variable it is read from, and the schema that turns its text into the value. */
const setting = <S extends z.ZodType>(env: string, schema: S) => ({ env, schema });
type Table = Record<string, { env: string; schema: z.ZodType }>;
type Parsed<T extends Table> = { readonly [K in keyof T]: z.output<T[K]['schema']> };

const SERVER = {
  /** writer (the default: the one read-write instance of a replica) or follower (reads from a copy; docs/followers.md). */
  role: setting('ROLE', z.enum(['writer', 'follower']).default('writer')),
  port: setting('PORT', int(0, 65535).default(8080)),
  host: setting('HOST', z.string().min(1).default('0.0.0.0')),
  dbPath: setting('DB_PATH', z.string().min(1).default('./data/app.db').transform(absolutePath)),
  logLevel: setting('LOG_LEVEL', z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')),
  readers: setting('READERS', int(0, 256).optional().transform((n) => n ?? defaultReaders(os.availableParallelism()))),
  readQueueMax: setting('READ_QUEUE_MAX', int(1, 1_000_000).default(10_000)),
  writeBatchMax: setting('WRITE_BATCH_MAX', int(1, 100_000).default(512)),
  writeBatchWaitMs: setting('WRITE_BATCH_WAIT_MS', int(0, 1000).default(0)),
  writeQueueMax: setting('WRITE_QUEUE_MAX', int(1, 10_000_000).default(10_000)),
  /** Writes collected on the main thread before they go to the writer mid-turn (the rest go at the turn's end). */
  writeFlushAt: setting('WRITE_FLUSH_AT', int(1, 1_000_000).default(16)),
  synchronous: setting(
    'SQLITE_SYNCHRONOUS',
    z
      .string()
      .transform((s) => s.toUpperCase())
      .pipe(z.enum(['NORMAL', 'FULL']))
      .default('NORMAL'),
  ),
  /**
   * Largest the database file may grow (bytes, rounded down to whole pages: the writer's PRAGMA max_page_count); past
   * it a write answers 507 insufficient_storage. Null: no cap (the volume's size is the only bound). Set it below the
   * in-memory volume's sizeLimit so SQLite refuses cleanly while the WAL and Litestream's files still have room.
   */
  dbMaxBytes: setting('DB_MAX_BYTES', int(65_536, Number.MAX_SAFE_INTEGER).nullable().default(null)),
  busyTimeoutMs: setting('SQLITE_BUSY_TIMEOUT_MS', int(0, 600_000).default(5000)),
  cacheSizeKib: setting('SQLITE_CACHE_SIZE_KIB', int(1024, 16 * 1024 * 1024).default(65_536)),
  /**
   * How often the checkpointer thread runs a PASSIVE checkpoint on its own connection (no REPLICA_URL only:
   * Litestream checkpoints otherwise); 0 = no checkpointer, checkpoints run inside the writer's commits.
   */
  checkpointIntervalMs: setting('CHECKPOINT_INTERVAL_MS', int(0, 60_000).default(50)),
  maxBodyBytes: setting('MAX_BODY_BYTES', int(64, 64 * 1024 * 1024).default(64 * 1024)),
  /**
   * Cap on a request's whole head (request line, header fields, blank line), enforced by uWS itself (passed to it as
   * UWS_HTTP_MAX_HEADERS_SIZE in src/http/uws.ts; 4096 is its default): past it, uWS answers 431 and closes.
   */
  maxHeaderBytes: setting('MAX_HEADER_BYTES', int(1024, 512 * 1024).default(4096)),
  /**
   * The pass over every request's header fields (framing, src/http/head-check.ts); off only
   * behind a front end that already refuses what it checks.
   */
  headerCheck: setting('HEADER_CHECK', bool.default(true)),
  /**
   * Lingering close (docs/api.md "Refused bodies"): after an answer that closes a connection whose request body is
   * still arriving, read and discard the rest for at most this long / this many bytes, so the client can read the
   * answer. 32 MiB: the largest HTTP/1 request Cloud Run forwards. 0 (either) turns lingering off (close at once).
   */
  lingerTimeoutMs: setting('LINGER_TIMEOUT_MS', int(0, 60_000).default(5000)),
  lingerMaxBytes: setting('LINGER_MAX_BYTES', int(0, 1024 * 1024 * 1024).default(32 * 1024 * 1024)),
  shutdownTimeoutMs: setting('SHUTDOWN_TIMEOUT_MS', int(100, 60_000).default(8000)),
  /** Longest a request may wait for its answer (uWS's idle timeout does not cover pending responses). */
  requestTimeoutMs: setting('REQUEST_TIMEOUT_MS', int(100, 600_000).default(30_000)),
  /** A client that reads nothing of a response it was sent for this long is disconnected. */
  slowClientTimeoutMs: setting('SLOW_CLIENT_TIMEOUT_MS', int(100, 600_000).default(10_000)),
  /** How long an Idempotency-Key's stored outcome is replayed. */
  idempotencyTtlS: setting('IDEMPOTENCY_TTL_S', int(1, 30 * 86_400).default(86_400)),
  /**
   * Which requests get an access-log line at info: all (or a true word), errors (status >= 400, the default) or
   * off (or a false word). Nothing is logged above LOG_LEVEL=info.
   */
  accessLog: setting(
    'ACCESS_LOG',
    z
      .enum(['all', 'errors', 'off', ...TRUE_WORDS, ...FALSE_WORDS])
      .default('errors')
      .transform((v): AccessLogMode => (v === 'errors' ? 'errors' : v === 'all' || isTrueWord(v) ? 'all' : 'off')),
  ),
  /** Absolute path of the JSON file of counters and products applied through the writer; null: no DATA_FILE. */
  dataFile: setting('DATA_FILE', z.string().trim().min(1).transform(absolutePath).nullable().default(null)),
  /** How often the data file is stat()ed for changes. */
  dataFilePollMs: setting('DATA_FILE_POLL_MS', int(50, 3_600_000).default(1000)),
  /**
   * Durability of writes whose request has no `Prefer: durability=...`: local (answered at commit) or replicated
   * (answered once the commit is in the replica). replicated needs REPLICA_URL: without it, a start-up error.
   */
  defaultDurability: setting('DEFAULT_DURABILITY', z.enum(DURABILITIES).default('local')),
  /**
   * Bearer token that GET /metrics requires (`Authorization: Bearer <token>`; 401 unauthorized otherwise). Null: /metrics
   * answers anyone who reaches the server (a private service: only callers with roles/run.invoker). Set it on a public
   * service (docs/deploy-cloud-run.md "Public or private").
   */
  metricsToken: setting('METRICS_TOKEN', z.string().trim().min(16, 'must be at least 16 characters').nullable().default(null)),
  /** Test hook only: lets tests prove drain order; never set in production. */
  testWriterDelayMs: setting('TEST_WRITER_DELAY_MS', int(0, 10_000).default(0)),
};

/** Replication (Litestream): read only when REPLICA_URL is set. See docs/deploy-cloud-run.md. */
const REPLICATION = {
  replicaUrl: setting('REPLICA_URL', replicaUrl.optional()),
  bin: setting('LITESTREAM_BIN', z.string().min(1).default('litestream')),
  configPath: setting('LITESTREAM_CONFIG', z.string().min(1).default(path.join(REPO_ROOT, 'litestream.yml')).transform(absolutePath)),
  syncInterval: setting('LITESTREAM_SYNC_INTERVAL', z.string().regex(/^[1-9]\d*(ms|s|m)$/, 'must be a duration such as 500ms, 1s or 1m').default('1s')),
  /** Default: next to the database (see loadConfig); a Unix socket path is limited to 107 bytes. */
  socketPath: setting('LITESTREAM_SOCKET', z.string().min(1).optional()),
  /** '' = Litestream's metrics/pprof listener off. */
  metricsAddr: setting(
    'LITESTREAM_METRICS_ADDR',
    z
      .string()
      .regex(/^(off|127\.0\.0\.1:\d{1,5}|localhost:\d{1,5}|\[::1\]:\d{1,5})$/, 'must be off or a loopback host:port (it also serves pprof)')
      .default('127.0.0.1:9090')
      .transform((v) => (v === 'off' ? '' : v)),
  ),
  connectTimeoutMs: setting('LITESTREAM_CONNECT_TIMEOUT_MS', int(100, 600_000).default(15_000)),
  /**
   * 150 s: with three connect deadlines and the start deadline, a cold start gives up (and logs why) within Cloud Run's
   * 240 s startup-probe maximum (docs/deploy-cloud-run.md "Start-up budget"; test/deploy-artifacts.test.ts checks it).
   */
  restoreTimeoutMs: setting('LITESTREAM_RESTORE_TIMEOUT_MS', int(1000, 3_600_000).default(150_000)),
  startTimeoutMs: setting('LITESTREAM_START_TIMEOUT_MS', int(100, 600_000).default(30_000)),
  stopTimeoutMs: setting('LITESTREAM_STOP_TIMEOUT_MS', int(100, 60_000).default(6000)),
  maxRestarts: setting('LITESTREAM_MAX_RESTARTS', int(0, 1000).default(5)),
  restartDelayMs: setting('LITESTREAM_RESTART_DELAY_MS', int(0, 600_000).default(1000)),
  /** Longest a `durability=replicated` write waits, from its commit, for the replica to confirm it (then 504). */
  replicationTimeoutMs: setting('REPLICATION_TIMEOUT_MS', int(100, 600_000).default(5000)),
  /** Writer lease (src/replication/lease.ts, docs/lease.md): how often the holder rewrites `<path>/lease.json`. */
  leaseRenewMs: setting('LEASE_RENEW_MS', int(50, 600_000).default(3000)),
  /** How long a lease stays valid after its last renewal; a contender waits TTL + TTL/5 of an unchanged lease. */
  leaseTtlMs: setting('LEASE_TTL_MS', int(200, 3_600_000).default(15_000)),
  /** A standby (another instance holds the lease) holds requests this long waiting to lead, then answers 503 not_leader. */
  standbyHoldMs: setting('STANDBY_HOLD_MS', int(0, 600_000).default(8000)),
  /**
   * An idle writer commits a heartbeat (the replica position +1) this often, so followers can tell an idle writer
   * from a stuck copy; each costs one small upload (docs/followers.md "Cost"). 0: never.
   */
  writerHeartbeatMs: setting('WRITER_HEARTBEAT_MS', int(0, 3_600_000).default(5000)),
};

/**
 * A read follower (docs/followers.md): read only when ROLE=follower. It needs a gs:// REPLICA_URL (read-only use of
 * the bucket) and WRITER_URL; it never runs Litestream's replicate, never touches the lease, never writes the bucket.
 */
const FOLLOWER = {
  /** Base URL of the writer service: every write (and a read whose Bookmark the copy does not reach in time) goes there. */
  writerUrl: setting(
    'WRITER_URL',
    z
      .string()
      .trim()
      .refine((u) => /^https?:\/\/[^/?#\s]+\/?$/.test(u), 'must be http(s)://host[:port] (no path)')
      .transform((u) => u.replace(/\/$/, ''))
      .optional(),
  ),
  /** With it, forwarded requests carry a Google ID token for this audience (Cloud Run service-to-service auth). */
  writerAudience: setting('WRITER_AUDIENCE', z.string().trim().min(1).nullable().default(null)),
  /** How long a read with a Bookmark the copy has not reached waits for it before it is forwarded to the writer. */
  waitMs: setting('FOLLOWER_WAIT_MS', int(0, 60_000).default(2000)),
  /** Past this without confirming its copy is current, a follower answers /readyz 503 (Cloud Run routes around it). */
  maxLagMs: setting('FOLLOWER_MAX_LAG_MS', int(100, 3_600_000).default(10_000)),
  /** How often an idle follower lists the replica for new files (one Class A operation each; docs/followers.md "Cost"). */
  pollMs: setting('FOLLOWER_POLL_MS', int(50, 600_000).default(3000)),
  /** Longest a forwarded request waits for the writer's answer (then 504 writer_timeout). */
  forwardTimeoutMs: setting('FORWARD_TIMEOUT_MS', int(100, 600_000).default(10_000)),
  /** Keep-alive connections to the writer. */
  forwardConnections: setting('FORWARD_CONNECTIONS', int(1, 1024).default(32)),
};

type ReplicationTable = Parsed<typeof REPLICATION>;
export type ReplicationConfig = Omit<ReplicationTable, 'replicaUrl' | 'socketPath'> & { readonly replicaUrl: string; readonly socketPath: string };
export type FollowerConfig = Omit<Parsed<typeof FOLLOWER>, 'writerUrl'> &
  Pick<ReplicationTable, 'bin' | 'connectTimeoutMs' | 'restoreTimeoutMs'> & { readonly writerUrl: string; readonly replicaUrl: string };
export type Config = Parsed<typeof SERVER> & {
  /** Null: no REPLICA_URL, so no Litestream at all (always null on a follower: it never replicates). */
  readonly replication: ReplicationConfig | null;
  /** Set only with ROLE=follower. */
  readonly follower: FollowerConfig | null;
};

const TABLES: Table[] = [SERVER, REPLICATION, FOLLOWER];

/** Every environment variable the server reads. */
export const ENV_NAMES: readonly string[] = TABLES.flatMap((t) => Object.values(t).map((s) => s.env));

const envSchema = z.object(Object.fromEntries(TABLES.flatMap((t) => Object.values(t).map((s) => [s.env, s.schema]))));

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The table's values, under the table's own names, from the parsed environment (keyed by variable). */
function pick<T extends Table>(table: T, byEnv: Record<string, unknown>): Parsed<T> {
  return Object.fromEntries(Object.entries(table).map(([key, s]) => [key, byEnv[s.env]])) as Parsed<T>;
}

/** Parses the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  // Empty strings count as unset, as shells and YAML often produce them.
  const raw: Record<string, string> = {};
  for (const key of ENV_NAMES) {
    const v = env[key];
    if (v !== undefined && v !== '') raw[key] = v;
  }
  const parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const name = String(i.path[0] ?? '?');
      return `${name}=${JSON.stringify(raw[name] ?? '')}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  const server = pick(SERVER, parsed.data);
  const r = pick(REPLICATION, parsed.data);
  if (server.role === 'follower') return Object.freeze({ ...server, replication: null, follower: followerConfig(pick(FOLLOWER, parsed.data), r, server) });
  let replication: ReplicationConfig | null = null;
  if (r.replicaUrl !== undefined) {
    const dbPath = server.dbPath;
    const socketPath = path.resolve(r.socketPath ?? path.join(path.dirname(dbPath), `.${path.basename(dbPath)}-litestream.sock`));
    if (Buffer.byteLength(socketPath) > 107) {
      throw new ConfigError(`invalid configuration: LITESTREAM_SOCKET=${JSON.stringify(socketPath)}: a Unix socket path must be at most 107 bytes`);
    }
    // The holder counts TTL - TTL/5 from each renewal's start: a renewal must come well inside that.
    if (r.leaseRenewMs * 2 > r.leaseTtlMs) {
      throw new ConfigError(`invalid configuration: LEASE_RENEW_MS=${r.leaseRenewMs} must be at most half of LEASE_TTL_MS=${r.leaseTtlMs}`);
    }
    replication = Object.freeze({ ...r, replicaUrl: r.replicaUrl, socketPath });
  } else if (server.defaultDurability === 'replicated') {
    // Every write would fail with 400 durability_unavailable: refuse to start instead.
    throw new ConfigError('invalid configuration: DEFAULT_DURABILITY="replicated" needs REPLICA_URL (there is no replica to confirm writes in)');
  }
  return Object.freeze({ ...server, replication, follower: null });
}

function followerConfig(f: Parsed<typeof FOLLOWER>, r: ReplicationTable, server: Parsed<typeof SERVER>): FollowerConfig {
  const replicaUrl = r.replicaUrl;
  const missing: string[] = [];
  if (!replicaUrl?.startsWith('gs://')) missing.push(`REPLICA_URL=${JSON.stringify(replicaUrl ?? '')}: a follower needs the writer's gs://bucket/path`);
  if (f.writerUrl === undefined) missing.push('WRITER_URL="": a follower forwards writes to the writer at http(s)://host[:port]');
  if (server.defaultDurability === 'replicated') missing.push('DEFAULT_DURABILITY="replicated": set it on the writer (a follower forwards Prefer as sent)');
  if (server.dataFile !== null) missing.push('DATA_FILE: only the writer applies it');
  if (missing.length > 0) throw new ConfigError(`invalid configuration (ROLE=follower): ${missing.join('; ')}`);
  const { bin, connectTimeoutMs, restoreTimeoutMs } = r;
  return Object.freeze({ ...f, bin, connectTimeoutMs, restoreTimeoutMs, writerUrl: f.writerUrl!, replicaUrl: replicaUrl! });
}
