// Property-based test of the batch executor: random sequences of write commands, cut into random batches, run
// through the real createBatchRunner + prepareCommands on a real SQLite file, against a pure in-memory model
// applied to the same commands in order. Checked after every batch:
//  - every command is answered exactly once (one outcome per command, each either ok or err);
//  - a failing command fails with the model's error code (not_found / conflict) and changes nothing;
//  - every successful command's result equals the model's (ids, bodies; timestamps = the batch's one timestamp,
//    created_at kept by put/patch);
//  - the products and counters tables equal the model, and so does the history of applied data files.
// A DATA_FILE command (applyDataFile) is one command too: all of its rows or none, and the same content twice in a
// row is not applied again.
// Some commands are also made to fail *after* their statement succeeded (an injected error thrown by a wrapper
// around the real executor): the SAVEPOINT must undo what they wrote while the rest of the batch commits.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { migrate, openWriter } from '../src/shared/db/open.js';
import { MIGRATIONS } from '../src/shared/db/migrations.js';
import { AppError } from '../src/shared/errors.js';
import type { WriteOp } from '../src/shared/protocol.js';
import type { Product } from '../src/shared/domain.js';
import { createBatchRunner } from '../src/writer/batch.js';
import { prepareCommands } from '../src/writer/commands.js';

const MAX = Number.MAX_SAFE_INTEGER; // the counters.value CHECK bound
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

type Row = Product;
interface ProductData {
  name: string;
  price: number;
  description?: string;
  stock?: number;
}
type PatchData = Partial<ProductData>;

// ---------------------------------------------------------------- the model

type Expected = { ok: { body: unknown; id?: number } } | { err: 'not_found' | 'conflict' };

/** What the table's CHECK constraints accept (SQLite's length() counts code points). */
function storable(d: PatchData): boolean {
  const len = (s: string) => [...s].length;
  return (
    (d.name === undefined || (len(d.name) >= 1 && len(d.name) <= 200)) &&
    (d.price === undefined || d.price >= 0) &&
    (d.description === undefined || len(d.description) <= 2000) &&
    (d.stock === undefined || d.stock >= 0)
  );
}

class Model {
  products = new Map<number, Row>();
  counters = new Map<string, number>();
  /** AUTOINCREMENT: the largest id ever handed out; ids of deleted rows are never reused. */
  seq = 0;
  deleted: number[] = [];
  /** data_file_applied: one entry per applied content, oldest first. */
  applied: { hash: string; counters: number; products: number }[] = [];

  snapshot(): () => void {
    const products = new Map(this.products);
    const counters = new Map(this.counters);
    const { seq } = this;
    const deleted = [...this.deleted];
    const applied = [...this.applied];
    return () => {
      this.products = products;
      this.counters = counters;
      this.seq = seq;
      this.deleted = deleted;
      this.applied = applied;
    };
  }

