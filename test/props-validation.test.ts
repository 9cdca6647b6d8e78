// Property-based tests of the validation layer (src/http/schemas.ts, src/shared/domain.ts), run on the TS sources.
// For arbitrary JSON values (and "near-valid" values built from valid and hostile parts) every schema either
// accepts and yields a value within the documented constraints, or rejects with issues; it never throws.
// An independent oracle (written without zod) says which inputs are valid, so acceptance is checked both ways,
// and generated valid inputs always parse back to themselves (round trip).
import fc from 'fast-check';
import type { z } from 'zod';
import { describe, expect, it } from 'vitest';
import {
  counterName,
  createProductBody,
  incrementBody,
  issueDetails,
  listQuery,
  patchProductBody,
  productId,
  putProductBody,
} from '../src/http/schemas.js';

const MAX = Number.MAX_SAFE_INTEGER;
const RUNS = { numRuns: 1000 };

// ---------------------------------------------------------------- the oracle (no zod)

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const onlyKeys = (o: Record<string, unknown>, allowed: readonly string[]) =>
  Object.keys(o).every((k) => allowed.includes(k));
const hasNul = (s: string) => s.includes('\u0000');

const okName = (v: unknown) => typeof v === 'string' && v.length >= 1 && v.length <= 200 && !hasNul(v);
const okPrice = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= MAX;
const okDescription = (v: unknown) => typeof v === 'string' && v.length <= 2000 && !hasNul(v);
const okStock = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX;
const okBy = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && Math.abs(v) <= 1e9;

const PRODUCT_KEYS = ['name', 'price', 'description', 'stock'] as const;

function oracleCreate(v: unknown): boolean {
  if (!isPlainObject(v) || !onlyKeys(v, PRODUCT_KEYS)) return false;
  return (
    okName(v.name) &&
    okPrice(v.price) &&
    (!('description' in v) || okDescription(v.description)) &&
    (!('stock' in v) || okStock(v.stock))
  );
}

function oraclePatch(v: unknown): boolean {
  if (!isPlainObject(v) || !onlyKeys(v, PRODUCT_KEYS)) return false;
  return (
    (!('name' in v) || okName(v.name)) &&
    (!('price' in v) || okPrice(v.price)) &&
    (!('description' in v) || okDescription(v.description)) &&
    (!('stock' in v) || okStock(v.stock))
  );
}

function oracleIncrement(v: unknown): boolean {
  return isPlainObject(v) && onlyKeys(v, ['by']) && (!('by' in v) || okBy(v.by));
}

const COUNTER_CHARS = new Set('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-');
function oracleCounterName(v: unknown): boolean {
  // `.` and `..` are dot-segments, which URL-normalising clients drop from a path.
  return typeof v === 'string' && v.length >= 1 && v.length <= 64 && [...v].every((c) => COUNTER_CHARS.has(c)) && v !== '.' && v !== '..';
}

const isDigits = (s: string) => s.length > 0 && [...s].every((c) => c >= '0' && c <= '9');
function oracleProductId(v: unknown): boolean {
  return typeof v === 'string' && isDigits(v) && v[0] !== '0' && v.length <= 16 && BigInt(v) <= BigInt(MAX);
}

function oracleQueryInt(v: unknown, min: number, max: number): boolean {
  return typeof v === 'string' && isDigits(v) && v.length <= 16 && BigInt(v) >= BigInt(min) && BigInt(v) <= BigInt(max);
}
function oracleListQuery(v: unknown): boolean {
  if (!isPlainObject(v) || !onlyKeys(v, ['limit', 'offset', 'after'])) return false;
  if ('offset' in v && 'after' in v) return false;
  return (
    (!('limit' in v) || oracleQueryInt(v.limit, 1, 100)) &&
    (!('offset' in v) || oracleQueryInt(v.offset, 0, MAX)) &&
    (!('after' in v) || oracleQueryInt(v.after, 0, MAX))
  );
}

// ---------------------------------------------------------------- the documented constraints on accepted values

