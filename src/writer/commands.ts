// The write commands, each one prepared statement run inside the batch transaction.
import type Database from 'better-sqlite3';
import { AppError } from '../errors.js';
import type { WriteOp, WriteResult } from '../protocol.js';
import type { Counter, Product } from '../schemas.js';

const NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
const COLS = 'id, name, price, description, stock, created_at, updated_at';

export type Executor = (op: WriteOp) => WriteResult;

export function prepareCommands(db: Database.Database): Executor {
  const insert = db.prepare<[string, number, string, number], Product>(
    `INSERT INTO products (name, price, description, stock) VALUES (?, ?, ?, ?) RETURNING ${COLS}`,
  );
  const replace = db.prepare<[string, number, string, number, number], Product>(
    `UPDATE products SET name = ?, price = ?, description = ?, stock = ?, updated_at = ${NOW} WHERE id = ? RETURNING ${COLS}`,
  );
  // NULL means "keep": no field of a product is nullable, so NULL never is a value to store.
  const patch = db.prepare<[string | null, number | null, string | null, number | null, number], Product>(
    `UPDATE products SET name = coalesce(?, name), price = coalesce(?, price), description = coalesce(?, description),
       stock = coalesce(?, stock), updated_at = ${NOW} WHERE id = ? RETURNING ${COLS}`,
  );
  const remove = db.prepare<[number]>('DELETE FROM products WHERE id = ?');
  const increment = db.prepare<[string, number], Counter>(
    `INSERT INTO counters (name, value) VALUES (?, ?)
       ON CONFLICT (name) DO UPDATE SET value = value + excluded.value RETURNING name, value`,
  );

  const notFound = (what: string) => new AppError('not_found', `${what} not found`);

  return (op) => {
    switch (op.op) {
      case 'createProduct': {
        const d = op.data;
        return insert.get(d.name, d.price, d.description ?? '', d.stock ?? 0)!;
      }
      case 'putProduct': {
        const d = op.data;
        return replace.get(d.name, d.price, d.description ?? '', d.stock ?? 0, op.id) ?? throwErr(notFound(`product ${op.id}`));
      }
      case 'patchProduct': {
        const d = op.data;
        return (
          patch.get(d.name ?? null, d.price ?? null, d.description ?? null, d.stock ?? null, op.id) ??
          throwErr(notFound(`product ${op.id}`))
        );
      }
      case 'deleteProduct':
        if (remove.run(op.id).changes === 0) throw notFound(`product ${op.id}`);
        return null;
      case 'increment':
        return increment.get(op.name, op.by)!;
    }
  };
}

function throwErr(e: Error): never {
  throw e;
}
