// The applyDataFile command: sets counters and inserts or replaces products from a DATA_FILE, unless that very
// content is already the one in force. It runs inside the batch transaction (BEGIN IMMEDIATE), so the check and the
// writes see the same state even when several servers on one database notice the same change: the first applies
// it, the others find its hash recorded.
import type Database from 'better-sqlite3';
import type { DataFileContent, DataFileOutcome } from '../shared/data-file-format.js';


export function prepareDataFile(db: Database.Database): (f: DataFileContent, now: string) => DataFileOutcome {
  const lastHash = db.prepare<[], string>('SELECT hash FROM data_file_applied ORDER BY seq DESC LIMIT 1').pluck();
  const setCounter = db.prepare<[string, number]>(
    'INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
  );
  // created_at is kept; updated_at moves only for rows whose content changes.
  const upsertProduct = db.prepare<[number, string, number, string, number, string, string]>(
    `INSERT INTO products (id, name, price, description, stock, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, price = excluded.price, description = excluded.description,
         stock = excluded.stock, updated_at = excluded.updated_at
       WHERE name <> excluded.name OR price <> excluded.price OR description <> excluded.description OR stock <> excluded.stock`,
  );
  const record = db.prepare<[string, string, number, number]>(
    'INSERT INTO data_file_applied (hash, applied_at, counters, products) VALUES (?, ?, ?, ?)',
  );

  return (f, now) => {
    if (lastHash.get() === f.hash) return { applied: false };
    for (const [name, value] of f.counters) setCounter.run(name, value);
    for (const { id, name, price, description = '', stock = 0 } of f.products) {
      upsertProduct.run(id, name, price, description, stock, now, now);
    }
    record.run(f.hash, now, f.counters.length, f.products.length);
    return { applied: true, counters: f.counters.length, products: f.products.length };
  };
}