function checkProductFields(out: Record<string, unknown>, required: boolean): void {
  expect(onlyKeys(out, PRODUCT_KEYS)).toBe(true);
  if (required || out.name !== undefined) {
    expect(typeof out.name).toBe('string');
    const name = out.name as string;
    expect(name.length).toBeGreaterThanOrEqual(1);
    expect(name.length).toBeLessThanOrEqual(200);
    expect(hasNul(name)).toBe(false);
  }
  if (required || out.price !== undefined) {
    expect(typeof out.price).toBe('number');
    expect(Number.isFinite(out.price)).toBe(true);
    expect(out.price as number).toBeGreaterThanOrEqual(0);
  }
  if (out.description !== undefined) {
    expect(typeof out.description).toBe('string');
    expect((out.description as string).length).toBeLessThanOrEqual(2000);
    expect(hasNul(out.description as string)).toBe(false);
  }
  if (out.stock !== undefined) {
    expect(Number.isInteger(out.stock)).toBe(true);
    expect(out.stock as number).toBeGreaterThanOrEqual(0);
  }
}

/** safeParse must not throw; a rejection carries issues that issueDetails can render. */
function parse<S extends z.ZodType>(schema: S, input: unknown): z.ZodSafeParseResult<z.output<S>> {
  let r: z.ZodSafeParseResult<z.output<S>> | undefined;
  expect(() => {
    r = schema.safeParse(input);
  }).not.toThrow();
  if (!r!.success) {
    expect(r!.error.issues.length).toBeGreaterThan(0);
    const details = issueDetails(r!.error, 'body');
    expect(details.length).toBe(r!.error.issues.length);
    for (const d of details) {
      expect(typeof d.path).toBe('string');
      expect(typeof d.message).toBe('string');
    }
  }
  return r!;
}

// ---------------------------------------------------------------- generators

const noNul = (s: string) => !hasNul(s);
/** Strings of every kind, including astral characters, controls and (with 'binary') lone surrogates. */
const anyString = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.constantFrom('', '\u0000', 'a\u0000b', ' ', '0', '-1', '1e3', '01', '9007199254740992'),
  fc.constantFrom('x'.repeat(201), 'x'.repeat(2001)),
);
/** Valid names: 1..200 UTF-16 code units, no NUL; includes the 200-unit boundary and astral characters. */
const validName = fc.oneof(
  fc.string({ minLength: 1, maxLength: 40 }),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
  fc.constantFrom('x'.repeat(200), '😀'.repeat(100), "'; DROP TABLE products; --", ' '),
).filter((s) => s.length >= 1 && s.length <= 200 && noNul(s));
const validDescription = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.constantFrom('', 'd'.repeat(2000), '😀'.repeat(1000)),
).filter((s) => s.length <= 2000 && noNul(s));
const validPrice = fc.oneof(
  fc.integer({ min: 0, max: 1_000_000 }),
  fc.double({ min: 0, max: MAX, noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 0.01, Number.MIN_VALUE, MAX),
);
const validStock = fc.oneof(fc.nat(1000), fc.integer({ min: 0, max: MAX }), fc.constantFrom(0, MAX));
const validBy = fc.oneof(fc.integer({ min: -1e9, max: 1e9 }), fc.constantFrom(0, -0, 1e9, -1e9));

/** Hostile values for a field: wrong types, out-of-range numbers, boundaries just outside. */
const badNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(-1, -0.5, -Number.MIN_VALUE, 0.5, 1e9 + 1, -1e9 - 1, MAX + 1, MAX + 2, 2 ** 60, Infinity, -Infinity, NaN),
);
const fieldValue = (valid: fc.Arbitrary<unknown>) =>
  fc.oneof(
    { weight: 4, arbitrary: valid },
    { weight: 1, arbitrary: badNumber },
    { weight: 1, arbitrary: anyString },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  );
/** Adds an own enumerable key (defineProperty, so '__proto__' becomes a real key as JSON.parse makes it). */
const withKey = <T extends object>(base: fc.Arbitrary<T>, keys: readonly string[]) =>
  fc.tuple(base, fc.constantFrom(...keys), fc.jsonValue({ maxDepth: 1 })).map(([o, k, v]) => {
    const copy: Record<string, unknown> = { ...(o as Record<string, unknown>) };
    Object.defineProperty(copy, k, { value: v, enumerable: true, writable: true, configurable: true });
    return copy;
  });

/** Objects built from the schema's own keys, each present or not, valid or not (strayKey adds keys it does not know). */
const nearProduct = fc.record(
  {
    name: fieldValue(validName),
    price: fieldValue(validPrice),
    description: fieldValue(validDescription),
    stock: fieldValue(validStock),
  },
  { requiredKeys: [] },
);
const strayKey = withKey(nearProduct, ['extra', 'id', 'created_at', 'Name', '__proto__', 'constructor']);
const productInput = fc.oneof(
  { weight: 2, arbitrary: fc.jsonValue() },
  { weight: 6, arbitrary: nearProduct },
  { weight: 1, arbitrary: strayKey },
  { weight: 1, arbitrary: fc.anything() },
);

