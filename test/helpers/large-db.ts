// A database of ~`bytes` of incompressible product rows (2 KB of random text each, so LTX compression cannot
// flatter a restore), built directly with the server's schema and checkpointed into one file. For the cold-start
// and large-restore tests and bench/lease.ts.
import crypto from 'node:crypto';
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../../src/shared/db/migrations.js';
import { migrate } from '../../src/shared/db/open.js';

/** Writes the database at `dbPath`; returns how many products it holds (`large-0` ... `large-<rows-1>`). */
export function buildLargeDb(dbPath: string, bytes: number): { rows: number } {
  const db = new Database(dbPath);
  try {
    db.pragma('journal_mode = WAL');
    migrate(db, MIGRATIONS);
    const insert = db.prepare('INSERT INTO products (name, price, description, stock) VALUES (?, ?, ?, ?)');
    const rows = Math.ceil(bytes / 2100);
    db.transaction(() => {
      for (let i = 0; i < rows; i++) insert.run(`large-${i}`, i, crypto.randomBytes(1440).toString('base64'), i % 100);
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
    return { rows };
  } finally {
    db.close();
  }
}
