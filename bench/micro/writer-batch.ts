// Micro-benchmark of the writer's hot path, outside HTTP and threads: the cost per command of a group-committed
// batch (the real createBatchRunner + prepareCommands) and of the statement shapes we chose between.
//   npm run bench:micro
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MIGRATIONS } from '../../src/shared/db/migrations.js';
import { migrate, openWriter } from '../../src/shared/db/open.js';
import type { WriteOp } from '../../src/shared/protocol.js';
import { prepareQueries } from '../../src/readers/queries.js';
import { createBatchRunner } from '../../src/writer/batch.js';
import { prepareCommands } from '../../src/writer/commands.js';

function time(label: string, n: number, per: number, f: () => void): void {
  for (let i = 0; i < Math.min(200, n); i++) f();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f();
  const us = ((performance.now() - t0) * 1000) / (n * per);
  console.log(`${label.padEnd(52)} ${us.toFixed(2).padStart(8)} us`);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-micro-'));
try {
  for (const synchronous of ['NORMAL', 'FULL'] as const) {
    const db = openWriter({ dbPath: path.join(dir, `${synchronous}.db`), busyTimeoutMs: 5000, cacheSizeKib: 65536, synchronous });
    migrate(db, MIGRATIONS);
    const runner = createBatchRunner(db, prepareCommands(db));
    const create: WriteOp = { op: 'createProduct', data: { name: 'widget', price: 9.99, description: 'a thing', stock: 5 } };
    const incr: WriteOp = { op: 'increment', name: 'c1', by: 1 };
    console.log(`\nsynchronous=${synchronous}`);
    for (const size of [1, 64, 512]) {
      time(`create, batch of ${size}: per command`, Math.max(50, 4000 / size), size, () => runner.run(Array(size).fill(create)));
    }
    time('increment, batch of 64: per command', 1000, 64, () => runner.run(Array(64).fill(incr)));

    // The statement shapes behind src/writer/commands.ts.
    const ts = new Date().toISOString();
    const returning = db.prepare('INSERT INTO products (name, price, description, stock) VALUES (?, ?, ?, ?) RETURNING *');
    const plain = db.prepare(
      'INSERT INTO products (name, price, description, stock, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const inTx = (f: () => void) => db.transaction(() => { for (let i = 0; i < 64; i++) f(); });
    const a = inTx(() => returning.get('widget', 9.99, 'a thing', 5));
    const b = inTx(() => plain.run('widget', 9.99, 'a thing', 5, ts, ts));
    time('INSERT ... RETURNING *, strftime() defaults', 500, 64, () => a.immediate());
    time('INSERT with JS timestamps, no RETURNING', 500, 64, () => b.immediate());
    db.close();
  }

  // Reads: SQLite renders JSON vs better-sqlite3 rows + JSON.stringify.
  const db = openWriter({ dbPath: path.join(dir, 'NORMAL.db'), busyTimeoutMs: 5000, cacheSizeKib: 65536, synchronous: 'NORMAL' });
  const read = prepareQueries(db);
  const rows = db.prepare('SELECT * FROM products WHERE id > ? ORDER BY id LIMIT 20');
  const one = db.prepare('SELECT * FROM products WHERE id = ?');
  console.log('\nreads');
  let i = 0;
  time('point read, json_object in SQLite (ours)', 50_000, 1, () => read({ q: 'product', id: 1 + (i++ % 5000) }));
  time('point read, row object + JSON.stringify', 50_000, 1, () => JSON.stringify(one.get(1 + (i++ % 5000))));
  time('20-row page, json_object per row in SQLite (ours)', 5000, 1, () =>
    read({ q: 'products', query: { limit: 20, after: i++ % 5000 } }),
  );
  // What src/readers/queries.ts avoids: a bound LIMIT makes the bundled SQLite (STAT4) re-prepare on every bind.
  const boundLimit = db.prepare<[number, number], string>(
    "SELECT json_object('id', id, 'name', name, 'price', price, 'description', description, 'stock', stock, " +
      "'created_at', created_at, 'updated_at', updated_at) FROM products WHERE id > ? ORDER BY id LIMIT ?",
  );
  time('20-row page, the same with LIMIT ? bound', 5000, 1, () => boundLimit.pluck().all(i++ % 5000, 20).join(','));
  time('20-row page, row objects + JSON.stringify', 5000, 1, () => JSON.stringify(rows.all(i++ % 5000)));
  db.close();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
