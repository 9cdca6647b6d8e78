// The read statements (src/readers/queries.ts) against a real SQLite file. List pages write the page size into
// the SQL (a bound LIMIT made SQLite re-prepare on every bind), one statement pair per size: every size gives the
// same page as the plain parameterised query, and a size outside 1..MAX_PAGE_LIMIT never becomes SQL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../src/shared/db/migrations.js';
import { migrate, openWriter } from '../src/shared/db/open.js';
import { MAX_PAGE_LIMIT } from '../src/shared/domain.js';
import { offsetPageSql, prepareQueries } from '../src/readers/queries.js';

const dir = mkdtempSync(join(tmpdir(), 'queries-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('list pages', () => {
  const db = openWriter({ dbPath: join(dir, 'app.db'), busyTimeoutMs: 1000, cacheSizeKib: 4096, synchronous: 'NORMAL' });
  migrate(db, MIGRATIONS);
  const insert = db.prepare("INSERT INTO products (name, price, description, stock) VALUES (?, ?, '', 0)");
  for (let i = 1; i <= 130; i++) insert.run(`p${i}`, i / 4);
  // Leave gaps in the ids, so offsets and cursors differ.
  db.prepare('DELETE FROM products WHERE id % 7 = 0').run();
  const read = prepareQueries(db);
  const ids = (sql: string, ...args: number[]) => (db.prepare(sql).pluck().all(...args) as number[]);
  const itemIds = (body: unknown) => (JSON.parse(String(body)) as { items: { id: number }[] }).items.map((p) => p.id);

  it('every page size gives what a bound LIMIT gives, by offset and by cursor', () => {
    for (const limit of [1, 2, 7, 20, 99, MAX_PAGE_LIMIT]) {
      for (const offset of [0, 5, 100, 111, 112, 500]) {
        const body = read({ q: 'products', query: { limit, offset } });
        expect(itemIds(body), `limit ${limit} offset ${offset}`).toEqual(ids('SELECT id FROM products ORDER BY id LIMIT ? OFFSET ?', limit, offset));
        expect(JSON.parse(String(body))).toMatchObject({ limit, offset });
      }
      for (const after of [0, 6, 7, 64, 129, 130]) {
        const body = read({ q: 'products', query: { limit, after } });
        expect(itemIds(body), `limit ${limit} after ${after}`).toEqual(ids('SELECT id FROM products WHERE id > ? ORDER BY id LIMIT ?', after, limit));
      }
    }
  });

  it('a page by offset has the same bodies as the plain OFFSET query, and steps over the offset in the dense id index', () => {
    const plain = db.prepare('SELECT id, name, price, description, stock, created_at, updated_at FROM products ORDER BY id LIMIT ? OFFSET ?');
    for (const offset of [0, 1, 50, 110, 111, 112, 1000]) {
      const items = (JSON.parse(String(read({ q: 'products', query: { limit: 20, offset } }))) as { items: unknown[] }).items;
      expect(items, `offset ${offset}`).toEqual(plain.all(20, offset));
    }
    const plan = db
      .prepare(`EXPLAIN QUERY PLAN ${offsetPageSql(20)}`)
      .all(5)
      .map((r) => (r as { detail: string }).detail);
    expect(plan).toContain('SCAN products USING COVERING INDEX products_id_skip');
  });

  it('refuses a page size outside 1..MAX_PAGE_LIMIT before it reaches SQL', () => {
    for (const limit of [0, -1, MAX_PAGE_LIMIT + 1, 1.5, Number.NaN]) {
      expect(() => read({ q: 'products', query: { limit, offset: 0 } }), String(limit)).toThrow(RangeError);
    }
  });
});