  /** Applies one command; `now` is the batch's timestamp. */
  apply(op: WriteOp, now: string): Expected {
    switch (op.op) {
      case 'createProduct': {
        if (!storable(op.data)) return { err: 'conflict' };
        const id = ++this.seq;
        const row = this.row(id, op.data, now, now);
        this.products.set(id, row);
        return { ok: { id, body: row } };
      }
      case 'putProduct': {
        const old = this.products.get(op.id);
        if (!old) return { err: 'not_found' };
        if (!storable(op.data)) return { err: 'conflict' };
        const row = this.row(op.id, op.data, old.created_at, now);
        this.products.set(op.id, row);
        return { ok: { body: row } };
      }
      case 'patchProduct': {
        const old = this.products.get(op.id);
        if (!old) return { err: 'not_found' };
        if (!storable(op.data)) return { err: 'conflict' };
        const d = op.data;
        // PATCH {} changes nothing and keeps updated_at (src/writer/commands.ts).
        if (d.name === undefined && d.price === undefined && d.description === undefined && d.stock === undefined) {
          return { ok: { body: old } };
        }
        const row: Row = {
          ...old,
          name: d.name ?? old.name,
          price: d.price ?? old.price,
          description: d.description ?? old.description,
          stock: d.stock ?? old.stock,
          updated_at: now,
        };
        this.products.set(op.id, row);
        return { ok: { body: row } };
      }
      case 'deleteProduct': {
        if (!this.products.delete(op.id)) return { err: 'not_found' };
        this.deleted.push(op.id);
        return { ok: { body: null } };
      }
      case 'increment': {
        const value = BigInt(this.counters.get(op.name) ?? 0) + BigInt(op.by);
        if (value > BigInt(MAX) || value < -BigInt(MAX)) return { err: 'conflict' };
        this.counters.set(op.name, Number(value));
        return { ok: { body: { name: op.name, value: Number(value) } } };
      }
      case 'applyDataFile': {
        if (this.applied.at(-1)?.hash === op.hash) return { ok: { body: { applied: false } } };
        // One value the table refuses and none of the file is applied.
        if (!op.products.every(storable) || op.counters.some(([, v]) => Math.abs(v) > MAX)) return { err: 'conflict' };
        for (const [name, value] of op.counters) this.counters.set(name, value);
        for (const p of op.products) {
          const old = this.products.get(p.id);
          const row = this.row(p.id, p, old?.created_at ?? now, now);
          // A row whose content the file does not change keeps its updated_at.
          if (old && old.name === row.name && old.price === row.price && old.description === row.description && old.stock === row.stock) continue;
          this.products.set(p.id, row);
          this.seq = Math.max(this.seq, p.id);
          this.deleted = this.deleted.filter((id) => id !== p.id);
        }
        const entry = { hash: op.hash, counters: op.counters.length, products: op.products.length };
        this.applied.push(entry);
        return { ok: { body: { applied: true, counters: entry.counters, products: entry.products } } };
      }
    }
  }

  private row(id: number, d: ProductData, created_at: string, updated_at: string): Row {
    const { name, price, description = '', stock = 0 } = d;
    return { id, name, price, description, stock, created_at, updated_at };
  }
}

// ---------------------------------------------------------------- commands, as generated

/** A product id to aim at, resolved against the model's state just before the command runs. */
type Target = { kind: 'existing'; pick: number } | { kind: 'deleted'; pick: number } | { kind: 'never'; ahead: number };
type Cmd =
  | { op: 'create'; data: ProductData }
  | { op: 'put'; target: Target; data: ProductData }
  | { op: 'patch'; target: Target; data: PatchData }
  | { op: 'delete'; target: Target }
  | { op: 'increment'; name: string; by: number }
  | { op: 'data'; hash: number; counters: [string, number][]; products: { target: Target; data: ProductData; same?: boolean }[] };

function resolve(t: Target, m: Model): number {
  // 'never': an id not handed out yet, or 0 / -1 (the executor sits below validation, which refuses those).
  if (t.kind === 'never') return t.ahead < 0 ? t.ahead + 1 : m.seq + 1 + t.ahead;
  const ids = t.kind === 'existing' ? [...m.products.keys()] : m.deleted;
  return ids.length > 0 ? ids[t.pick % ids.length]! : m.seq + 1 + t.pick;
}

function toOp(c: Cmd, m: Model): WriteOp {
  switch (c.op) {
    case 'create':
      return { op: 'createProduct', data: c.data };
    case 'put':
      return { op: 'putProduct', id: resolve(c.target, m), data: c.data };
    case 'patch':
      return { op: 'patchProduct', id: resolve(c.target, m), data: c.data };
    case 'delete':
      return { op: 'deleteProduct', id: resolve(c.target, m) };
    case 'increment':
      return { op: 'increment', name: c.name, by: c.by };
    case 'data':
      return {
        op: 'applyDataFile',
        hash: HASHES[c.hash % HASHES.length]!,
        counters: c.counters,
        products: c.products.map((p) => {
          // A data file's ids are positive (validation refuses the rest).
          const id = Math.max(1, resolve(p.target, m));
          // `same`: the product exactly as stored, which must keep its updated_at.
          const old = p.same ? m.products.get(id) : undefined;
          return old ? { id, name: old.name, price: old.price, description: old.description, stock: old.stock } : { id, ...p.data };
        }),
      };
  }
}

