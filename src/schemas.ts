// Request schemas: validated at the HTTP boundary; the same schemas give the types used inward.
import { z } from 'zod';
import { MAX_PAGE_LIMIT } from './protocol.js';

// SQLite's length() stops at U+0000, so the table's CHECKs would refuse what zod let through (a 409 where a
// 400 is due); a lone UTF-16 surrogate (JSON allows "\ud800") is stored as invalid UTF-8 and reads back as three
// U+FFFD. Neither has a place in a product's text.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const noNul = (s: z.ZodString) =>
  s
    .regex(/^[^\u0000]*$/, 'must not contain U+0000 (NUL)')
    .refine((v) => !LONE_SURROGATE.test(v), 'must be well-formed Unicode (no lone surrogates)');
export const productName = noNul(z.string().min(1).max(200));
export const productPrice = z.number().min(0).max(Number.MAX_SAFE_INTEGER);
export const productDescription = noNul(z.string().max(2000));
export const productStock = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const createProductBody = z.strictObject({
  name: productName,
  price: productPrice,
  description: productDescription.optional(),
  stock: productStock.optional(),
});
/** PUT replaces: same shape as create; omitted optionals reset to their defaults. */
export const putProductBody = createProductBody;
export const patchProductBody = z.strictObject({
  name: productName.optional(),
  price: productPrice.optional(),
  description: productDescription.optional(),
  stock: productStock.optional(),
});

export const incrementBody = z.strictObject({
  by: z.number().int().min(-1e9).max(1e9).optional(),
});

export const productId = z
  .string()
  .regex(/^[1-9]\d{0,15}$/, 'must be a positive integer')
  .transform(Number)
  .pipe(z.number().int().max(Number.MAX_SAFE_INTEGER));

// `.` and `..` are dot-segments: URL-normalising clients (browsers, curl, WHATWG URL) remove them from a path, so
// such a counter could not be addressed reliably.
export const counterName = z
  .string()
  .regex(/^(?!\.\.?$)[A-Za-z0-9_.-]{1,64}$/, 'must match [A-Za-z0-9_.-]{1,64} and not be "." or ".."');

const queryInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,16}$/, 'must be a non-negative integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const listQuery = z
  .strictObject({
    limit: queryInt(1, MAX_PAGE_LIMIT).default(20),
    offset: queryInt(0, Number.MAX_SAFE_INTEGER).optional(),
    after: queryInt(0, Number.MAX_SAFE_INTEGER).optional(),
  })
  .refine((q) => q.offset === undefined || q.after === undefined, {
    message: 'offset and after cannot be used together',
    path: ['after'],
  });

export type CreateProduct = z.infer<typeof createProductBody>;
export type PatchProduct = z.infer<typeof patchProductBody>;
export type ListQuery = z.infer<typeof listQuery>;

/** A stored product, as the API answers it (the shape is productSchema below). */
export type Product = z.infer<typeof productSchema>;

/** Validation errors list at most this many issues; the rest are counted in one last entry. */
export const MAX_ISSUES = 20;
/** Longest message or path in an issue: both can quote client input (unknown keys, record keys). */
const MAX_ISSUE_TEXT = 200;
/** Unknown keys named in an unrecognized_keys issue (zod would name them all). */
const MAX_KEYS_NAMED = 10;

/** zod issues as the `details` of a validation_failed error, bounded whatever the input's size. */
export function issueDetails(error: z.ZodError, prefix: string): { path: string; message: string }[] {
  const shown = error.issues.slice(0, MAX_ISSUES).map((i) => ({
    path: clip([prefix, ...i.path.map(String)].filter(Boolean).join('.')),
    message: i.code === 'unrecognized_keys' ? unknownKeys(i.keys) : clip(i.message),
  }));
  const rest = error.issues.length - shown.length;
  if (rest > 0) shown.push({ path: prefix, message: `${rest} more issue${rest === 1 ? '' : 's'} not listed` });
  return shown;
}

function unknownKeys(keys: readonly string[]): string {
  // At most ~10 x 45 characters, however long or many the keys.
  const named = keys.slice(0, MAX_KEYS_NAMED).map((k) => JSON.stringify(clip(k, 40)));
  const more = keys.length - named.length;
  return `unrecognized key${keys.length === 1 ? '' : 's'}: ${named.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}

function clip(s: string, max = MAX_ISSUE_TEXT): string {
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

// ---- response shapes (documentation: /openapi.json) ----

const isoTime = z.string().describe('ISO-8601 UTC timestamp, millisecond precision');
export const productSchema = z.strictObject({
  id: z.number().int().min(1),
  name: productName,
  price: productPrice,
  description: productDescription,
  stock: productStock,
  created_at: isoTime,
  updated_at: isoTime,
});
export const counterSchema = z.strictObject({ name: counterName, value: z.number().int() });
export const productPageSchema = z.union([
  z.strictObject({ items: z.array(productSchema), limit: z.number().int(), offset: z.number().int() }),
  z.strictObject({ items: z.array(productSchema), limit: z.number().int(), after: z.number().int() }),
]);
export const errorSchema = z.strictObject({
  error: z.strictObject({
    code: z.string(),
    message: z.string(),
    details: z.array(z.unknown()).optional(),
  }),
});
