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

type DbConfig = Pick<Config, 'dbPath' | 'busyTimeoutMs' | 'cacheSizeKib' | 'synchronous'> & Partial<Pick<Config, 'replication' | 'dbMaxBytes'>>;

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
  // Without Litestream, SQLite's PASSIVE auto-checkpoint at 1,000 pages (never TRUNCATE/RESTART while the app runs), which
  // does not block readers. It runs inside the commit that crosses the mark, so while it copies pages and fsyncs the
  // database every write waits (10-25 ms here at 1,000 pages). The checkpointer thread (src/checkpointer/) copies
  // most frames beforehand on its own connection, so this one finds little left to do, and the WAL still restarts
  // from its beginning every 1,000 pages (a restart needs a writer that finds the WAL fully copied).
  // With Litestream, 0: Litestream 0.5 is then the only checkpointer. It runs PASSIVE checkpoints at 1,000 pages
  // and every minute (TRUNCATE only past ~121k pages) behind its `_litestream_lock` barrier, after copying the
  // frames it has not shipped yet. Ours would run inside the writer's commit, cannot reset the WAL past
  // Litestream's read transaction anyway, and would race its barrier. The WAL cannot grow unchecked: while
  // Litestream is down the server refuses writes (replication_down).
  db.pragma(`wal_autocheckpoint = ${cfg.replication ? 0 : 1000}`);
  assertWritable(db, cfg.dbPath);
  // DB_MAX_BYTES: past it SQLite answers SQLITE_FULL (507) before the volume itself fills up. Per connection, and only
  // this one grows the file; set after the probe above, which needs a page. A cap below the current size holds the
  // file at its current size (SQLite's rule).
  if (cfg.dbMaxBytes) db.pragma(`max_page_count = ${Math.max(1, Math.floor(cfg.dbMaxBytes / (db.pragma('page_size', { simple: true }) as number)))}`);
  return db;
}

/**
 * SQLite opens a database file it may not write (another owner's 0644 file, `chattr +i`) read-only without a word,
 * and even `BEGIN IMMEDIATE` succeeds on it: only a change fails. Try one inside a transaction that is rolled back,
 * so such a server refuses to start instead of reporting ready and failing every write.
 */
function assertWritable(db: Database.Database, dbPath: string): void {
  try {
    db.exec('BEGIN IMMEDIATE');
    db.exec('CREATE TABLE main._write_probe (x)');
  } catch (err) {
    // Anything else (busy: another process holds the write lock for longer than busy_timeout) is not this problem.
    if (!String((err as { code?: unknown }).code).startsWith('SQLITE_READONLY')) throw err;
    throw new Error(
      `the database file ${dbPath} cannot be written by this process (${(err as Error).message}); check its owner, mode and attributes (lsattr)`,
    );
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK');
  }
}

/**
 * The checkpointer thread's connection: opened read-write because a checkpoint writes pages into the database file,
 * but `query_only`, so it cannot change a row (SQLITE_READONLY). It never takes the write lock: PASSIVE checkpoints
 * only take the checkpoint lock, and skip what readers still need.
 */
export function openCheckpointer(cfg: DbConfig): Database.Database {
  const db = new Database(cfg.dbPath, { fileMustExist: true, timeout: cfg.busyTimeoutMs });
  // The checkpointing connection's own setting decides how a checkpoint syncs: match the writer's.
  db.pragma(`synchronous = ${cfg.synchronous}`);
  db.pragma('query_only = 1');
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
