// The read queries, shared by the reader threads and the inline (READERS=0) reader. Each returns the JSON
// body to send, so serialisation happens on the thread that ran the query, not on the main thread.
import type Database from 'better-sqlite3';
import type { ReadOp, ReadResult } from '../protocol.js';
import type { Counter, Product } from '../schemas.js';

const COLS = 'id, name, price, description, stock, created_at, updated_at';

export type ReadExecutor = (op: ReadOp) => ReadResult;

export function prepareQueries(db: Database.Database): ReadExecutor {
  const byId = db.prepare<[number], Product>(`SELECT ${COLS} FROM products WHERE id = ?`);
  const page = db.prepare<[number, number], Product>(`SELECT ${COLS} FROM products ORDER BY id LIMIT ? OFFSET ?`);
  const after = db.prepare<[number, number], Product>(`SELECT ${COLS} FROM products WHERE id > ? ORDER BY id LIMIT ?`);
  const counter = db.prepare<[string], Counter>('SELECT name, value FROM counters WHERE name = ?');

  return (op) => {
    switch (op.q) {
      case 'product': {
        const row = byId.get(op.id);
        return row ? JSON.stringify(row) : null;
      }
      case 'counter': {
        const row = counter.get(op.name);
        return row ? JSON.stringify(row) : null;
      }
      case 'products': {
        const { limit, offset, after: afterId } = op.query;
        if (afterId !== undefined) {
          return JSON.stringify({ items: after.all(afterId, limit), limit, after: afterId });
        }
        const off = offset ?? 0;
        return JSON.stringify({ items: page.all(limit, off), limit, offset: off });
      }
    }
  };
}
