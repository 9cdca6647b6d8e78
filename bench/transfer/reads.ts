// The two reads of the reader-transfer micro-benchmark and the three ways to hand their result back.
import Database from 'better-sqlite3';
import { Packr } from 'msgpackr';

export type Format = 'object' | 'msgpack' | 'json';
export type Query = 'point' | 'page100';
export interface Task {
  q: Query;
  key: number;
  fmt: Format;
}

const COLS = 'id, name, price, description, stock, created_at, updated_at';
// Same options as src/shared/protocol.ts.
export const packr = new Packr({ useRecords: false, moreTypes: false });

export function openReads(dbPath: string) {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  const byId = db.prepare(`SELECT ${COLS} FROM products WHERE id = ?`);
  const page = db.prepare(`SELECT ${COLS} FROM products WHERE id > ? ORDER BY id LIMIT 100`);
  return (t: Task): unknown => {
    const value = t.q === 'point' ? byId.get(t.key) : { items: page.all(t.key), limit: 100, after: t.key };
    if (t.fmt === 'json') return JSON.stringify(value);
    if (t.fmt === 'msgpack') {
      // A standalone copy (msgpackr reuses its buffer), so it can be transferred rather than copied.
      const view = packr.pack(value);
      const out = new Uint8Array(view.length);
      out.set(view);
      return out;
    }
    return value;
  };
}

/** What the main thread does next in every case: have the JSON body to send. */
export function toBody(fmt: Format, v: unknown): string {
  if (fmt === 'json') return v as string;
  if (fmt === 'msgpack') return JSON.stringify(packr.unpack(v as Uint8Array));
  return JSON.stringify(v);
}
