// The domain's field rules, shared by every layer that handles products and counters: the HTTP edge validates
// requests with them, the DATA_FILE format reuses them (a file can hold nothing a request could not), the writer
// stores what they admit, and the readers page by MAX_PAGE_LIMIT. The tables' CHECKs (src/shared/db/migrations.ts)
// are the database's copy of the same limits.
import { z } from 'zod';

// Each field is one zod check rather than a chain (min, max, int, refines): zod runs every check of a chain through
// its own machinery, and one check per field halves a create body's validation (2.1 -> 1.0 us, bench/ANALYSIS.md).
// The issues are the ones zod's own min/max/int checks raise (same codes and fields, so zod words them the same),
// and `.meta` gives /openapi.json the same bounds.

/**
 * Text of `min` to `max` UTF-16 units. SQLite's length() stops at U+0000, so the table's CHECKs would refuse what
 * zod let through (a 409 where a 400 is due); a lone UTF-16 surrogate (JSON allows "\ud800") is stored as invalid
 * UTF-8 and reads back as three U+FFFD. Neither has a place in a product's text.
 */
function text(min: number, max: number) {
  return z
    .string()
    .check((ctx) => {
      const v = ctx.value;
      if (v.length < min) ctx.issues.push({ code: 'too_small', origin: 'string', minimum: min, inclusive: true, input: v, continue: true });
      else if (v.length > max) ctx.issues.push({ code: 'too_big', origin: 'string', maximum: max, inclusive: true, input: v, continue: true });
      if (v.includes('\u0000')) ctx.issues.push({ code: 'custom', message: 'must not contain U+0000 (NUL)', input: v, continue: true });
      if (!v.isWellFormed()) ctx.issues.push({ code: 'custom', message: 'must be well-formed Unicode (no lone surrogates)', input: v, continue: true });
    })
    .meta(min > 0 ? { minLength: min, maxLength: max } : { maxLength: max });
}

/** A number from `min` to `max` (both within the safe integers), an integer when `int`. */
function bounded(min: number, max: number, int: boolean) {
  if (!(Number.isSafeInteger(min) && Number.isSafeInteger(max))) throw new Error('bounded(): bounds must be safe integers');
  return z
    .number()
    .check((ctx) => {
      const v = ctx.value;
      if (int && !Number.isInteger(v)) {
        ctx.issues.push({ code: 'invalid_type', expected: 'int', format: 'safeint', input: v, continue: false });
        return;
      }
      if (v < min) ctx.issues.push({ code: 'too_small', origin: 'number', minimum: min, inclusive: true, input: v, continue: true });
      else if (v > max) ctx.issues.push({ code: 'too_big', origin: 'number', maximum: max, inclusive: true, input: v, continue: true });
    })
    .meta(int ? { type: 'integer', minimum: min, maximum: max } : { minimum: min, maximum: max });
}

export const productName = text(1, 200);
export const productPrice = bounded(0, Number.MAX_SAFE_INTEGER, false);
export const productDescription = text(0, 2000);
export const productStock = bounded(0, Number.MAX_SAFE_INTEGER, true);
/** POST /counters/{name}/increment: how much to add. */
export const incrementBy = bounded(-1e9, 1e9, true);

/** A product's writable fields, as a create (or PUT, or a DATA_FILE product) gives them. */
export const productInput = z.strictObject({
  name: productName,
  price: productPrice,
  description: productDescription.optional(),
  stock: productStock.optional(),
});

/** Any subset of the writable fields (PATCH). */
export const productPatch = z.strictObject({
  name: productName.optional(),
  price: productPrice.optional(),
  description: productDescription.optional(),
  stock: productStock.optional(),
});

// `.` and `..` are dot-segments: URL-normalising clients (browsers, curl, WHATWG URL) remove them from a path, so
// such a counter could not be addressed reliably.
export const counterName = z
  .string()
  .regex(/^(?!\.\.?$)[A-Za-z0-9_.-]{1,64}$/, 'must match [A-Za-z0-9_.-]{1,64} and not be "." or ".."');

/** How durable a write must be before it is answered: committed locally, or confirmed in the replica. */
export const DURABILITIES = ['local', 'replicated'] as const;
export type Durability = (typeof DURABILITIES)[number];

/** The largest page a list request may ask for (`limit`; the readers write it into SQL). */
export const MAX_PAGE_LIMIT = 100;

const isoTime = z.string().describe('ISO-8601 UTC timestamp, millisecond precision');
/** A stored product, as the API answers it. */
export const productSchema = z.strictObject({
  id: z.number().int().min(1),
  name: productName,
  price: productPrice,
  description: productDescription,
  stock: productStock,
  created_at: isoTime,
  updated_at: isoTime,
});

export type ProductInput = z.infer<typeof productInput>;
export type ProductPatch = z.infer<typeof productPatch>;
export type Product = z.infer<typeof productSchema>;

/** A page of products: by offset, or after an id (keyset); never both. */
export interface PageQuery {
  limit: number;
  offset?: number;
  after?: number;
}