/** Few distinct contents, so the same one often comes twice in a row. */
const HASHES = ['a'.repeat(64), 'b'.repeat(64), 'c'.repeat(64)] as const;

// ---------------------------------------------------------------- generators

const noNul = (s: string) => !s.includes('\u0000');
// Well-formed strings only (see the known-bug test below for lone surrogates).
const name = fc
  .oneof(
    { weight: 5, arbitrary: fc.string({ minLength: 1, maxLength: 12 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }) },
    { weight: 1, arbitrary: fc.constantFrom('x'.repeat(200), '😀'.repeat(100), "'; DROP TABLE products; --") },
  )
  .filter((s) => s.length >= 1 && s.length <= 200 && noNul(s));
const description = fc
  .oneof(
    { weight: 5, arbitrary: fc.string({ maxLength: 20 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
    { weight: 1, arbitrary: fc.constantFrom('', 'd'.repeat(2000)) },
  )
  .filter(noNul);
const price = fc.oneof(
  fc.integer({ min: 0, max: 10_000 }),
  fc.double({ min: 0, max: MAX, noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, 0.1, MAX),
);
const stock = fc.oneof(fc.nat(100), fc.constantFrom(0, MAX));

const validData: fc.Arbitrary<ProductData> = fc.record(
  { name, price, description, stock },
  { requiredKeys: ['name', 'price'], noNullPrototype: true },
);
/** Data the validation layer would refuse but the table's CHECKs catch too: the executor must answer conflict. */
const unstorableData: fc.Arbitrary<ProductData> = fc.oneof(
  fc.record({ name: fc.constant(''), price }, { noNullPrototype: true }),
  fc.record({ name, price: fc.constantFrom(-1, -0.5) }, { noNullPrototype: true }),
  fc.record({ name, price, stock: fc.constantFrom(-1, -MAX) }, { noNullPrototype: true }),
  fc.record({ name, price, description: fc.constant('d'.repeat(2001)) }, { noNullPrototype: true }),
);
const productData = fc.oneof({ weight: 8, arbitrary: validData }, { weight: 1, arbitrary: unstorableData });
const patchData: fc.Arbitrary<PatchData> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ name, price, description, stock }, { requiredKeys: [], noNullPrototype: true }) },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.constant({ name: '' }),
      fc.constant({ price: -1 }),
      fc.constant({ stock: -1 }),
      fc.constant({ description: 'd'.repeat(2001) }),
      fc.record({ name, price: fc.constant(-1) }, { noNullPrototype: true }),
    ),
  },
);

const target: fc.Arbitrary<Target> = fc.oneof(
  { weight: 6, arbitrary: fc.nat(1000).map((pick) => ({ kind: 'existing' as const, pick })) },
  { weight: 2, arbitrary: fc.nat(1000).map((pick) => ({ kind: 'deleted' as const, pick })) },
  { weight: 2, arbitrary: fc.integer({ min: -2, max: 1000 }).map((ahead) => ({ kind: 'never' as const, ahead })) },
);