const incrementInput = fc.oneof(
  fc.jsonValue(),
  fc.anything(),
  fc.record({ by: fieldValue(validBy) }, { requiredKeys: [] }),
  withKey(fc.record({ by: fieldValue(validBy) }, { requiredKeys: [] }), ['extra', 'By', '__proto__']),
);

const counterNameChar = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-');
const validCounterName = fc.string({ unit: counterNameChar, minLength: 1, maxLength: 64 }).filter((n) => n !== '.' && n !== '..');
const counterNameInput = fc.oneof(
  validCounterName,
  anyString,
  fc.jsonValue(),
  // Valid but for one character, or one too long.
  fc
    .tuple(validCounterName, fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }))
    .map(([a, c]) => a.slice(0, 32) + c + a.slice(32)),
  fc.string({ unit: counterNameChar, minLength: 65, maxLength: 70 }),
  fc.constantFrom('a\n', '\na', 'a b', 'a/b', 'ａ', 'é', 'a'.repeat(64) + '\n', '.', '..', '...', '.a'),
);

const validProductId = fc
  .oneof(fc.integer({ min: 1, max: MAX }), fc.integer({ min: 1, max: 1000 }), fc.constantFrom(1, MAX))
  .map(String);
const digitString = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: min, maxLength: max });
const productIdInput = fc.oneof(
  validProductId,
  digitString(0, 20),
  anyString,
  fc.jsonValue(),
  fc.constantFrom('0', '00', '01', '-1', '+1', '1.0', '1e3', ' 1', '1 ', '1\n', '０'),
  fc.constantFrom('9007199254740991', '9007199254740992', '9007199254740993', '9999999999999999', '10000000000000000'),
);

const queryIntString = (min: number, max: number) =>
  fc.oneof(
    fc.integer({ min, max }).map(String),
    // Leading zeros are allowed as long as the whole is at most 16 digits.
    fc.tuple(fc.integer({ min, max }), fc.nat(15)).map(([n, z]) => '0'.repeat(z) + String(n)).filter((s) => s.length <= 16),
  );
const validListQuery = fc
  .record(
    {
      limit: queryIntString(1, 100),
      page: fc.oneof(
        fc.constant({}),
        queryIntString(0, MAX).map((offset) => ({ offset })),
        queryIntString(0, MAX).map((after) => ({ after })),
      ),
    },
    { requiredKeys: ['page'] },
  )
  .map(({ limit, page }) => (limit === undefined ? { ...page } : { limit, ...page }) as Record<string, string>);
const queryValue = fc.oneof(
  queryIntString(0, 200),
  digitString(0, 18),
  anyString,
  fc.constantFrom('0', '1', '100', '101', '-1', '1.5', '', ' 1', '9007199254740991', '9007199254740992'),
);
const listQueryInput = fc.oneof(
  validListQuery,
  // What URLSearchParams gives the server: string values, any of the three keys, sometimes a stray one.
  fc.record({ limit: queryValue, offset: queryValue, after: queryValue, cursor: queryValue }, { requiredKeys: [] }),
  fc.record({ limit: queryValue, offset: queryValue, after: queryValue }, { requiredKeys: [] }),
  fc.jsonValue(),
  fc.dictionary(fc.constantFrom('limit', 'offset', 'after'), fc.jsonValue({ maxDepth: 1 })),
);

// ---------------------------------------------------------------- properties

