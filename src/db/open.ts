// Opening connections: the pragmas every connection gets, and the SQLite version floor.
import Database from 'better-sqlite3';
import type { Config } from '../config.js';

/** SQLite 3.51.3 fixed a WAL-reset corruption bug that two connections writing/checkpointing (app + Litestream) can hit. */
export const MIN_SQLITE_VERSION = '3.51.3';

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function assertSqliteVersion(db: Database.Database): string {
  const { v } = db.prepare('SELECT sqlite_version() AS v').get() as { v: string };
  if (compareVersions(v, MIN_SQLITE_VERSION) < 0) {
    throw new Error(`bundled SQLite ${v} is older than ${MIN_SQLITE_VERSION} (WAL-reset corruption bug); upgrade better-sqlite3`);
  }
  return v;
}

type DbConfig = Pick<Config, 'dbPath' | 'busyTimeoutMs' | 'cacheSizeKib' | 'synchronous'> & Partial<Pick<Config, 'replication'>>;

/** The only read-write connection: owned by the writer thread. */
export function openWriter(cfg: DbConfig): Database.Database {
  const db = new Database(cfg.dbPath, { timeout: cfg.busyTimeoutMs });
  assertSqliteVersion(db);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${cfg.synchronous}`);
  db.pragma(`busy_timeout = ${cfg.busyTimeoutMs}`);
  db.pragma(`cache_size = -${cfg.cacheSizeKib}`);
  db.pragma('temp_store = MEMORY');
  db.pragma('foreign_keys = ON');
  // Without Litestream, checkpoints are left to SQLite's PASSIVE auto-checkpoint (never TRUNCATE/RESTART while the app runs),
  // which does not block readers or wait on Litestream's read transaction.
  // With Litestream, 0: Litestream 0.5 is then the only checkpointer. It runs PASSIVE checkpoints at 1,000 pages
  // and every minute (TRUNCATE only past ~121k pages) behind its `_litestream_lock` barrier, after copying the
  // frames it has not shipped yet. Ours would run inside the writer's commit, cannot reset the WAL past
  // Litestream's read transaction anyway, and would race its barrier. The WAL cannot grow unchecked: while
  // Litestream is down the server refuses writes (replication_down).
  db.pragma(`wal_autocheckpoint = ${cfg.replication ? 0 : 1000}`);
  return db;
}

/** A read-only connection for a reader thread (or the main thread when READERS=0). */
export function openReader(cfg: DbConfig): Database.Database {
  const db = new Database(cfg.dbPath, { readonly: true, fileMustExist: true, timeout: cfg.busyTimeoutMs });
  db.pragma(`busy_timeout = ${cfg.busyTimeoutMs}`);
  db.pragma(`cache_size = -${Math.max(2048, Math.floor(cfg.cacheSizeKib / 4))}`);
  db.pragma('temp_store = MEMORY');
  db.pragma('query_only = 1');
  return db;
}

export function migrate(db: Database.Database, migrations: readonly string[]): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > migrations.length) {
    throw new Error(`database schema version ${current} is newer than this server knows (${migrations.length}); refusing to run`);
  }
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
  return migrations.length;
}