// Counters: a few names (case matters: 'a' and 'A' are different counters), two of them seeded next to the
// CHECK bounds so that increments push them over.
const COUNTERS = ['a', 'A', 'hits', 'edge.hi', 'edge.lo'] as const;
const by = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: -10, max: 10 }) },
  { weight: 2, arbitrary: fc.integer({ min: -1e9, max: 1e9 }) },
  { weight: 1, arbitrary: fc.constantFrom(1e9, -1e9, 0) },
);

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: productData.map((data) => ({ op: 'create' as const, data })) },
  { weight: 2, arbitrary: fc.record({ target, data: productData }).map((r) => ({ op: 'put' as const, ...r })) },
  { weight: 3, arbitrary: fc.record({ target, data: patchData }).map((r) => ({ op: 'patch' as const, ...r })) },
  { weight: 2, arbitrary: target.map((t) => ({ op: 'delete' as const, target: t })) },
  {
    weight: 4,
    arbitrary: fc
      .record({ name: fc.oneof(fc.constantFrom(...COUNTERS), fc.constantFrom('edge.hi', 'edge.lo')), by })
      .map((r) => ({ op: 'increment' as const, ...r })),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      hash: fc.nat(2),
      // Counter values past the CHECK bounds now and then: the whole file must then fail.
      counters: fc.array(fc.tuple(fc.constantFrom(...COUNTERS), fc.oneof({ weight: 9, arbitrary: by }, { weight: 1, arbitrary: fc.constant(MAX + 1) })), {
        maxLength: 3,
      }),
      products: fc.array(fc.record({ target, data: productData, same: fc.boolean() }), { maxLength: 4 }),
    }).map((r) => ({ op: 'data' as const, ...r })),
  },
);

const scenario = fc.record({
  // How far from the bound the edge counters start: within 20 (small steps cross it) or 3e9 (a few big ones do).
  hiGap: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 3e9 })),
  loGap: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 3e9 })),
  cmds: fc.array(cmd, { minLength: 1, maxLength: 80, size: 'medium' }),
  // Commands (by index) whose executor throws right after the real command ran.
  inject: fc.uniqueArray(fc.nat(79), { maxLength: 6 }),
  // Batch sizes, used cyclically to cut the commands into consecutive batches.
  sizes: fc.array(fc.integer({ min: 1, max: 16 }), { minLength: 1, maxLength: 8 }),
});

// ---------------------------------------------------------------- the database side

function tempDb(): { db: Database.Database; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'props-batch-'));
  const db = openWriter({ dbPath: join(dir, 'db.sqlite'), busyTimeoutMs: 5000, cacheSizeKib: 2048, synchronous: 'NORMAL' });
  migrate(db, MIGRATIONS);
  return { db, dir };
}

/** JSON normal form: the wire shows -0 as 0, and key order is not part of the contract. */
const norm = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

function dbState(db: Database.Database): { products: unknown; counters: unknown; applied: unknown } {
  return {
    products: norm(
      db.prepare('SELECT id, name, price, description, stock, created_at, updated_at FROM products ORDER BY id').all(),
    ),
    counters: norm(db.prepare('SELECT name, value FROM counters ORDER BY name').all()),
    applied: db.prepare('SELECT hash, counters, products FROM data_file_applied ORDER BY seq').all(),
  };
}
function modelState(m: Model): { products: unknown; counters: unknown; applied: unknown } {
  return {
    products: norm([...m.products.values()].sort((a, b) => a.id - b.id)),
    // ORDER BY name uses SQLite's BINARY collation: compare UTF-8 bytes (the same as code points).
    counters: norm(
      [...m.counters.entries()]
        .sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
        .map(([name, value]) => ({ name, value })),
    ),
    applied: m.applied,
  };
}

// ---------------------------------------------------------------- the property