describe('validation layer (property-based)', () => {
  it('create/put body: accepted exactly when valid, accepted values within the constraints, never throws', () => {
    for (const schema of [createProductBody, putProductBody]) {
      fc.assert(
        fc.property(productInput, (input) => {
          const r = parse(schema, input);
          expect(r.success).toBe(oracleCreate(input));
          if (r.success) {
            checkProductFields(r.data as Record<string, unknown>, true);
            expect(r.data).toEqual(input);
          }
        }),
        RUNS,
      );
    }
  });

  it('patch body: accepted exactly when valid, accepted values within the constraints, never throws', () => {
    fc.assert(
      fc.property(productInput, (input) => {
        const r = parse(patchProductBody, input);
        expect(r.success).toBe(oraclePatch(input));
        if (r.success) {
          checkProductFields(r.data as Record<string, unknown>, false);
          expect(r.data).toEqual(input);
        }
      }),
      RUNS,
    );
  });

  it('increment body: accepted exactly when valid, by an integer with |by| <= 1e9, never throws', () => {
    fc.assert(
      fc.property(incrementInput, (input) => {
        const r = parse(incrementBody, input);
        expect(r.success).toBe(oracleIncrement(input));
        if (r.success) {
          expect(onlyKeys(r.data as Record<string, unknown>, ['by'])).toBe(true);
          if (r.data.by !== undefined) {
            expect(Number.isInteger(r.data.by)).toBe(true);
            expect(Math.abs(r.data.by)).toBeLessThanOrEqual(1e9);
          }
        }
      }),
      RUNS,
    );
  });

  it('counter name: accepted exactly when it matches [A-Za-z0-9_.-]{1,64} and is not . or .., never throws', () => {
    fc.assert(
      fc.property(counterNameInput, (input) => {
        const r = parse(counterName, input);
        expect(r.success).toBe(oracleCounterName(input));
        if (r.success) {
          expect(r.data).toBe(input);
          expect(r.data).toMatch(/^[A-Za-z0-9_.-]{1,64}$/);
        }
      }),
      RUNS,
    );
  });

  it('product id path parameter: accepted exactly when a canonical positive safe integer, yielding that number', () => {
    fc.assert(
      fc.property(productIdInput, (input) => {
        const r = parse(productId, input);
        expect(r.success).toBe(oracleProductId(input));
        if (r.success) {
          expect(Number.isSafeInteger(r.data)).toBe(true);
          expect(r.data).toBeGreaterThanOrEqual(1);
          expect(String(r.data)).toBe(input); // no rounding: the id is exactly the one asked for
        }
      }),
      RUNS,
    );
  });

  it('product id: the hot path\'s plain check (accept) agrees with the schema on every string, value included', () => {
    fc.assert(
      fc.property(productIdInput.filter((v): v is string => typeof v === 'string'), (input) => {
        const r = productId.safeParse(input);
        expect(productId.accept(input)).toBe(r.success ? r.data : undefined);
      }),
      RUNS,
    );
  });

  it('list query: accepted exactly when valid, limit 1..100 (default 20), offset and after never both', () => {
    fc.assert(
      fc.property(listQueryInput, (input) => {
        const r = parse(listQuery, input);
        expect(r.success).toBe(oracleListQuery(input));
        if (r.success) {
          const q = r.data;
          expect(onlyKeys(q as Record<string, unknown>, ['limit', 'offset', 'after'])).toBe(true);
          expect(Number.isInteger(q.limit)).toBe(true);
          expect(q.limit).toBeGreaterThanOrEqual(1);
          expect(q.limit).toBeLessThanOrEqual(100);
          expect(q.offset === undefined || q.after === undefined).toBe(true);
          for (const v of [q.offset, q.after]) if (v !== undefined) expect(Number.isSafeInteger(v) && v >= 0).toBe(true);
          const src = input as Record<string, string>;
          expect(q.limit).toBe(src.limit === undefined ? 20 : Number(src.limit));
          expect(q.offset).toBe(src.offset === undefined ? undefined : Number(src.offset));
          expect(q.after).toBe(src.after === undefined ? undefined : Number(src.after));
        }
      }),
      RUNS,
    );
  });

  // Lone UTF-16 surrogates ('\ud800', which JSON.parse yields from "\\ud800") cannot be stored as sent: SQLite
  // would write invalid UTF-8 that reads back as three U+FFFD. The schemas refuse them.
  it('strings with lone surrogates are rejected (name and description, create/put/patch)', () => {
    for (const bad of ['\ud800', 'a\udc00b', '\udbff', '😀'.slice(0, 1)]) {
      for (const input of [{ name: bad, price: 1 }, { name: 'ok', price: 1, description: bad }]) {
        expect(createProductBody.safeParse(input).success).toBe(false);
        expect(putProductBody.safeParse(input).success).toBe(false);
        expect(patchProductBody.safeParse(input).success).toBe(false);
      }
    }
  });

  // Each field is one check (src/shared/domain.ts): its issues carry zod's own codes and wording, one per fault.
  // A chain of zod checks said some faults twice (an integer past 2^53: "expected int" and "expected number") or
  // checked a length on a value of the wrong type ("expected array to have >=1 items" for a name sent as []).
  it('one issue per fault, worded as zod words its own checks', () => {
    const issues = (r: { success: boolean; error?: z.ZodError }) => r.error!.issues.map((i) => [i.path.join('.'), i.message]);
    expect(issues(createProductBody.safeParse({ name: '', price: -1, description: 'x'.repeat(2001), stock: 1.5 }))).toEqual([
      ['name', 'Too small: expected string to have >=1 characters'],
      ['price', 'Too small: expected number to be >=0'],
      ['description', 'Too big: expected string to have <=2000 characters'],
      ['stock', 'Invalid input: expected int, received number'],
    ]);
    expect(issues(createProductBody.safeParse({ name: [], price: 2 ** 53, stock: 2 ** 53 }))).toEqual([
      ['name', 'Invalid input: expected string, received array'],
      ['price', 'Too big: expected number to be <=9007199254740991'],
      ['stock', 'Too big: expected number to be <=9007199254740991'],
    ]);
    expect(issues(createProductBody.safeParse({ name: 'x'.repeat(201) + '\u0000', price: 1 }))).toEqual([
      ['name', 'Too big: expected string to have <=200 characters'],
      ['name', 'must not contain U+0000 (NUL)'],
    ]);
    expect(issues(incrementBody.safeParse({ by: 2 ** 53 }))).toEqual([['by', 'Too big: expected number to be <=1000000000']]);
    expect(issues(incrementBody.safeParse({ by: -0.5 }))).toEqual([['by', 'Invalid input: expected int, received number']]);
    expect(issues(productId.safeParse('9999999999999999'))).toEqual([['', 'Too big: expected number to be <=9007199254740991']]);
    expect(issues(productId.safeParse('01'))).toEqual([['', 'must be a positive integer']]);
    expect(productId.safeParse('9007199254740991').data).toBe(Number.MAX_SAFE_INTEGER);
    expect(issues(listQuery.safeParse({ limit: '0', offset: '9999999999999999' }))).toEqual([
      ['limit', 'Too small: expected number to be >=1'],
      ['offset', 'Too big: expected number to be <=9007199254740991'],
    ]);
    expect(issues(listQuery.safeParse({ limit: '101', after: '-1' }))).toEqual([
      ['limit', 'Too big: expected number to be <=100'],
      ['after', 'must be a non-negative integer'],
    ]);
  });

  describe('round trip: generated valid inputs are always accepted unchanged', () => {
    const validCreate = fc.record(
      { name: validName, price: validPrice, description: validDescription, stock: validStock },
      { requiredKeys: ['name', 'price'], noNullPrototype: true },
    );
    const validPatch = fc.record(
      { name: validName, price: validPrice, description: validDescription, stock: validStock },
      { requiredKeys: [], noNullPrototype: true },
    );

    it('create/put bodies', () => {
      fc.assert(
        fc.property(validCreate, (input) => {
          for (const schema of [createProductBody, putProductBody]) {
            const r = schema.safeParse(input);
            expect(r.success).toBe(true);
            expect(r.data).toStrictEqual(input);
          }
        }),
        RUNS,
      );
    });

    it('patch bodies (including the empty patch)', () => {
      fc.assert(
        fc.property(validPatch, (input) => {
          const r = patchProductBody.safeParse(input);
          expect(r.success).toBe(true);
          expect(r.data).toStrictEqual(input);
        }),
        RUNS,
      );
    });

    const validIncrement = fc.record({ by: validBy }, { requiredKeys: [], noNullPrototype: true });

    it('increment bodies, counter names, product ids, list queries', () => {
      fc.assert(
        fc.property(validIncrement, validCounterName, validProductId, validListQuery, (inc, name, id, query) => {
          expect(incrementBody.safeParse(inc)).toEqual({ success: true, data: inc });
          expect(counterName.safeParse(name)).toEqual({ success: true, data: name });
          expect(productId.safeParse(id)).toEqual({ success: true, data: Number(id) });
          const q = listQuery.safeParse(query);
          expect(q.success).toBe(true);
          expect(q.data).toStrictEqual({
            limit: query.limit === undefined ? 20 : Number(query.limit),
            ...(query.offset !== undefined ? { offset: Number(query.offset) } : {}),
            ...(query.after !== undefined ? { after: Number(query.after) } : {}),
          });
        }),
        RUNS,
      );
    });
  });
});
