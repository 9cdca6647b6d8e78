// The domain's field rules, shared by every layer that handles products and counters: the HTTP edge validates
// requests with them, the DATA_FILE format reuses them (a file can hold nothing a request could not), the writer
// stores what they admit, and the readers page by MAX_PAGE_LIMIT. The tables' CHECKs (src/shared/db/migrations.ts)
// are the database's copy of the same limits.
import { z } from 'zod';

// SQLite's length() stops at U+0000, so the table's CHECKs would refuse what zod let through (a 409 where a
// 400 is due); a lone UTF-16 surrogate (JSON allows "\ud800") is stored as invalid UTF-8 and reads back as three
// U+FFFD. Neither has a place in a product's text. (includes() and isWellFormed() rather than two regular
// expressions: 0.5 us less per create, bench/ANALYSIS.md.)
const noNul = (s: z.ZodString) =>
  s
    .refine((v) => !v.includes('\u0000'), 'must not contain U+0000 (NUL)')
    .refine((v) => v.isWellFormed(), 'must be well-formed Unicode (no lone surrogates)');
export const productName = noNul(z.string().min(1).max(200));
export const productPrice = z.number().min(0).max(Number.MAX_SAFE_INTEGER);
export const productDescription = noNul(z.string().max(2000));
export const productStock = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

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