/** Runs one scenario, checking everything against the model; returns each command's outcome ('ok' or error code). */
function runScenario(s: { hiGap: number; loGap: number; cmds: Cmd[]; inject: number[]; sizes: number[] }): string[] {
  const { db, dir } = tempDb();
  const outcomes: string[] = [];
  try {
    // The real executor, wrapped: an op in `poisoned` throws after its statement succeeded (arguments passed
    // through as they come, so a changed Executor signature still works).
    const exec = prepareCommands(db);
    const poisoned = new WeakSet<WriteOp>();
    const wrapped: typeof exec = (...args) => {
      const out = exec(...args);
      if (poisoned.has(args[0])) throw new AppError('conflict', 'injected failure after the command wrote');
      return out;
    };
    const runner = createBatchRunner(db, wrapped, {
      onInternalError: (err) => {
        throw new Error(`internal error from a command: ${String(err)}`);
      },
    });
    const model = new Model();
    // Seed the edge counters from outside the executor, in the database and the model alike.
    const seed = db.prepare('INSERT INTO counters (name, value) VALUES (?, ?)');
    seed.run('edge.hi', MAX - s.hiGap);
    seed.run('edge.lo', -MAX + s.loGap);
    model.counters.set('edge.hi', MAX - s.hiGap);
    model.counters.set('edge.lo', -MAX + s.loGap);

    let at = 0;
    let lastNow = '';
    for (let b = 0; at < s.cmds.length; b++) {
      const start = at;
      const cmds = s.cmds.slice(start, start + s.sizes[b % s.sizes.length]!);
      at += cmds.length;

      // Resolve ids and predict outcomes in order, against a model that stands for the batch's one timestamp
      // with a placeholder (the real one is only known once the batch ran).
      const placeholder = `@batch-${b}@`;
      const ops: WriteOp[] = [];
      const expected: Expected[] = [];
      cmds.forEach((c, i) => {
        const op = toOp(c, model);
        ops.push(op);
        if (!s.inject.includes(start + i)) {
          expected.push(model.apply(op, placeholder));
          return;
        }
        // Poisoned: it fails as it would anyway, or with the injected conflict, and leaves no trace.
        poisoned.add(op);
        const restore = model.snapshot();
        const e = model.apply(op, placeholder);
        restore();
        expected.push('err' in e ? e : { err: 'conflict' });
      });

      const t0 = Date.now();
      const { results } = runner.run(ops);
      const t1 = Date.now();

      // Exactly one answer per command, each either ok or err.
      expect(results.length).toBe(ops.length);
      for (const r of results) expect(('ok' in r ? 1 : 0) + ('err' in r ? 1 : 0)).toBe(1);
      outcomes.push(...results.map((r) => ('ok' in r ? 'ok' : r.err.code)));

      // The batch's timestamp, from any product it wrote: one for all, ISO-8601 UTC, taken during the run.
      let now: string | undefined;
      results.forEach((r, i) => {
        const op = ops[i]!;
        const unchanged = op.op === 'patchProduct' && Object.values(op.data).every((v) => v === undefined);
        if ('ok' in r && r.ok.body !== null && op.op !== 'increment' && op.op !== 'applyDataFile' && !unchanged) {
          const row = JSON.parse(r.ok.body) as Row;
          now ??= row.updated_at;
          expect(row.updated_at, `command ${i}: updated_at is the batch's timestamp`).toBe(now);
        }
      });
      // An applied data file records the batch's timestamp too (and may be the only command that wrote products).
      if (results.some((r, i) => ops[i]!.op === 'applyDataFile' && 'ok' in r && (JSON.parse(r.ok.body!) as { applied: boolean }).applied)) {
        const at = db.prepare('SELECT applied_at FROM data_file_applied ORDER BY seq DESC LIMIT 1').pluck().get() as string;
        if (now !== undefined) expect(at, 'data file applied_at is the batch timestamp').toBe(now);
        now ??= at;
      }
      if (now !== undefined) {
        expect(now).toMatch(ISO);
        expect(Date.parse(now)).toBeGreaterThanOrEqual(t0 - 1);
        expect(Date.parse(now)).toBeLessThanOrEqual(t1 + 1);
        expect(now >= lastNow).toBe(true);
        lastNow = now;
      }
      const fill = (v: unknown): unknown => norm(JSON.parse(JSON.stringify(v).replaceAll(placeholder, now ?? placeholder)));
      // The model's rows of this batch get the real timestamp from now on.
      for (const row of model.products.values()) {
        if (row.created_at === placeholder) row.created_at = now!;
        if (row.updated_at === placeholder) row.updated_at = now!;
      }

      results.forEach((r, i) => {
        const exp = expected[i]!;
        const what = `batch ${b}, command ${i}: ${JSON.stringify(ops[i])}`;
        if ('err' in exp) {
          expect('err' in r ? r.err.code : `ok ${JSON.stringify(r.ok)}`, what).toBe(exp.err);
        } else {
          expect('ok' in r ? undefined : r.err, what).toBeUndefined();
          if (!('ok' in r)) return;
          expect(r.ok.id, what).toBe(exp.ok.id);
          expect(r.ok.body === null ? null : norm(JSON.parse(r.ok.body)), what).toEqual(fill(exp.ok.body));
        }
      });

      // The database equals the model after every batch.
      expect(dbState(db), `after batch ${b}`).toEqual(modelState(model));
    }
    expect(db.inTransaction).toBe(false);
    return outcomes;
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('batch executor (property-based, against a model)', () => {
  it('random commands in random batches: one answer each, errors as modelled, database equals the model', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        runScenario(s);
      }),
      { numRuns: 100 },
    );
  });

  it('a fixed batch hitting every kind of failure alongside successes (so the property cannot pass vacuously)', () => {
    const d = { name: 'p', price: 1 };
    const outcomes = runScenario({
      hiGap: 5,
      loGap: 5,
      inject: [10, 11],
      sizes: [14],
      cmds: [
        { op: 'create', data: d }, // id 1
        { op: 'patch', target: { kind: 'never', ahead: 3 }, data: { price: 2 } }, // id 5: none
        { op: 'put', target: { kind: 'deleted', pick: 0 }, data: d }, // nothing deleted yet: id 2, none
        { op: 'increment', name: 'edge.hi', by: 3 }, // MAX - 2
        { op: 'increment', name: 'edge.hi', by: 10 }, // MAX + 8: CHECK
        { op: 'increment', name: 'edge.lo', by: -6 }, // -MAX - 1: CHECK
        { op: 'create', data: { name: '', price: 1 } }, // CHECK
        { op: 'patch', target: { kind: 'existing', pick: 0 }, data: { stock: -1 } }, // CHECK
        { op: 'delete', target: { kind: 'existing', pick: 0 } },
        { op: 'delete', target: { kind: 'deleted', pick: 0 } }, // id 1 again
        { op: 'create', data: d }, // injected failure: the row is rolled back, and so is its id
        { op: 'increment', name: 'A', by: 1 }, // injected failure: the counter is not created
        { op: 'create', data: d }, // id 2
        { op: 'increment', name: 'A', by: 1 }, // 1
      ],
    });
    expect(outcomes).toEqual([
      'ok',
      'not_found',
      'not_found',
      'ok',
      'conflict',
      'conflict',
      'conflict',
      'conflict',
      'ok',
      'not_found',
      'conflict',
      'conflict',
      'ok',
      'ok',
    ]);
  });

  it('data files in fixed batches: applied once, the same content again is a no-op, one bad value fails all of it', () => {
    const p = (ahead: number, data: ProductData) => ({ target: { kind: 'never' as const, ahead }, data });
    const outcomes = runScenario({
      hiGap: 5,
      loGap: 5,
      inject: [6],
      sizes: [3, 2, 3],
      cmds: [
        { op: 'data', hash: 0, counters: [['a', 7]], products: [p(0, { name: 'x', price: 1 }), p(4, { name: 'y', price: 2 })] }, // ids 1, 5
        { op: 'increment', name: 'a', by: 1 }, // 8
        { op: 'data', hash: 0, counters: [['a', 7]], products: [] }, // the same content: not applied, a stays 8
        { op: 'data', hash: 1, counters: [['a', 1]], products: [p(0, { name: '', price: 1 })] }, // CHECK: none of it
        { op: 'create', data: { name: 'z', price: 3 } }, // id 6 (the file's id 5 moved the sequence)
        // applied; product 1 is listed unchanged: it keeps the first batch's updated_at
        { op: 'data', hash: 1, counters: [['A', 2]], products: [{ target: { kind: 'existing', pick: 0 }, data: { name: 'x', price: 1 } }] },
        { op: 'data', hash: 2, counters: [['A', 3]], products: [] }, // injected failure: rolled back, no history row
        { op: 'data', hash: 0, counters: [['hits', 1]], products: [] }, // content 0 again after 1: applied again
      ],
    });
    expect(outcomes).toEqual(['ok', 'ok', 'ok', 'conflict', 'ok', 'ok', 'conflict', 'ok']);
  });
});
