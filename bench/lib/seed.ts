// The seeded database every trial starts from (copied per trial): the server's own schema, N products
// with ids 1..N, and counter c1 at 0. Deterministic, so every run and both designs see the same data.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import { MIGRATIONS } from '../../src/shared/db/migrations.js';
import { migrate } from '../../src/shared/db/open.js';

export const SEED_PRODUCTS = 10_000;
export const HOT_COUNTER = 'c1';

/** `migrations`: fewer than all for a seed an older build also opens (it refuses a newer schema; a newer build migrates up). */
export function createSeedDb(file: string, products = SEED_PRODUCTS, migrations: readonly string[] = MIGRATIONS): { sqliteVersion: string } {
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  migrate(db, migrations);
  const insert = db.prepare('INSERT INTO products (name, price, description, stock) VALUES (?, ?, ?, ?)');
  let x = 12345;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
  db.transaction(() => {
    for (let i = 1; i <= products; i++) {
      insert.run(`product ${i}`, Math.round(rnd() * 100_000) / 100, `seeded product number ${i} for the benchmark`, Math.floor(rnd() * 1000));
    }
    db.prepare('INSERT INTO counters (name, value) VALUES (?, 0)').run(HOT_COUNTER);
  })();
  const { v } = db.prepare('SELECT sqlite_version() AS v').get() as { v: string };
  // Fold the WAL in so the single .db file is the whole database (it is copied alone).
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return { sqliteVersion: v };
}
