// Every setting comes from the environment, is parsed once here, and is frozen.
// Threads receive the parsed object through workerData and never read env themselves.
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be an integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const bool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no'])
  .transform((v) => v === '1' || v === 'true' || v === 'yes');

/** Readers default: inline reads on small machines (measured: see README "Reader pool"), a pool on bigger ones. */
export function defaultReaders(cpus: number): number {
  return cpus >= 4 ? Math.min(cpus - 2, 8) : 0;
}

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
  SQLITE_SYNCHRONOUS: z
    .string()
    .transform((s) => s.toUpperCase())
    .pipe(z.enum(['NORMAL', 'FULL']))
    .default('NORMAL'),
  SQLITE_BUSY_TIMEOUT_MS: int(0, 600_000).default(5000),
  SQLITE_CACHE_SIZE_KIB: int(1024, 16 * 1024 * 1024).default(65_536),
  MAX_BODY_BYTES: int(64, 64 * 1024 * 1024).default(1024 * 1024),
  SHUTDOWN_TIMEOUT_MS: int(100, 60_000).default(8000),
  /** Test hook only: lets tests prove drain order; never set in production. */
  TEST_WRITER_DELAY_MS: int(0, 10_000).default(0),
});

export type Env = z.input<typeof envSchema>;

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
  readonly synchronous: 'NORMAL' | 'FULL';
  readonly busyTimeoutMs: number;
  readonly cacheSizeKib: number;
  readonly maxBodyBytes: number;
  readonly shutdownTimeoutMs: number;
  readonly testWriterDelayMs: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  // Empty strings count as unset, as shells and YAML often produce them.
  const raw: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
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
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    dbPath: path.resolve(e.DB_PATH),
    logLevel: e.LOG_LEVEL,
    readers: e.READERS ?? defaultReaders(os.availableParallelism()),
    readQueueMax: e.READ_QUEUE_MAX,
    writeBatchMax: e.WRITE_BATCH_MAX,
    writeBatchWaitMs: e.WRITE_BATCH_WAIT_MS,
    writeQueueMax: e.WRITE_QUEUE_MAX,
    synchronous: e.SQLITE_SYNCHRONOUS,
    busyTimeoutMs: e.SQLITE_BUSY_TIMEOUT_MS,
    cacheSizeKib: e.SQLITE_CACHE_SIZE_KIB,
    maxBodyBytes: e.MAX_BODY_BYTES,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    testWriterDelayMs: e.TEST_WRITER_DELAY_MS,
  });
}
