// Every setting comes from the environment, is parsed once here, and is frozen.
// Threads receive the parsed object through workerData and never read env themselves.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

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

/** Readers default: inline reads on small machines (measured: see docs/performance.md "Reader pool"), a pool on bigger ones. */
export function defaultReaders(cpus: number): number {
  return cpus >= 4 ? Math.min(cpus - 2, 8) : 0;
}

/** The repo root (parent of src/ or dist/): where litestream.yml sits. */
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// Litestream 0.5 names Cloud Storage `gs://` and rejects `gcs://`; file:// is for local runs and tests.
const replicaUrl = z
  .string()
  .trim()
  .refine((u) => !/^gcs:\/\//i.test(u), 'use gs://bucket/path (Litestream 0.5 rejects gcs://)')
  .refine((u) => /^(gs:\/\/[a-z0-9][a-z0-9._-]{1,221}[a-z0-9](\/.*)?|file:\/\/\/.+)$/.test(u), 'must be gs://bucket/path or file:///absolute/dir');

const envSchema = z.object({
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  DB_PATH: z.string().min(1).default('./data/app.db'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  READERS: int(0, 256).optional(),
  READ_QUEUE_MAX: int(1, 1_000_000).default(10_000),
  WRITE_BATCH_MAX: int(1, 100_000).default(512),
  WRITE_BATCH_WAIT_MS: int(0, 1000).default(0),
  WRITE_QUEUE_MAX: int(1, 10_000_000).default(10_000),
  WRITE_FLUSH_AT: int(1, 1_000_000).default(16),
  SQLITE_SYNCHRONOUS: z
    .string()
    .transform((s) => s.toUpperCase())
    .pipe(z.enum(['NORMAL', 'FULL']))
    .default('NORMAL'),
  SQLITE_BUSY_TIMEOUT_MS: int(0, 600_000).default(5000),
  SQLITE_CACHE_SIZE_KIB: int(1024, 16 * 1024 * 1024).default(65_536),
  // 0: no checkpointer thread (checkpoints only inside the writer's commits). Ignored with REPLICA_URL (Litestream checkpoints).
  CHECKPOINT_INTERVAL_MS: int(0, 60_000).default(50),
  MAX_BODY_BYTES: int(64, 64 * 1024 * 1024).default(64 * 1024),
  // uWS's own request-head limit (UWS_HTTP_MAX_HEADERS_SIZE, set from this in src/http/uws.ts; 4096 is its default).
  MAX_HEADER_BYTES: int(1024, 512 * 1024).default(4096),
  HEADER_CHECK: bool.default(true),
  SHUTDOWN_TIMEOUT_MS: int(100, 60_000).default(8000),
  REQUEST_TIMEOUT_MS: int(100, 600_000).default(30_000),
  SLOW_CLIENT_TIMEOUT_MS: int(100, 600_000).default(10_000),
  IDEMPOTENCY_TTL_S: int(1, 30 * 86_400).default(86_400),
  // all (or a true word, as for the booleans): every request; errors: status >= 400 only; off (or a false word).
  ACCESS_LOG: z
    .enum(['all', 'errors', 'off', ...TRUE_WORDS, ...FALSE_WORDS])
    .default('errors')
    .transform((v): AccessLogMode => (v === 'errors' ? 'errors' : v === 'all' || isTrueWord(v) ? 'all' : 'off')),
  // Replication (Litestream): off unless REPLICA_URL is set. See docs/deploy-cloud-run.md.
  REPLICA_URL: replicaUrl.optional(),
  LITESTREAM_BIN: z.string().min(1).default('litestream'),
  LITESTREAM_CONFIG: z.string().min(1).optional(),
  LITESTREAM_SYNC_INTERVAL: z.string().regex(/^[1-9]\d*(ms|s|m)$/, 'must be a duration such as 500ms, 1s or 1m').default('1s'),
  LITESTREAM_SOCKET: z.string().min(1).optional(),
  LITESTREAM_METRICS_ADDR: z
    .string()
    .regex(/^(off|127\.0\.0\.1:\d{1,5}|localhost:\d{1,5}|\[::1\]:\d{1,5})$/, 'must be off or a loopback host:port (it also serves pprof)')
    .default('127.0.0.1:9090'),
  LITESTREAM_CONNECT_TIMEOUT_MS: int(100, 600_000).default(15_000),
  LITESTREAM_RESTORE_TIMEOUT_MS: int(1000, 3_600_000).default(300_000),
  LITESTREAM_START_TIMEOUT_MS: int(100, 600_000).default(30_000),
  LITESTREAM_STOP_TIMEOUT_MS: int(100, 60_000).default(6000),
  LITESTREAM_MAX_RESTARTS: int(0, 1000).default(5),
  LITESTREAM_RESTART_DELAY_MS: int(0, 600_000).default(1000),
  // Data file: off unless DATA_FILE is set. See docs/operations.md "Data file".
  DATA_FILE: z.string().trim().min(1).optional(),
  DATA_FILE_POLL_MS: int(50, 3_600_000).default(1000),
  /** Test hook only: lets tests prove drain order; never set in production. */
  TEST_WRITER_DELAY_MS: int(0, 10_000).default(0),
});

export type Env = z.input<typeof envSchema>;

/** Every environment variable the server reads. */
export const ENV_NAMES: readonly string[] = Object.keys(envSchema.shape);

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly dbPath: string;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly readers: number;
  readonly readQueueMax: number;
  readonly writeBatchMax: number;
  readonly writeBatchWaitMs: number;
  readonly writeQueueMax: number;
  /** Writes collected on the main thread before they go to the writer mid-turn (the rest go at the turn's end). */
  readonly writeFlushAt: number;
  readonly synchronous: 'NORMAL' | 'FULL';
  readonly busyTimeoutMs: number;
  readonly cacheSizeKib: number;
  /**
   * How often the checkpointer thread runs a PASSIVE checkpoint on its own connection (no REPLICA_URL only:
   * Litestream checkpoints otherwise); 0 = no checkpointer, checkpoints run inside the writer's commits.
   */
  readonly checkpointIntervalMs: number;
  readonly maxBodyBytes: number;
  /**
   * Cap on a request's whole head (request line, header fields, blank line), enforced by uWS: past it, uWS answers
   * 431 itself and closes the connection.
   */
  readonly maxHeaderBytes: number;
  /**
   * The pass over every request's header fields (framing, src/http/head-check.ts); off only
   * behind a front end that already refuses what it checks.
   */
  readonly headerCheck: boolean;
  readonly shutdownTimeoutMs: number;
  /** Longest a request may wait for its answer (uWS's idle timeout does not cover pending responses). */
  readonly requestTimeoutMs: number;
  /** A client that reads nothing of a response it was sent for this long is disconnected. */
  readonly slowClientTimeoutMs: number;
  /** How long an Idempotency-Key's stored outcome is replayed. */
  readonly idempotencyTtlS: number;
  /**
   * Which requests get an access-log line at info: all, errors (status >= 400, the default) or off. Nothing is
   * logged above LOG_LEVEL=info.
   */
  readonly accessLog: AccessLogMode;
  readonly testWriterDelayMs: number;
  /** Absolute path of the JSON file of counters and products applied through the writer; null: no DATA_FILE. */
  readonly dataFile: string | null;
  /** How often the data file is stat()ed for changes. */
  readonly dataFilePollMs: number;
  /** Null: no REPLICA_URL, so no Litestream at all. */
  readonly replication: ReplicationConfig | null;
}

export interface ReplicationConfig {
  readonly replicaUrl: string;
  readonly bin: string;
  readonly configPath: string;
  readonly syncInterval: string;
  readonly socketPath: string;
  /** '' = Litestream's metrics/pprof listener off. */
  readonly metricsAddr: string;
  readonly connectTimeoutMs: number;
  readonly restoreTimeoutMs: number;
  readonly startTimeoutMs: number;
  readonly stopTimeoutMs: number;
  readonly maxRestarts: number;
  readonly restartDelayMs: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
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
  const e = parsed.data;
  const dbPath = path.resolve(e.DB_PATH);
  let replication: ReplicationConfig | null = null;
  if (e.REPLICA_URL) {
    // Next to the database by default; a Unix socket path is limited to 107 bytes.
    const socketPath = path.resolve(e.LITESTREAM_SOCKET ?? path.join(path.dirname(dbPath), `.${path.basename(dbPath)}-litestream.sock`));
    if (Buffer.byteLength(socketPath) > 107) {
      throw new ConfigError(`invalid configuration: LITESTREAM_SOCKET=${JSON.stringify(socketPath)}: a Unix socket path must be at most 107 bytes`);
    }
    replication = Object.freeze({
      replicaUrl: e.REPLICA_URL,
      bin: e.LITESTREAM_BIN,
      configPath: path.resolve(e.LITESTREAM_CONFIG ?? path.join(REPO_ROOT, 'litestream.yml')),
      syncInterval: e.LITESTREAM_SYNC_INTERVAL,
      socketPath,
      metricsAddr: e.LITESTREAM_METRICS_ADDR === 'off' ? '' : e.LITESTREAM_METRICS_ADDR,
      connectTimeoutMs: e.LITESTREAM_CONNECT_TIMEOUT_MS,
      restoreTimeoutMs: e.LITESTREAM_RESTORE_TIMEOUT_MS,
      startTimeoutMs: e.LITESTREAM_START_TIMEOUT_MS,
      stopTimeoutMs: e.LITESTREAM_STOP_TIMEOUT_MS,
      maxRestarts: e.LITESTREAM_MAX_RESTARTS,
      restartDelayMs: e.LITESTREAM_RESTART_DELAY_MS,
    });
  }
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    dbPath,
    logLevel: e.LOG_LEVEL,
    readers: e.READERS ?? defaultReaders(os.availableParallelism()),
    readQueueMax: e.READ_QUEUE_MAX,
    writeBatchMax: e.WRITE_BATCH_MAX,
    writeBatchWaitMs: e.WRITE_BATCH_WAIT_MS,
    writeQueueMax: e.WRITE_QUEUE_MAX,
    writeFlushAt: e.WRITE_FLUSH_AT,
    synchronous: e.SQLITE_SYNCHRONOUS,
    busyTimeoutMs: e.SQLITE_BUSY_TIMEOUT_MS,
    cacheSizeKib: e.SQLITE_CACHE_SIZE_KIB,
    checkpointIntervalMs: e.CHECKPOINT_INTERVAL_MS,
    maxBodyBytes: e.MAX_BODY_BYTES,
    maxHeaderBytes: e.MAX_HEADER_BYTES,
    headerCheck: e.HEADER_CHECK,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    slowClientTimeoutMs: e.SLOW_CLIENT_TIMEOUT_MS,
    idempotencyTtlS: e.IDEMPOTENCY_TTL_S,
    accessLog: e.ACCESS_LOG,
    testWriterDelayMs: e.TEST_WRITER_DELAY_MS,
    dataFile: e.DATA_FILE === undefined ? null : path.resolve(e.DATA_FILE),
    dataFilePollMs: e.DATA_FILE_POLL_MS,
    replication,
  });
}
